#include "appban/agent/sandbox.h"

#include <sys/stat.h>

#include <filesystem>
#include <sstream>

#include "appban/agent/process.h"
#include "appban/common/bytes.h"
#include "appban/common/crypto.h"
#include "appban/common/file.h"

namespace appban::agent {

namespace fs = std::filesystem;

const DemoPackage kSandboxDemoPackages[3] = {
    {"wechat", "4.0.1", "stand-in for WeChat for Linux, built by appban agent sandbox"},
    {"kesl", "12.1.0", "stand-in for Kaspersky Endpoint Security for Linux, built by appban agent sandbox"},
    {"appban-sandbox-hello", "1.0", "an unrelated package that no rule names, built by appban agent sandbox"},
};

namespace {

// A stand-in .deb is a control file and one marker file: far below this.
constexpr uint64_t kMaxDemoDebBytes = 1u << 20;

// TOML basic strings: backslash and quote escaped; control characters are refused by the caller's
// paths never containing them (mkdir would accept them, but nobody types them).
std::string TomlString(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out + "\"";
}

// APT configuration strings cannot escape a quote at all.
Status CheckAptSafe(const std::string& path) {
  for (char c : path) {
    if (c == '"' || c == '\n' || c == '\\' || c == '\'') {
      return Status::InvalidArgument("sandbox directory " + path +
                                     " contains a quote, backslash or newline, which APT's configuration cannot hold");
    }
  }
  return Status::Ok();
}

Status Write(const std::string& path, const std::string& text, unsigned mode = 0644) {
  std::error_code error;
  fs::create_directories(fs::path(path).parent_path(), error);
  if (error) return Status::Unavailable(fs::path(path).parent_path().string() + ": " + error.message());
  return WriteFileAtomically(path, text, mode);
}

Status MakeDirectories(const std::string& root, std::initializer_list<const char*> subdirectories) {
  for (const char* sub : subdirectories) {
    std::error_code error;
    fs::create_directories(root + sub, error);
    if (error) return Status::Unavailable(root + sub + ": " + error.message());
  }
  return Status::Ok();
}

// Builds one stand-in package with dpkg-deb and returns its stanza for the repository's index.
Result<std::string> BuildDemoPackage(const Sandbox& sandbox, const DemoPackage& package) {
  std::string tree = sandbox.dir + "/build/" + package.name;
  std::string control = std::string("Package: ") + package.name + "\nVersion: " + package.version +
                        "\nArchitecture: all\nMaintainer: appban sandbox <root@localhost>\n"
                        "Section: misc\nPriority: optional\nDescription: " +
                        package.description + "\n";
  APPBAN_RETURN_IF_ERROR(Write(tree + "/DEBIAN/control", control));
  APPBAN_RETURN_IF_ERROR(
      Write(tree + "/usr/share/" + package.name + "/README", package.description + std::string("\n")));
  std::string file_name = std::string(package.name) + "_" + package.version + "_all.deb";
  std::string deb = sandbox.packages_dir + "/" + file_name;
  APPBAN_ASSIGN_OR_RETURN(CommandResult built,
                          RunCommand({"dpkg-deb", "-Zgzip", "--root-owner-group", "--build", tree, deb}));
  if (!built.ok()) return Status::Unavailable("dpkg-deb could not build " + file_name + ": " + built.Describe());
  APPBAN_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(deb, kMaxDemoDebBytes));
  APPBAN_RETURN_IF_ERROR(Write(sandbox.dir + "/repo/" + file_name, bytes));
  std::error_code ignored;
  fs::remove_all(sandbox.dir + "/build/" + package.name, ignored);
  // The index stanza is the control file plus where the file is and what it hashes to.
  return control + "Filename: ./" + file_name + "\nSize: " + std::to_string(bytes.size()) +
         "\nSHA256: " + Sha256Hex(AsBytes(bytes)) + "\n\n";
}

std::string AptConfig(const Sandbox& sandbox) {
  // Every APT directory under the root; dpkg through the guard, with --root and --admindir.
  return "// Written by appban agent sandbox: APT works on " + sandbox.root +
         " and never on this machine's own packages.\n"
         "Dir \"" +
         sandbox.root +
         "/\";\n"
         "Dir::State::status \"" +
         sandbox.admindir +
         "/status\";\n"
         "Dir::Bin::dpkg \"" +
         sandbox.dir +
         "/dpkg-guard\";\n"
         "DPkg::Options { \"--root=" +
         sandbox.root + "\"; \"--admindir=" + sandbox.admindir +
         "\"; \"--force-script-chrootless\"; };\n"
         "APT::Sandbox::User \"root\";\n";
}

std::string AgentConfig(const Sandbox& sandbox, const SandboxOptions& options) {
  std::ostringstream out;
  out << "# Written by appban agent sandbox: the agent works on the sandbox's root only.\n"
      << "state_dir = " << TomlString(sandbox.state_dir) << "\n\n"
      << "[paths]\n"
      << "root = " << TomlString(sandbox.root) << "\n"
      << "wake_file = " << TomlString(sandbox.dir + "/run/dpkg-changed") << "\n\n"
      << "[tools]\n"
      << "apt_env = [" << TomlString("APT_CONFIG=" + sandbox.apt_config) << "]\n"
      << "dpkg_options = [\"--force-script-chrootless\"]\n"
      << "apt_hook_command = " << TomlString(options.apt_hook_command) << "\n";
  return out.str();
}

}  // namespace

Result<Sandbox> CreateSandbox(const std::string& dir, const SandboxOptions& options) {
  if (dir.empty()) return Status::InvalidArgument("the sandbox needs a directory");
  if (options.apt_hook_command.empty()) return Status::InvalidArgument("the sandbox needs the APT hook command");
  std::error_code error;
  fs::path absolute = fs::absolute(dir, error);
  if (error) return Status::InvalidArgument(dir + ": " + error.message());
  absolute = absolute.lexically_normal();
  std::string path = absolute.string();
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (path == "/") return Status::InvalidArgument("the sandbox cannot be the root directory");
  APPBAN_RETURN_IF_ERROR(CheckAptSafe(path));
  if (fs::exists(absolute, error)) {
    if (!fs::is_directory(absolute, error)) return Status::AlreadyExists(path + " exists and is not a directory");
    if (!fs::is_empty(absolute, error)) {
      return Status::AlreadyExists(path + " is not empty: give a new or empty directory (a sandbox is made once)");
    }
  }

  Sandbox sandbox;
  sandbox.dir = path;
  sandbox.root = path + "/root";
  sandbox.admindir = sandbox.root + "/var/lib/dpkg";
  sandbox.apt_config = path + "/apt.conf";
  sandbox.agent_config = path + "/agent.toml";
  sandbox.state_dir = path + "/state";
  sandbox.packages_dir = path + "/pkgs";

  APPBAN_RETURN_IF_ERROR(MakeDirectories(
      sandbox.root, {"/var/lib/dpkg/info", "/var/lib/dpkg/updates", "/var/lib/dpkg/triggers", "/etc/apt/apt.conf.d",
                     "/etc/apt/preferences.d", "/etc/apt/sources.list.d", "/var/lib/apt/lists/partial",
                     "/var/cache/apt/archives/partial", "/var/log/apt", "/etc/dpkg/dpkg.cfg.d"}));
  APPBAN_RETURN_IF_ERROR(MakeDirectories(path, {"/pkgs", "/repo", "/run"}));
  // The agent creates its state directory at enrolment and refuses one that holds a credential.
  APPBAN_RETURN_IF_ERROR(Write(sandbox.admindir + "/status", ""));
  APPBAN_RETURN_IF_ERROR(Write(sandbox.admindir + "/available", ""));
  APPBAN_RETURN_IF_ERROR(Write(path + "/dpkg-guard",
                               "#!/bin/sh\n"
                               "# Written by appban agent sandbox: dpkg only with the sandbox's root.\n"
                               "case \"$*\" in *--root=" +
                                   sandbox.root +
                                   "*) exec dpkg \"$@\";; esac\n"
                                   "echo 'dpkg-guard: refusing a dpkg run outside the sandbox root' >&2\n"
                                   "exit 99\n",
                               0755));
  APPBAN_RETURN_IF_ERROR(Write(sandbox.apt_config, AptConfig(sandbox)));
  APPBAN_RETURN_IF_ERROR(
      Write(sandbox.root + "/etc/apt/sources.list", "deb [trusted=yes] file:" + path + "/repo ./\n"));
  APPBAN_RETURN_IF_ERROR(Write(sandbox.agent_config, AgentConfig(sandbox, options)));

  std::string index;
  if (options.demo_packages) {
    for (const DemoPackage& package : kSandboxDemoPackages) {
      APPBAN_ASSIGN_OR_RETURN(std::string stanza, BuildDemoPackage(sandbox, package));
      index += stanza;
      sandbox.demo_packages.push_back(package.name);
    }
    fs::remove_all(path + "/build", error);
  }
  APPBAN_RETURN_IF_ERROR(Write(path + "/repo/Packages", index));
  if (options.update_apt) {
    APPBAN_ASSIGN_OR_RETURN(CommandResult updated,
                            RunCommand({"apt-get", "-q", "update"}, {"APT_CONFIG=" + sandbox.apt_config}));
    if (!updated.ok()) return Status::Unavailable("apt-get update in the sandbox failed: " + updated.Describe());
  }
  return sandbox;
}

std::string SandboxInstructions(const Sandbox& sandbox, const std::string& appban_binary) {
  std::ostringstream out;
  out << "sandbox ready in " << sandbox.dir << "\n"
      << "  root          " << sandbox.root << " (its own dpkg database; this machine's is never touched)\n"
      << "  APT           APT_CONFIG=" << sandbox.apt_config << "\n"
      << "  agent config  " << sandbox.agent_config << " (state in " << sandbox.state_dir << ")\n";
  if (!sandbox.demo_packages.empty()) {
    out << "  repository    " << sandbox.dir << "/repo:";
    for (const auto& name : sandbox.demo_packages) out << " " << name;
    out << "\n";
  }
  out << "\nTry it (as root):\n"
      << "  export APT_CONFIG=" << sandbox.apt_config << "\n"
      << "  apt-get install -y wechat                       # install a stand-in banned app\n"
      << "  " << appban_binary << " agent enroll --config " << sandbox.agent_config
      << " --server https://HOST:8443 --ca CA.pem --token e-…\n"
      << "  " << appban_binary << " agent once --config " << sandbox.agent_config
      << "     # enforce the published policy once\n"
      << "  " << appban_binary << " agent status --config " << sandbox.agent_config << "\n"
      << "  apt-get install wechat                          # refused while a rule bans it\n"
      << "  dpkg --root=" << sandbox.root << " --admindir=" << sandbox.admindir << " -l   # what is installed\n";
  return out.str();
}

}  // namespace appban::agent
