// Property lists (Apple's plist format): a bounded reader for XML plists and binary plists
// ("bplist00"), both read into one small value type, and an XML plist writer.
//
// The reader is a pure parser over untrusted bytes (Info.plist files and provisioning profiles
// come from apps built by adversaries): every count, depth and size is checked against a named
// limit before anything is allocated or walked, a binary plist whose object references form a
// cycle is rejected, and a malformed document is an error naming what is wrong and where — never
// a crash or a hang. The writer produces what Apple's own tools write (tab-indented XML with the
// Apple DOCTYPE), for configuration profiles and MDM commands.
//
// Values are plain data: cheap to move, not thread-safe to mutate concurrently; the functions
// here are pure and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "appban/common/bytes.h"
#include "appban/common/status.h"

namespace appban::plist {

// One plist value. A dictionary keeps its keys in document order; a later duplicate key replaces
// the earlier value, as CoreFoundation does. Dates are seconds since the Unix epoch (UTC), with
// the fraction Apple's absolute time may carry. Data holds raw bytes. A UID (binary plists of
// NSKeyedArchiver only) is kept as its number.
class Value {
 public:
  enum class Type { kString, kInteger, kReal, kBoolean, kDate, kData, kArray, kDict, kUid };
  using Array = std::vector<Value>;
  using Dict = std::vector<std::pair<std::string, Value>>;

  Value() : Value(Type::kString, std::string()) {}
  static Value String(std::string text) { return {Type::kString, std::move(text)}; }
  static Value Integer(int64_t number) { return {Type::kInteger, number}; }
  static Value Real(double number) { return {Type::kReal, number}; }
  static Value Boolean(bool flag) { return {Type::kBoolean, flag}; }
  static Value Date(double unix_seconds) { return {Type::kDate, unix_seconds}; }
  static Value Data(std::string bytes) { return {Type::kData, std::move(bytes)}; }
  static Value MakeArray(Array items = {}) { return {Type::kArray, std::move(items)}; }
  static Value MakeDict(Dict entries = {}) { return {Type::kDict, std::move(entries)}; }
  static Value Uid(uint64_t number) { return {Type::kUid, static_cast<int64_t>(number)}; }

  Type type() const { return type_; }
  bool is_dict() const { return type_ == Type::kDict; }
  bool is_array() const { return type_ == Type::kArray; }

  // Each accessor returns the value when this is of that type, and nullptr/nullopt otherwise.
  const std::string* AsString() const { return type_ == Type::kString ? &std::get<std::string>(data_) : nullptr; }
  const std::string* AsData() const { return type_ == Type::kData ? &std::get<std::string>(data_) : nullptr; }
  std::optional<int64_t> AsInteger() const;
  std::optional<double> AsReal() const;  // a real, or an integer widened
  std::optional<bool> AsBoolean() const;
  std::optional<double> AsDate() const;
  std::optional<uint64_t> AsUid() const;
  const Array* AsArray() const { return type_ == Type::kArray ? &std::get<Array>(data_) : nullptr; }
  const Dict* AsDict() const { return type_ == Type::kDict ? &std::get<Dict>(data_) : nullptr; }
  Array* MutableArray() { return type_ == Type::kArray ? &std::get<Array>(data_) : nullptr; }

  // Dictionary lookup: the value under `key`, or nullptr when this is not a dict or has no such key.
  const Value* Find(std::string_view key) const;
  // Shorthands for the common case of a dict member of a known type.
  const std::string* FindString(std::string_view key) const;
  std::optional<bool> FindBoolean(std::string_view key) const;
  const Value::Dict* FindDict(std::string_view key) const;
  const Value::Array* FindArray(std::string_view key) const;
  // Strings of an array member, skipping non-string items.
  std::vector<std::string> FindStrings(std::string_view key) const;

  // Dictionary insertion (REQUIRES: is_dict()); replaces an existing key, else appends.
  Value& Set(std::string key, Value value);

  friend bool operator==(const Value& a, const Value& b);

 private:
  using Storage = std::variant<std::string, int64_t, double, bool, Array, Dict>;
  Value(Type type, Storage data) : type_(type), data_(std::move(data)) {}

  Type type_;
  Storage data_;
};

std::string_view TypeName(Value::Type type);

// Named limits on what a plist may make the reader allocate or walk. The defaults are generous
// for real Info.plists, entitlements and provisioning profiles (kilobytes, depth < 10) and small
// enough that a hostile file cannot exhaust memory: the value budget matters for binary plists,
// where one object can be referenced many times and is materialised once per reference.
struct Limits {
  uint64_t max_input_bytes = 32ull << 20;
  uint32_t max_objects = 1'000'000;          // objects in a binary plist's offset table
  uint32_t max_depth = 128;                  // nesting of arrays and dicts
  uint64_t max_values = 2'000'000;           // values materialised in the result, all together
  uint64_t max_payload_bytes = 64ull << 20;  // bytes of strings, keys and data materialised
};

// Reads a plist in either form, chosen by content ("bplist00" magic, else XML).
Result<Value> Parse(Bytes bytes, const Limits& limits = {});
Result<Value> ParseBinary(Bytes bytes, const Limits& limits = {});
Result<Value> ParseXml(Bytes bytes, const Limits& limits = {});

// True when `bytes` start like a plist of either form (cheap content sniffing).
bool LooksLikePlist(Bytes bytes);

// Writes `value` as an XML plist document (UTF-8, Apple's header and DOCTYPE, tab indentation).
// Strings must be valid UTF-8; characters XML 1.0 cannot carry are written as U+FFFD. A UID is
// written the way CoreFoundation does, as a dict {"CF$UID": n}.
std::string WriteXml(const Value& value);

}  // namespace appban::plist
