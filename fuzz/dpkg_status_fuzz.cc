// Fuzzes the dpkg status database parser (agent/dpkg_status.h): any bytes either parse or give a
// clear error, never a crash, hang or out-of-bounds read. Small limits make the limit paths
// reachable with small inputs. Every accepted package must satisfy what the parser promises:
// a non-empty name without white space, and a unique name:architecture.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "appban/agent/dpkg_status.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  appban::agent::DpkgStatusLimits limits;
  limits.max_file_bytes = 1 << 20;
  limits.max_field_bytes = 4096;
  limits.max_packages = 500;
  limits.max_fields_per_stanza = 64;
  auto parsed = appban::agent::ParseDpkgStatus(text, limits);
  if (!parsed.ok()) {
    if (parsed.status().message().empty()) __builtin_trap();
    return 0;
  }
  std::set<std::string> seen;
  for (const auto& package : parsed->packages) {
    if (package.name.empty() || package.name.find_first_of(" \t\n") != std::string::npos) __builtin_trap();
    if (!seen.insert(package.name + ":" + package.architecture).second) __builtin_trap();
    if (package.line == 0) __builtin_trap();
  }
  if (parsed->packages.size() > limits.max_packages) __builtin_trap();
  return 0;
}
