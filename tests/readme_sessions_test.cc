// The README's tour runs as printed (issue 18, rough edge 2): every shell session in README.md
// whose command reads files only — `appban inspect`, `appban assess`, `appban catalog list/show/diff` — is run
// with the same command line, in a directory holding the files it names (androguard's
// TestActivity.apk, the iOS fixtures), and the output printed under it must appear in what the
// command prints, line by line and in order. A line "..." stands for lines left out; "…" inside a
// line for text left out. Hashes and times that change with each fixture build (a hex run of 12
// or more digits, or of 6 or more cut short by "…"; an ISO 8601 time) match any such run.
//
// The server tour (the `curl` and `appban agent` sessions) runs the same way against a real
// `appban server`, a real OpenID Connect provider (alice and bob sign in there) and an agent on an
// `appban agent sandbox` root, with what names the README's machine put in place of this one's:
// https://vm:8443 is the test server's URL; `curl …` is `curl --cacert ca.pem` (with alice's token
// when the session shows no Authorization header); the elided enrolment token `e-…` is one the test
// issued; `appban agent X` runs with `--config` of the sandbox, whose state directory stands for
// /var/lib/appban. docs/agent.md's roll-out runs there too: its script issuing a 1,000-use token,
// then the enrolment its cloud-init snippet and its Ansible play run, each as printed.
#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "appban/common/json.h"
#include "support/doc_sessions.h"
#include "support/login_process.h"
#include "support/oidc_provider.h"
#include "support/server_process.h"
#include "support/test_support.h"

namespace appban {
namespace {

namespace fs = std::filesystem;
using testing::AppbanBinary;
using testing::CodeBlockUnder;
using testing::Mismatch;
using testing::ReadSessions;
using testing::RunCommand;
using testing::Session;
using testing::TempDir;

bool RunsLocally(const std::string& command) {
  static const std::regex kLocal(R"(^appban (inspect|assess|catalog (list|show|diff)) )");
  return std::regex_search(command, kLocal);
}

// `command` as a user's shell runs it in `dir`, with this build's `appban` first in PATH and `env`
// added; stdout and stderr together.
std::vector<std::string> SessionArgv(const fs::path& dir, const std::string& command,
                                     const std::vector<std::string>& env) {
  std::string path = fs::path(AppbanBinary()).parent_path().string() + ":" + std::getenv("PATH");
  std::vector<std::string> argv = {"/usr/bin/env", "PATH=" + path, "NO_COLOR=1"};
  argv.insert(argv.end(), env.begin(), env.end());
  // curl as in a terminal: no progress meter, and the prompt on the line after the answer. The
  // newline before the brace: a session may end with a # comment.
  argv.insert(argv.end(), {"bash", "-c",
                           "curl() { command curl --silent --show-error \"$@\"; echo; }\ncd '" + dir.string() +
                               "' && { " + command + "\n} 2>&1"});
  return argv;
}

// "" when `output` holds the lines `printed` (the session's, as this machine prints them), in
// order; else what a reader needs to mend the example or the code: `file`:line, the command as
// shown and as run, the first line missing, and everything the command printed.
std::string MismatchReport(const std::string& file, const Session& session, const std::vector<std::string>& printed,
                           const std::string& ran_as, const std::string& output) {
  std::string mismatch = Mismatch(printed, output);
  if (mismatch.empty()) return "";
  std::string report = file + ":" + std::to_string(session.line) + ": $ " + session.command + "\n";
  if (ran_as != session.command) report += "ran as: " + ran_as + "\n";
  return report + mismatch + "\nit printed:\n" + output;
}

TEST(ReadmeSessions, EveryLocalSessionPrintsWhatTheReadmeShows) {
  fs::path apk = testing::AndroguardExamples() / "android/TestsAndroguard/bin/TestActivity.apk";
  if (!fs::exists(apk)) GTEST_SKIP() << "androguard's examples are not installed";
  TempDir dir;
  fs::copy_file(apk, dir.path() / "TestActivity.apk");
  for (const char* name : {"Demo.ipa", "DemoEncrypted"}) {
    fs::copy_file(testing::Fixture(std::string("ios/") + name), dir.path() / name);
  }
  std::ofstream(dir.path() / "notes.txt") << "minutes of the meeting\n";

  auto sessions = ReadSessions(fs::path(APPBAN_SOURCE_DIR) / "README.md");
  int run = 0;
  for (const Session& session : sessions) {
    if (!RunsLocally(session.command)) continue;
    ++run;
    auto result = RunCommand(SessionArgv(dir.path(), session.command, {}));
    std::string report = MismatchReport("README.md", session, session.printed, session.command, result.out);
    EXPECT_TRUE(report.empty()) << report;
  }
  // inspect (text, --json, a failure), iOS inspect (ipa, encrypted), assess (iOS, APK), catalog diff.
  EXPECT_GE(run, 8) << "the README lost sessions this test runs";
}

TEST(ReadmeSessions, TheAgentGuidesSandboxSessionPrintsWhatItShows) {
  TempDir dir;
  int run = 0;
  for (const Session& session : ReadSessions(fs::path(APPBAN_SOURCE_DIR) / "docs" / "agent.md")) {
    if (!session.command.starts_with("appban agent sandbox ")) continue;
    ++run;
    // /tmp/try is a directory of this test's; the binary is this build's, not the package's.
    std::string sandbox = (dir.path() / "try").string();
    std::string command = std::regex_replace(session.command, std::regex("/tmp/try"), sandbox);
    std::vector<std::string> printed;
    for (const auto& line : session.printed) {
      printed.push_back(std::regex_replace(std::regex_replace(line, std::regex("/tmp/try"), sandbox),
                                           std::regex("/usr/bin/appban"), AppbanBinary()));
    }
    auto result = RunCommand(SessionArgv(dir.path(), command, {}));
    EXPECT_EQ(result.exit_code, 0) << result.out;
    std::string report = MismatchReport("docs/agent.md", session, printed, command, result.out);
    EXPECT_TRUE(report.empty()) << report;
  }
  EXPECT_EQ(run, 1) << "docs/agent.md lost its sandbox session";
}

// `text` with every `from` replaced by `to`.
std::string ReplaceAll(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

TEST(ReadmeSessions, TheOperationsGuidesBackupSessionsRunAgainstARealServer) {
  TempDir dir;
  // `appban server` as the guide starts it: ./appban-data in the directory the session runs in.
  auto server = testing::ServerProcess::Start(dir.path() / "appban-data");
  ASSERT_TRUE(server.has_value()) << "server did not start";
  const fs::path guide = fs::path(APPBAN_SOURCE_DIR) / "docs" / "operations.md";
  int run = 0;
  for (const Session& session : testing::SessionsUnder(guide, "## Worked example")) {
    ++run;
    std::vector<std::string> printed;
    for (const std::string& line : session.printed) {
      printed.push_back(ReplaceAll(line, "/home/analyst", dir.path().string()));
    }
    auto result = RunCommand(SessionArgv(dir.path(), session.command, {}));
    std::string report = MismatchReport("docs/operations.md", session, printed, session.command, result.out);
    EXPECT_TRUE(report.empty()) << report;
  }
  // backup, audit list, check, restore, a refused overwrite, a changed file and its refusal.
  EXPECT_EQ(run, 7) << "docs/operations.md lost sessions this test runs";
}

// The README's machine's names replaced with this test's, in a command and in printed text.
struct TourMachine {
  std::string url;        // for https://vm:8443
  std::string state_dir;  // for /var/lib/appban
  std::string agent_config;

  std::string Printed(const std::string& line) const {
    return ReplaceAll(ReplaceAll(line, "https://vm:8443", url), "/var/lib/appban", state_dir);
  }
  std::string Command(const std::string& command) const {
    std::string out = Printed(command);
    bool shows_authorization = out.find("Authorization:") != std::string::npos;
    out = ReplaceAll(
        out, "curl … ",
        shows_authorization ? "curl --cacert ca.pem " : "curl --cacert ca.pem -H \"Authorization: Bearer $ALICE\" ");
    out = std::regex_replace(out, std::regex("--token e-[0-9a-f]+\\.[0-9a-f]*…"), "--token \"$ENROLLMENT_TOKEN\"");
    out = std::regex_replace(out, std::regex("^appban agent ([a-z]+)"),
                             "appban agent $1 --config '" + agent_config + "'");
    return out;
  }
};

// A real OpenID Connect provider, named "keycloak" as the README's department calls it, and a
// real server in `dir`/appban-data trusting it.
void StartProviderAndServer(const fs::path& dir, std::optional<testing::OidcProvider>& provider,
                            std::optional<testing::ServerProcess>& server) {
  auto started = testing::OidcProvider::Start(dir / "idp");
  ASSERT_TRUE(started) << "the OpenID Connect provider did not start (scripts/setup.sh --test installs it)";
  provider.emplace(std::move(*started));
  std::string toml = provider->ServerToml();
  toml.replace(toml.find("test-idp"), 8, "keycloak");
  std::ofstream(dir / "server.toml") << toml;
  auto running = testing::ServerProcess::Start(dir / "appban-data", {"--config", (dir / "server.toml").string()});
  ASSERT_TRUE(running) << "the server did not start";
  server.emplace(std::move(*running));
}

bool InServerTour(const std::string& command) {
  return command.starts_with("curl ") || command.starts_with("appban agent ");
}

TEST(ReadmeSessions, TheServerTourRunsAgainstARealServerProviderAndAgent) {
  TempDir dir;
  std::optional<testing::OidcProvider> provider;
  std::optional<testing::ServerProcess> server;
  ASSERT_NO_FATAL_FAILURE(StartProviderAndServer(dir.path(), provider, server));
  std::ofstream(dir.path() / "ca.pem") << server->ca_pem();
  fs::create_directory_symlink(fs::path(APPBAN_SOURCE_DIR) / "examples", dir.path() / "examples");

  std::string alice = provider->SignIn("alice");
  std::string bob = provider->SignIn("bob");
  ASSERT_FALSE(alice.empty());
  ASSERT_FALSE(bob.empty());

  // The workstation: a sandbox root with the stand-in wechat installed through its APT.
  auto shell = [&](const std::string& command, std::vector<std::string> env = {}) {
    env.insert(env.end(), {"ALICE=" + alice, "BOB=" + bob});
    return RunCommand(SessionArgv(dir.path(), command, env));
  };
  fs::path sandbox = dir.path() / "sandbox";
  auto prepared = shell("appban agent sandbox '" + sandbox.string() + "'");
  ASSERT_EQ(prepared.exit_code, 0) << prepared.out;
  auto installed = shell("apt-get install -y -q wechat", {"APT_CONFIG=" + (sandbox / "apt.conf").string()});
  ASSERT_EQ(installed.exit_code, 0) << installed.out;

  // The README's workstation has a token of its own (no group).
  auto issued = shell("curl -sS --cacert ca.pem -H \"Authorization: Bearer $ALICE\" -d '{\"count\":1}' " +
                      server->url() + "/v1/admin/enrollment-tokens");
  Json tokens = Json::parse(issued.out, nullptr, false);
  ASSERT_TRUE(tokens.is_object() && tokens.contains("tokens")) << issued.out;
  std::string enrollment_token = tokens["tokens"][0].value("token", "");

  TourMachine machine{server->url(), (sandbox / "state").string(), (sandbox / "agent.toml").string()};
  // The first-start banner `scripts/run.sh` shows is the server's (started here directly, on this
  // machine's host name, its own data directory and worker count).
  int run = 0;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  for (const Session& session : ReadSessions(fs::path(APPBAN_SOURCE_DIR) / "README.md")) {
    if (!session.command.starts_with("scripts/run.sh")) continue;
    ++run;
    std::vector<std::string> printed;
    for (const auto& line : session.printed) {
      std::string text = ReplaceAll(machine.Printed(line), "./appban-data", "…appban-data");
      text = ReplaceAll(text, "Certificate for: vm,", std::string("Certificate for: ") + host + ",");
      text = std::regex_replace(text, std::regex("SHA256 [0-9A-F:]{95}"), "SHA256 …");
      printed.push_back(
          std::regex_replace(text, std::regex(R"(with \d+ worker processes)"), "with … worker processes"));
    }
    std::string report =
        MismatchReport("README.md", session, printed, "appban server (started by the test)", server->output());
    EXPECT_TRUE(report.empty()) << report;
  }
  for (const Session& session : ReadSessions(fs::path(APPBAN_SOURCE_DIR) / "README.md")) {
    if (!InServerTour(session.command)) continue;
    ++run;
    std::string command = machine.Command(session.command);
    auto result = shell(command, {"ENROLLMENT_TOKEN=" + enrollment_token});
    std::vector<std::string> printed;
    for (const auto& line : session.printed) printed.push_back(machine.Printed(line));
    std::string report = MismatchReport("README.md", session, printed, command, result.out);
    EXPECT_TRUE(report.empty()) << report;
  }
  // The banner; whoami, propose, refused and accepted approvals, publish the rule and a bundle;
  // enrol, once, status, the rule's compliance.
  EXPECT_GE(run, 11) << "the README lost sessions this test runs";
  // docs/agent.md's script for a roll-out ("Enrolling many machines") runs as printed, alice's
  // sign-in as the admin token: a group, then a 1,000-use token bound to it (the last line).
  const fs::path agent_md = fs::path(APPBAN_SOURCE_DIR) / "docs" / "agent.md";
  std::string script = CodeBlockUnder(agent_md, "## Enrolling many machines", "sh");
  ASSERT_NE(script.find("/v1/admin/enrollment-tokens"), std::string::npos) << script;
  issued = shell(ReplaceAll(script, "https://appban.example.gov:8443", server->url()), {"ADMIN_TOKEN=" + alice});
  ASSERT_EQ(issued.exit_code, 0) << issued.out;
  std::string last_line = issued.out.substr(issued.out.rfind('\n', issued.out.size() - 2) + 1);
  tokens = Json::parse(last_line, nullptr, false);
  ASSERT_TRUE(tokens.is_object() && tokens.contains("tokens")) << issued.out;
  EXPECT_EQ(tokens["tokens"][0].value("max_uses", 0), 1000) << issued.out;
  EXPECT_EQ(tokens["tokens"][0].value("group", ""), "image-2026-12") << issued.out;
  // Two machines enrol with that token through the documented cloud-init `runcmd` and Ansible
  // task, their argv as printed but for this test's paths, URL and CA fingerprint.
  std::string fingerprint;
  {
    std::smatch found;
    std::string banner = server->output();
    ASSERT_TRUE(std::regex_search(banner, found, std::regex("CA fingerprint: +(SHA256 [0-9A-F:]+)"))) << banner;
    fingerprint = found[1];
  }
  std::string multi_use_token = tokens["tokens"][0].value("token", "");
  auto enrol_as_documented = [&](const std::string& machine, std::vector<std::string> argv) {
    fs::path home = dir.path() / machine;
    fs::create_directories(home);
    std::ofstream(home / "enrollment.token") << multi_use_token << "\n";
    fs::permissions(home / "enrollment.token", fs::perms::owner_read | fs::perms::owner_write);
    for (auto& arg : argv) {
      if (arg == "appban") arg = AppbanBinary();
      if (arg == "https://appban.example.gov:8443") arg = server->url();
      if (arg == "/etc/appban/ca.pem") arg = (dir.path() / "ca.pem").string();
      if (arg.starts_with("SHA256 93:55:")) arg = fingerprint;
      if (arg == "/etc/appban/enrollment.token") arg = (home / "enrollment.token").string();
      if (arg == "/var/lib/appban") arg = (home / "state").string();
    }
    auto enrolled = RunCommand(argv);
    EXPECT_EQ(enrolled.exit_code, 0) << machine << ": " << enrolled.out << enrolled.err;
    EXPECT_NE(enrolled.out.find("in group image-2026-12"), std::string::npos) << machine << ": " << enrolled.out;
    EXPECT_FALSE(fs::exists(home / "enrollment.token")) << machine << ": the agent deletes the token file";
  };
  auto strings = [](const YAML::Node& sequence) {
    std::vector<std::string> out;
    for (const auto& item : sequence) out.push_back(item.as<std::string>());
    return out;
  };
  YAML::Node cloud_config = YAML::Load(CodeBlockUnder(agent_md, "### cloud-init", "yaml"));
  ASSERT_TRUE(cloud_config["runcmd"].IsSequence());
  enrol_as_documented("cloud-init", strings(cloud_config["runcmd"][0]));
  YAML::Node play = YAML::Load(CodeBlockUnder(agent_md, "### Ansible", "yaml"));
  std::vector<std::string> task_argv;
  for (const auto& task : play[0]["tasks"]) {
    if (task["ansible.builtin.command"]) task_argv = strings(task["ansible.builtin.command"]["argv"]);
  }
  for (auto& arg : task_argv) {  // the play's variables, as Ansible fills them in
    if (arg == "{{ appban_server }}") arg = play[0]["vars"]["appban_server"].as<std::string>();
    if (arg == "{{ appban_ca_sha256 }}") arg = play[0]["vars"]["appban_ca_sha256"].as<std::string>();
  }
  ASSERT_FALSE(task_argv.empty()) << "the Ansible play lost its enrol task";
  enrol_as_documented("ansible", task_argv);

  EXPECT_EQ(shell("apt-get install -y -q wechat", {"APT_CONFIG=" + (sandbox / "apt.conf").string()}).exit_code == 0,
            false)
      << "the enforced ban refuses a reinstall";
}

// The decide-and-publish tour (README.md, then docs/identity.md's sign-in): alice and bob each `appban login` (the
// device authorization grant, the person's half done at the provider), then catalog adopt, the refused and the accepted
// approval, publish, the bundle's export and offline verification (and its tampering), the audit
// chain. Substituted: https://appban.example.gov:8443 is the test server, the provider's realm URL
// its issuer, /home/alice and /home/bob each person's home (credentials are per person), the user
// code the one the provider issued, a key file elided as keys/b6880c37….pub the one key file, and
// the addresses 10.1.2.x loopback.
bool InPolicyTour(const std::string& command) {
  static const std::regex kPolicy(R"(^(appban (login|catalog adopt|policy|audit) |sed -i ))");
  return std::regex_search(command, kPolicy);
}

TEST(ReadmeSessions, TheDecideAndPublishTourRunsAsTwoSignedInPeople) {
  TempDir dir;
  std::optional<testing::OidcProvider> provider;
  std::optional<testing::ServerProcess> server;
  ASSERT_NO_FATAL_FAILURE(StartProviderAndServer(dir.path(), provider, server));
  std::ofstream(dir.path() / "appban-ca.pem") << server->ca_pem();
  for (const char* person : {"alice", "bob"}) fs::create_directory(dir.path() / person);

  auto for_this_machine = [&](std::string text) {
    text = ReplaceAll(text, "https://appban.example.gov:8443", server->url());
    text = ReplaceAll(text, "https://login.example.gov/realms/gc", provider->issuer());
    for (const char* person : {"alice", "bob"}) {
      text = ReplaceAll(text, std::string("/home/") + person, (dir.path() / person).string());
    }
    return text;
  };

  std::string person;  // whose machine the sessions run on: the last one to sign in
  int run = 0;
  std::vector<std::pair<std::string, Session>> tour;  // README's, then docs/identity.md's
  for (const char* file : {"README.md", "docs/identity.md"}) {
    for (Session& session : ReadSessions(fs::path(APPBAN_SOURCE_DIR) / file)) {
      if (InPolicyTour(session.command)) tour.emplace_back(file, std::move(session));
    }
  }
  for (const auto& [file, session] : tour) {
    ++run;
    std::string command =
        std::regex_replace(for_this_machine(session.command), std::regex(R"(keys/[0-9a-f]+…\.pub)"), "keys/*.pub");
    std::vector<std::string> printed;
    for (const auto& line : session.printed) {
      std::string text = std::regex_replace(for_this_machine(line), std::regex("[A-Z]{4}-[A-Z]{4}"), "…");
      printed.push_back(std::regex_replace(text, std::regex(R"(10\.1\.2\.\d+)"), "127.0.0.1"));
    }
    testing::CommandResult result;
    if (session.command.starts_with("appban login ")) {
      // The person the session shows signing in.
      person = "alice";
      for (const auto& line : session.printed) {
        if (line.starts_with("signed in as Bob")) person = "bob";
      }
      testing::LoginProcess login(SessionArgv(dir.path(), command, {"HOME=" + (dir.path() / person).string()}),
                                  dir.path() / person);
      std::string uri = login.VerificationUri();
      ASSERT_FALSE(uri.empty()) << file << ":" << session.line << ": appban login printed no URI to open";
      auto browser = provider->DeviceSignIn(uri, person);
      EXPECT_EQ(browser.exit_code, 0) << browser.err;
      result = login.Wait();
    } else {
      result = RunCommand(SessionArgv(dir.path(), command, {"HOME=" + (dir.path() / person).string()}));
    }
    std::string report = MismatchReport(file, session, printed, command, result.out);
    EXPECT_TRUE(report.empty()) << report;
  }
  // README: two sign-ins, adopt, a refused and an accepted approval, publish the rule and the bundle,
  // export, verify, tamper, verify again, audit verify and list; docs/identity.md: alice signs in
  // again and her approval of her own proposal is refused.
  EXPECT_GE(run, 14) << "the README lost sessions this test runs";
}

TEST(ReadmeSessions, TheComparisonCatchesAChangedLineAndAllowsElidedText) {
  std::string output = "alpha 1\nbeta 2  (+20)\nsha 3bb32dd50129690bce850124ea120aa334e708ea\ngamma\n";
  EXPECT_EQ(Mismatch({"alpha 1", "...", "gamma"}, output), "");
  EXPECT_EQ(Mismatch({"beta …(+20)"}, output), "");
  EXPECT_EQ(Mismatch({"sha 0123456789abcdef0123456789abcdef01234567"}, output), "");
  EXPECT_EQ(Mismatch({"sha 0123ab…"}, output), "");
  EXPECT_NE(Mismatch({"sha 0123…"}, output), "") << "four digits are a number, not a hash";
  EXPECT_NE(Mismatch({"beta 3  (+20)"}, output), "");
  EXPECT_NE(Mismatch({"gamma", "alpha 1"}, output), "") << "order matters";
}

}  // namespace
}  // namespace appban
