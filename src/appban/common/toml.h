// Reading TOML files — the server configuration, the agent configuration, the risk model — one way:
// the text is bounded before toml++ sees it, toml++'s parse exceptions become a Status naming the
// file and line, and typed getters name the file, line and full key path in their errors
// ("server.toml:12: listen.port: must be an integer"), because a typo in a security tool's
// configuration must be reported where it is, never silently ignored. Whether unknown keys are
// refused is each reader's decision: TomlField::Unknown() gives the error when they are.
// Pure functions and plain values; thread-safe.
#pragma once

#include <toml++/toml.h>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/status.h"

namespace appban {

// What a TOML text may be before toml++ parses it.
struct TomlLimits {
  // Longer texts are refused (kLimitExceeded) unread.
  uint64_t max_bytes = 0;
  // toml++ builds and frees one nested table per part of a dotted key or table header, recursively,
  // and its own nesting limit does not cover them: tens of thousands of parts ("a.a.a…") overflow
  // the stack. When nonzero, every stretch of text between TOML separators (= , { } [ ] newline)
  // outside strings and comments may hold at most this many dots. Zero leaves the bound to
  // `max_bytes` alone, which suffices when it is small (16 KiB admit ~8,000 parts: measured safe).
  size_t max_key_dots = 0;
};

// Parses `text`; errors name `source` and the line ("agent.toml:3: <what toml++ says>").
Result<toml::table> ParseToml(std::string_view text, const std::string& source, const TomlLimits& limits);
// Reads `path` (refusing files over limits.max_bytes) and parses it; errors name `path`.
Result<toml::table> ReadTomlFile(const std::string& path, const TomlLimits& limits);

// One key of a parsed document and its value, named by its full key path. The getters check the
// value's exact TOML type (no conversions: 1 is not true, 1.0 is not an integer) and return
// kInvalidArgument "<file>:<line>: <key path>: <problem>". Refers to the table it came from, which
// must outlive it.
class TomlField {
 public:
  TomlField(const std::string& source, std::string path, const toml::key& key, const toml::node& node);

  const std::string& path() const { return path_; }          // "listen.port"; "data_dir" at the top
  const std::string& location() const { return location_; }  // "server.toml:12": the key's line
  const std::string& where() const { return where_; }        // "server.toml:12: listen.port"
  const toml::node& node() const { return *node_; }

  // "<where>: <problem>" with `code`.
  Status Error(std::string_view problem, StatusCode code = StatusCode::kInvalidArgument) const;
  Status Unknown() const { return Error("unknown key"); }

  Result<std::string> String() const;                       // "must be a string"
  Result<bool> Bool() const;                                // "must be true or false"
  Result<int64_t> Integer(int64_t min, int64_t max) const;  // also "70000 is outside 0..65535"
  Result<std::vector<std::string>> Strings() const;         // "must be an array of strings"
  Result<const toml::table*> Table() const;                 // "must be a table ([listen])"

 private:
  std::string path_;
  std::string location_;
  std::string where_;
  const toml::node* node_;
};

// The keys of `table` in toml++'s order (sorted by name), each named `prefix.key`, or `key` when
// `prefix` is empty, and placed at its key's line in `source`.
std::vector<TomlField> TomlFields(const toml::table& table, const std::string& source, std::string_view prefix = {});

}  // namespace appban
