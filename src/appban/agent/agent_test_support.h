// Test support for the agent: a scratch system root with a real dpkg database and an APT
// configuration that points APT at it (never at this machine's own package database), and small
// .deb packages built with dpkg-deb. Header-only, used by the agent's *_test.cc files.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "appban/agent/dpkg_status.h"
#include "appban/agent/enforce.h"
#include "appban/agent/inventory.h"
#include "appban/agent/process.h"

namespace appban::agent::testing {

inline std::string MakeTempDir(const std::string& prefix) {
  std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
  return pattern;
}

inline void WriteText(const std::string& path, const std::string& text, bool executable = false) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
  if (executable) ::chmod(path.c_str(), 0755);
}

inline CommandResult MustRun(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
  auto result = RunCommand(argv, env);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() ? *result : CommandResult{};
}

// A temp directory holding
//   root/          the scratch system root (var/lib/dpkg, etc/apt, var/lib/apt, ...)
//   pkgs/          .deb files built by BuildDeb
//   repo/          a flat APT repository of every built .deb (Packages from dpkg-scanpackages)
//   apt.conf       APT_CONFIG for the root (Dir, status file, dpkg options)
//   dpkg-guard     the dpkg APT runs: refuses to run unless --root=<root> is on its command line
class ScratchRoot {
 public:
  ScratchRoot() : dir_(MakeTempDir("appban-agent-")) {
    root_ = dir_ + "/root";
    for (const char* sub :
         {"/var/lib/dpkg/info", "/var/lib/dpkg/updates", "/var/lib/dpkg/triggers", "/etc/apt/apt.conf.d",
          "/etc/apt/preferences.d", "/etc/apt/sources.list.d", "/var/lib/apt/lists/partial",
          "/var/cache/apt/archives/partial", "/var/log/apt", "/etc/dpkg/dpkg.cfg.d"}) {
      std::filesystem::create_directories(root_ + sub);
    }
    WriteText(admindir() + "/status", "");
    WriteText(admindir() + "/available", "");
    std::filesystem::create_directories(dir_ + "/pkgs");
    std::filesystem::create_directories(dir_ + "/repo");
    WriteText(dir_ + "/dpkg-guard",
              "#!/bin/sh\ncase \"$*\" in *--root=" + root_ +
                  "*) exec dpkg \"$@\";; esac\n"
                  "echo 'dpkg-guard: refusing a dpkg run outside the scratch root' >&2\nexit 99\n",
              true);
    WriteText(dir_ + "/apt.conf", "Dir \"" + root_ +
                                      "/\";\n"
                                      "Dir::State::status \"" +
                                      admindir() +
                                      "/status\";\n"
                                      "Dir::Bin::dpkg \"" +
                                      dir_ +
                                      "/dpkg-guard\";\n"
                                      "DPkg::Options { \"--root=" +
                                      root_ + "\"; \"--admindir=" + admindir() +
                                      "\"; \"--force-script-chrootless\"; };\n"
                                      "APT::Sandbox::User \"root\";\n");
    WriteText(root_ + "/etc/apt/sources.list", "deb [trusted=yes] file:" + dir_ + "/repo ./\n");
  }
  ~ScratchRoot() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  ScratchRoot(const ScratchRoot&) = delete;
  ScratchRoot& operator=(const ScratchRoot&) = delete;

  const std::string& dir() const { return dir_; }
  const std::string& root() const { return root_; }
  std::string admindir() const { return root_ + "/var/lib/dpkg"; }
  std::string apt_env() const { return "APT_CONFIG=" + dir_ + "/apt.conf"; }
  std::string deb(const std::string& name, const std::string& version = "1.0") const {
    return dir_ + "/pkgs/" + name + "_" + version + "_all.deb";
  }

  // Builds pkgs/<name>_<version>_all.deb with the given extra control lines, and copies it into repo/.
  void BuildDeb(const std::string& name, const std::string& extra_control = "", const std::string& version = "1.0") {
    std::string build = dir_ + "/build/" + name;
    WriteText(build + "/DEBIAN/control", "Package: " + name + "\nVersion: " + version +
                                             "\nArchitecture: all\n"
                                             "Maintainer: Test <test@example.org>\n" +
                                             extra_control + "Description: appban test package " + name + "\n");
    WriteText(build + "/usr/share/" + name + "/marker", name + "\n");
    auto built = MustRun({"dpkg-deb", "-Zgzip", "--root-owner-group", "--build", build, deb(name, version)});
    ASSERT_TRUE(built.ok()) << built.Describe();
    std::filesystem::copy_file(deb(name, version), dir_ + "/repo/" + name + "_" + version + "_all.deb",
                               std::filesystem::copy_options::overwrite_existing);
  }

  // dpkg-scanpackages over repo/ and `apt-get update` into the scratch root.
  void RefreshRepository() {
    auto scan = MustRun({"sh", "-c", "cd '" + dir_ + "/repo' && dpkg-scanpackages . /dev/null > Packages"});
    ASSERT_TRUE(scan.ok()) << scan.Describe();
    auto update = MustRun({"apt-get", "-q", "update"}, {apt_env()});
    ASSERT_TRUE(update.ok()) << update.Describe();
  }

  CommandResult DpkgInstall(const std::vector<std::string>& names) {
    std::vector<std::string> argv = {"dpkg", "--root=" + root_, "--admindir=" + admindir(), "--force-script-chrootless",
                                     "--install"};
    for (const auto& name : names) argv.push_back(deb(name));
    return MustRun(argv);
  }

  // The installed version of `name`, empty when it is not installed.
  std::string InstalledVersion(const std::string& name) const {
    auto status = ReadDpkgStatus(admindir());
    if (!status.ok()) return "";
    for (const auto& package : status->packages) {
      if (package.name == name && package.FilesPresent()) return package.version;
    }
    return "";
  }

  bool Installed(const std::string& name) const {
    auto status = ReadDpkgStatus(admindir());
    EXPECT_TRUE(status.ok()) << status.status().ToString();
    if (!status.ok()) return false;
    for (const auto& package : status->packages) {
      if (package.name == name && package.FilesPresent()) return true;
    }
    return false;
  }

  EnforcementConfig Config() const {
    EnforcementConfig config;
    config.paths = SystemPaths::UnderRoot(root_);
    config.apt_env = {apt_env()};
    config.dpkg_options = {"--force-script-chrootless"};
    config.wake_file = dir_ + "/run/dpkg-changed";
    return config;
  }

 private:
  std::string dir_;
  std::string root_;
};

}  // namespace appban::agent::testing
