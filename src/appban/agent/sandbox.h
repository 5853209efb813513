// `appban agent sandbox DIR`: a scratch system root in which the agent can be tried without
// touching this machine — a dpkg database of its own, an APT configuration (APT_CONFIG) whose
// every directory points into the root, a local file repository holding a few stand-in packages,
// and an agent configuration file that names all of it. The real dpkg and apt-get do the work; a
// guard script in front of dpkg refuses any run that lacks `--root=<the sandbox root>`, so a
// mistake cannot reach the host's package database.
#pragma once

#include <string>
#include <vector>

#include "appban/common/status.h"

namespace appban::agent {

struct SandboxOptions {
  // The command APT's pre-install hook runs (the binary that creates the sandbox, by default).
  std::string apt_hook_command;
  // Build stand-in packages into the repository (names of banned apps' Linux packages, plus an
  // unrelated one that should stay installable).
  bool demo_packages = true;
  // Run `apt-get update` so the repository's packages are installable at once.
  bool update_apt = true;
};

// What was created; every path is absolute.
struct Sandbox {
  std::string dir;
  std::string root;                        // DIR/root: the system root dpkg and APT work on
  std::string admindir;                    // DIR/root/var/lib/dpkg
  std::string apt_config;                  // DIR/apt.conf: export APT_CONFIG=… to point apt-get at the root
  std::string agent_config;                // DIR/agent.toml: `appban agent … --config DIR/agent.toml`
  std::string state_dir;                   // DIR/state: the agent's state directory
  std::string packages_dir;                // DIR/pkgs: the stand-in .deb files
  std::vector<std::string> demo_packages;  // package names in the repository
};

// Stand-in packages: (name, version, description). Their names are what the real Linux builds are
// called (WeChat for Linux `wechat`, Kaspersky Endpoint Security for Linux `kesl`), so a rule
// targeting `debian:wechat` acts on them; `appban-sandbox-hello` stays allowed.
struct DemoPackage {
  const char* name;
  const char* version;
  const char* description;
};
extern const DemoPackage kSandboxDemoPackages[3];

// Creates the sandbox in `dir` (created if missing; refused when it already holds one, or holds
// anything but an empty directory). Needs dpkg-deb for the stand-in packages and apt-get for the
// update; both are in every Debian system.
Result<Sandbox> CreateSandbox(const std::string& dir, const SandboxOptions& options);

// The commands to try the sandbox with, as the CLI prints them.
std::string SandboxInstructions(const Sandbox& sandbox, const std::string& appban_binary);

}  // namespace appban::agent
