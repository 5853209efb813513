// A reader for dpkg's status database (<admindir>/status), parsed directly so the agent never runs
// a subprocess to take an inventory. The file is a sequence of RFC-822-like stanzas separated by
// blank lines; each stanza is "Field: value" lines, where a line starting with a space or a tab
// continues the previous field. Field names are case-insensitive (as dpkg treats them).
//
// Error policy. dpkg itself refuses to run on a status file whose *syntax* is broken, so a
// syntax error here (a line that is neither a field nor a continuation, a continuation with no
// field, a NUL byte, a limit hit) is a Corruption / LimitExceeded error naming the line. A stanza
// that is well-formed but unusable (no Package, no or an unknown Status, a duplicate
// package:architecture) is skipped with a warning naming its line, so one odd entry cannot switch
// off enforcement for every other package.
//
// Pure functions over a string_view (ParseDpkgStatus) and a bounded file read (ReadDpkgStatus);
// no shared state, safe to call from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/status.h"

namespace appban::agent {

struct DpkgStatusLimits {
  // A Debian desktop with ~4,000 packages has a status file of ~5 MB; 64 MiB leaves ample room.
  uint64_t max_file_bytes = 64ull << 20;
  // One field's value including its continuation lines (Conffiles of a big package, Description).
  size_t max_field_bytes = 1u << 20;
  size_t max_packages = 200000;
  size_t max_fields_per_stanza = 1000;
};
inline constexpr DpkgStatusLimits kDpkgStatusLimits{};

// The three words of the Status field (dpkg-query(1), "Package states").
enum class DpkgWant { kUnknown, kInstall, kHold, kDeinstall, kPurge };
enum class DpkgFlag { kOk, kReinstReq };
enum class DpkgState {
  kNotInstalled,
  kConfigFiles,
  kHalfInstalled,
  kUnpacked,
  kHalfConfigured,
  kTriggersAwaited,
  kTriggersPending,
  kInstalled,
};
std::string_view DpkgStateName(DpkgState state);

struct DpkgPackage {
  std::string name;
  std::string version;
  std::string architecture;
  std::string priority;  // "required", "important", "standard", "optional", "extra" or empty
  std::string source;    // Source field as recorded ("name" or "name (version)"), may be empty
  std::string maintainer;
  std::string origin;  // Origin field when the package recorded one
  DpkgWant want = DpkgWant::kUnknown;
  DpkgFlag flag = DpkgFlag::kOk;
  DpkgState state = DpkgState::kNotInstalled;
  bool essential = false;
  // Package names in Pre-Depends and Depends, every alternative, without versions or :arch.
  std::vector<std::string> depends;
  size_t line = 0;  // 1-based line of the stanza's first field, for messages

  // Files of the package are (or may be) on disk: every state except not-installed and
  // config-files. Half-installed and unpacked packages count: their programs may well run.
  bool FilesPresent() const { return state != DpkgState::kNotInstalled && state != DpkgState::kConfigFiles; }
  // "install ok installed"
  bool FullyInstalled() const {
    return want == DpkgWant::kInstall && flag == DpkgFlag::kOk && state == DpkgState::kInstalled;
  }
  // Essential: yes or Priority: required — packages the agent must never remove.
  bool Protected() const { return essential || priority == "required"; }
};

struct DpkgStatusWarning {
  size_t line = 0;
  std::string message;
};

struct DpkgStatus {
  std::vector<DpkgPackage> packages;  // in file order
  std::vector<DpkgStatusWarning> warnings;
};

// The packages the agent must never remove, pin or refuse (whatever a bundle says), each with the
// reason: Essential: yes, Priority: required, or needed (Pre-Depends or Depends, any alternative,
// transitively) by one of those — libc6 is Priority: optional in Debian 12, yet neither dpkg nor
// apt runs without it, and a pin would freeze its security updates. Only packages whose files are
// present count.
std::map<std::string, std::string> ProtectedPackages(const DpkgStatus& status);

Result<DpkgStatus> ParseDpkgStatus(std::string_view text, const DpkgStatusLimits& limits = kDpkgStatusLimits);
// Reads and parses `<admindir>/status`.
Result<DpkgStatus> ReadDpkgStatus(const std::string& admindir, const DpkgStatusLimits& limits = kDpkgStatusLimits);

}  // namespace appban::agent
