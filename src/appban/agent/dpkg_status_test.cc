#include "appban/agent/dpkg_status.h"

#include <gtest/gtest.h>

#include <sys/resource.h>

#include <chrono>
#include <ctime>
#include <map>
#include <sstream>

#include "appban/agent/agent_test_support.h"

namespace appban::agent {
namespace {

using testing::MakeTempDir;
using testing::MustRun;
using testing::WriteText;

TEST(DpkgStatus, ParsesStanzasContinuationLinesAndStatusWords) {
  // Hand-built: two packages, a multi-line Description and Conffiles, field names in odd case,
  // whitespace-only separator line, no trailing newline.
  std::string text =
      "Package: alpha\n"
      "Status: install ok installed\n"
      "Priority: Required\n"
      "essential: yes\n"
      "Maintainer: A <a@example.org>\n"
      "Architecture: amd64\n"
      "Source: alpha-src (1.0-1)\n"
      "Version: 1.0-1+b1\n"
      "Conffiles:\n"
      " /etc/alpha.conf 0123456789abcdef0123456789abcdef\n"
      "Description: first\n"
      " long text\n"
      " .\n"
      "   \t\n"
      "Package: beta\n"
      "Status: deinstall reinstreq half-installed\n"
      "Version: 2\n"
      "Origin: Debian";
  auto parsed = ParseDpkgStatus(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->packages.size(), 2u);
  EXPECT_TRUE(parsed->warnings.empty());
  const auto& alpha = parsed->packages[0];
  EXPECT_EQ(alpha.name, "alpha");
  EXPECT_EQ(alpha.version, "1.0-1+b1");
  EXPECT_EQ(alpha.architecture, "amd64");
  EXPECT_EQ(alpha.priority, "required");
  EXPECT_EQ(alpha.source, "alpha-src (1.0-1)");
  EXPECT_EQ(alpha.maintainer, "A <a@example.org>");
  EXPECT_TRUE(alpha.essential);
  EXPECT_TRUE(alpha.Protected());
  EXPECT_TRUE(alpha.FullyInstalled());
  EXPECT_EQ(alpha.line, 1u);
  const auto& beta = parsed->packages[1];
  EXPECT_EQ(beta.want, DpkgWant::kDeinstall);
  EXPECT_EQ(beta.flag, DpkgFlag::kReinstReq);
  EXPECT_EQ(beta.state, DpkgState::kHalfInstalled);
  EXPECT_TRUE(beta.FilesPresent());
  EXPECT_FALSE(beta.FullyInstalled());
  EXPECT_FALSE(beta.Protected());
  EXPECT_EQ(beta.origin, "Debian");
  EXPECT_EQ(beta.line, 15u);
}

TEST(DpkgStatus, EmptyDatabaseHasNoPackages) {
  auto parsed = ParseDpkgStatus(std::string_view());
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->packages.empty());
}

TEST(DpkgStatus, SyntaxErrorsNameTheLine) {
  auto continuation = ParseDpkgStatus(" orphan continuation\n");
  EXPECT_EQ(continuation.status().code(), StatusCode::kCorruption);
  EXPECT_NE(continuation.status().message().find("line 1"), std::string::npos) << continuation.status().ToString();

  auto no_colon = ParseDpkgStatus("Package: a\nStatus: install ok installed\nthis is not a field\n");
  EXPECT_EQ(no_colon.status().code(), StatusCode::kCorruption);
  EXPECT_NE(no_colon.status().message().find("line 3"), std::string::npos) << no_colon.status().ToString();

  auto nul = ParseDpkgStatus(std::string("Package: a\nVersion: 1\0\n", 23));
  EXPECT_EQ(nul.status().code(), StatusCode::kCorruption);
  EXPECT_NE(nul.status().message().find("line 2"), std::string::npos) << nul.status().ToString();
}

TEST(DpkgStatus, UnusableStanzasAreSkippedWithWarnings) {
  std::string text =
      "Version: 1\n\n"                                      // no Package
      "Package: nostatus\n\n"                               // no Status
      "Package: badstate\nStatus: install ok exploded\n\n"  // unknown state word
      "Package: good\nStatus: install ok installed\n\n"
      "Package: good\nStatus: install ok installed\n";  // duplicate
  auto parsed = ParseDpkgStatus(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->packages.size(), 1u);
  EXPECT_EQ(parsed->packages[0].name, "good");
  ASSERT_EQ(parsed->warnings.size(), 4u);
  EXPECT_EQ(parsed->warnings[0].line, 1u);
  EXPECT_EQ(parsed->warnings[1].line, 3u);
  EXPECT_NE(parsed->warnings[2].message.find("exploded"), std::string::npos);
  EXPECT_EQ(parsed->warnings[3].line, 11u);
}

// What the agent never removes, pins or refuses: Essential and required packages and, through
// Pre-Depends and Depends (any alternative, versions and :arch dropped), what they need.
TEST(DpkgStatus, ProtectedPackagesCloseOverTheDependenciesOfEssentialAndRequiredOnes) {
  const char* text =
      "Package: dpkg\nStatus: install ok installed\nEssential: yes\nPre-Depends: libc6 (>= 2.34),\n"
      " liblzma5:any | liblzma-alt\nVersion: 1.21\n\n"
      "Package: apt\nStatus: install ok installed\nPriority: required\nDepends: libapt (>= 2.6)\n\n"
      "Package: libapt\nStatus: install ok installed\nDepends: libzstd1\n\n"
      "Package: libzstd1\nStatus: install ok installed\n\n"
      "Package: libc6\nStatus: install ok installed\nPriority: optional\n\n"
      "Package: liblzma5\nStatus: install ok installed\n\n"
      "Package: wechat\nStatus: install ok installed\nDepends: libc6\n\n"
      "Package: gone\nStatus: deinstall ok config-files\nEssential: yes\nDepends: wechat\n";
  auto status = ParseDpkgStatus(text);
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(status->packages[0].depends, (std::vector<std::string>{"libc6", "liblzma5", "liblzma-alt"}));
  auto protected_packages = ProtectedPackages(*status);
  EXPECT_EQ(protected_packages["dpkg"], "Essential: yes");
  EXPECT_EQ(protected_packages["apt"], "Priority: required");
  EXPECT_EQ(protected_packages["libc6"], "needed by dpkg, which is Essential: yes");
  EXPECT_EQ(protected_packages["liblzma5"], "needed by dpkg, which is Essential: yes");
  EXPECT_EQ(protected_packages["libapt"], "needed by apt, which is Priority: required");
  EXPECT_EQ(protected_packages["libzstd1"], "needed by libapt, itself needed by apt, which is Priority: required");
  EXPECT_FALSE(protected_packages.contains("wechat"));       // it needs libc6, not the other way round
  EXPECT_FALSE(protected_packages.contains("gone"));         // only config files left
  EXPECT_FALSE(protected_packages.contains("liblzma-alt"));  // not installed
  EXPECT_EQ(protected_packages.size(), 6u);
}

TEST(DpkgStatus, LimitsAreEnforced) {
  DpkgStatusLimits limits;
  limits.max_packages = 1;
  auto too_many =
      ParseDpkgStatus("Package: a\nStatus: install ok installed\n\nPackage: b\nStatus: install ok installed\n", limits);
  EXPECT_EQ(too_many.status().code(), StatusCode::kLimitExceeded);

  limits = DpkgStatusLimits{};
  limits.max_field_bytes = 16;
  auto long_field = ParseDpkgStatus("Package: a\nDescription: x\n 0123456789\n 0123456789\n", limits);
  EXPECT_EQ(long_field.status().code(), StatusCode::kLimitExceeded);
  EXPECT_NE(long_field.status().message().find("line 4"), std::string::npos) << long_field.status().ToString();

  limits = DpkgStatusLimits{};
  limits.max_file_bytes = 10;
  EXPECT_EQ(ParseDpkgStatus("Package: abcdefghijk\n", limits).status().code(), StatusCode::kLimitExceeded);
}

// A status file shaped like a real one: `count` packages with long descriptions and conffiles,
// a mix of states, some Essential/required.
std::string SyntheticStatus(size_t count) {
  static constexpr const char* kStates[] = {"install ok installed",
                                            "install ok installed",
                                            "install ok installed",
                                            "deinstall ok config-files",
                                            "install reinstreq half-installed",
                                            "install ok unpacked"};
  std::ostringstream out;
  for (size_t i = 0; i < count; ++i) {
    out << "Package: pkg" << i << "\nStatus: " << kStates[i % 6]
        << "\nPriority: " << (i % 50 == 0 ? "required" : "optional")
        << "\nSection: misc\nInstalled-Size: " << (i * 7 % 9000) << "\nMaintainer: Maintainer " << i << " <m" << i
        << "@example.org>\nArchitecture: " << (i % 3 ? "amd64" : "all") << "\n";
    if (i % 97 == 0) out << "Essential: yes\n";
    if (i % 5 == 0) out << "Source: src" << i / 5 << " (" << i << ".0-1)\n";
    out << "Version: " << i << ".0-1\nDepends: libc6 (>= 2.36), pkg" << (i + 1) % count << "\n";
    if (i % 4 == 0)
      out << "Conffiles:\n /etc/pkg" << i << "/a.conf 0123456789abcdef0123456789abcdef\n /etc/pkg" << i
          << "/b.conf 0123456789abcdef0123456789abcdef\n";
    out << "Description: synthetic package " << i << "\n";
    for (int line = 0; line < 6; ++line)
      out << " This line of the long description is here to make the file realistic.\n";
    out << "\n";
  }
  return out.str();
}

// The parse agrees with dpkg's own reader on every package and field, and is far faster than
// running dpkg-query (the numbers are printed; bench/ has no agent benchmark yet).
TEST(DpkgStatus, AgreesWithDpkgQueryOnSyntheticDatabase) {
  std::string dir = MakeTempDir("appban-dpkg-status-");
  std::string text = SyntheticStatus(3000);
  WriteText(dir + "/status", text);
  WriteText(dir + "/available", "");
  std::filesystem::create_directories(dir + "/info");

  // CPU time, not wall time: the build machine is shared, and CPU time is what the agent costs.
  auto thread_cpu_ms = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
  };
  auto children_cpu_ms = [] {
    rusage usage{};
    getrusage(RUSAGE_CHILDREN, &usage);
    return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 +
           (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3;
  };
  (void)ReadDpkgStatus(dir);  // warm the page cache
  double start = thread_cpu_ms();
  constexpr int kRuns = 20;
  Result<DpkgStatus> parsed = Status::Internal("not run");
  for (int run = 0; run < kRuns; ++run) parsed = ReadDpkgStatus(dir);
  double ours_ms = (thread_cpu_ms() - start) / kRuns;
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->packages.size(), 3000u);

  double children_before = children_cpu_ms();
  auto query = MustRun({"dpkg-query", "--admindir=" + dir, "-W", "-f",
                        "${Package}\t${Version}\t${db:Status-Abbrev}\t${Status}\t${Essential}\t${Priority}\t"
                        "${Architecture}\t${Source}\t${Maintainer}\n"});
  double dpkg_query_ms = children_cpu_ms() - children_before;
  ASSERT_TRUE(query.ok()) << query.Describe();
  std::cout << "[ measure  ] 3000-package status (" << text.size() / 1024 << " KiB), CPU time: ReadDpkgStatus "
            << ours_ms << " ms (mean of " << kRuns << "), dpkg-query -W " << dpkg_query_ms << " ms\n";
  EXPECT_LT(ours_ms, 1000.0) << "hang guard";

  std::map<std::string, std::vector<std::string>> expected;
  std::istringstream lines(query.stdout_text);
  for (std::string line; std::getline(lines, line);) {
    std::vector<std::string> fields;
    std::istringstream split(line);
    for (std::string field; std::getline(split, field, '\t');) fields.push_back(field);
    fields.resize(9);
    expected[fields[0]] = fields;
  }
  // dpkg-query -W lists every package it knows, including config-files ones.
  ASSERT_EQ(expected.size(), parsed->packages.size());
  for (const auto& package : parsed->packages) {
    auto it = expected.find(package.name);
    ASSERT_NE(it, expected.end()) << package.name;
    const auto& want = it->second;
    EXPECT_EQ(package.version, want[1]) << package.name;
    std::string status = std::string(package.want == DpkgWant::kInstall ? "install" : "deinstall") + " " +
                         (package.flag == DpkgFlag::kOk ? "ok" : "reinstreq") + " " +
                         std::string(DpkgStateName(package.state));
    EXPECT_EQ(status, want[3]) << package.name;
    EXPECT_EQ(package.essential, want[4] == "yes") << package.name;
    EXPECT_EQ(package.priority, want[5]) << package.name;
    EXPECT_EQ(package.architecture, want[6]) << package.name;
    EXPECT_EQ(package.source, want[7]) << package.name;
    EXPECT_EQ(package.maintainer, want[8]) << package.name;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace appban::agent
