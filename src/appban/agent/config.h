// The agent's TOML configuration file (docs/agent.md): every system path and tool, monitor mode
// and timing. Loading is strict like the server's: an unknown key, a wrong type or an out-of-range
// value is an error naming the file, the line and the key ("agent.toml:4: paths.dpkg_admindr:
// unknown key"). Command-line flags are applied afterwards by the CLI and win over the file.
// Pure functions over plain values; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "appban/agent/daemon.h"
#include "appban/common/status.h"

namespace appban::agent {

// A configuration is a few KB.
inline constexpr uint64_t kMaxAgentConfigBytes = 1u << 20;

// Applies the keys of `toml_text` (named `source` in errors) onto `config`, whose values are the
// defaults the file's keys replace. `paths.root` moves every path default under it, but a path the
// file sets explicitly keeps its value. On error `config` may be partly updated.
Status ApplyAgentConfig(std::string_view toml_text, const std::string& source, DaemonConfig& config);
// Reads `path` (at most kMaxAgentConfigBytes) and applies it as ApplyAgentConfig does.
Status ApplyAgentConfigFile(const std::string& path, DaemonConfig& config);

}  // namespace appban::agent
