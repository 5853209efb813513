// resources.arsc (compiled resource table) reader: enough of it to resolve a resource reference
// from the manifest (the application label, a versionName or a boolean kept in resources) to the
// value Android would show on a device with the default configuration. Tolerant of the same
// header tricks as the AXML parser; anomalies are reported. Immutable after Parse; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "appban/apk/anomaly.h"
#include "appban/apk/axml.h"
#include "appban/apk/limits.h"
#include "appban/apk/res_string_pool.h"
#include "appban/common/bytes.h"
#include "appban/common/status.h"

namespace appban::apk {

struct ResourceValue {
  ValueType type = ValueType::kNull;
  uint32_t data = 0;
  std::string string_value;  // for kString
};

class ResourceTable {
 public:
  // Takes ownership of the bytes. Parsing only indexes the table (chunk walk, type/entry offset
  // arrays); strings and values are decoded lazily on Resolve, because real tables are tens of
  // MB and inspect needs a handful of values from them.
  static Result<ResourceTable> Parse(Buffer data, const Limits& limits, Anomalies* anomalies);

  // The value of resource `id` in the default configuration (or, when the table has no default
  // entry for it, the first configuration that has one). References are followed up to
  // limits.max_resource_reference_depth. nullopt when the id is not in the table.
  std::optional<ResourceValue> Resolve(uint32_t id) const;
  // Resolve() narrowed to a string; nullopt unless the final value is a string.
  std::optional<std::string> ResolveString(uint32_t id) const;

  size_t package_count() const { return package_count_; }

 private:
  // Internals are the implementation's choice; keep them lazy (see Parse).
  // One ResTable_type chunk: where it is and how its entry offsets are laid out.
  struct TypeChunk {
    uint32_t package_id = 0;
    uint8_t type_id = 0;
    uint8_t flags = 0;            // kSparse / kOffset16
    bool default_config = false;  // every ResTable_config field after `size` is zero
    uint32_t offset = 0;          // of the chunk within data_
    uint32_t size = 0;
    uint32_t header_size = 0;
    uint32_t entry_count = 0;
    uint32_t entries_start = 0;  // relative to the chunk
  };

  // The value of `id` without following references; nullopt when no configuration has it.
  std::optional<ResourceValue> Lookup(uint32_t id) const;
  // The Res_value of entry `index` in `chunk`, nullopt when absent or complex (a map/bag).
  std::optional<ResourceValue> EntryValue(const TypeChunk& chunk, uint32_t index) const;
  Status IndexPackage(size_t offset, Bytes package, Anomalies* anomalies);

  Buffer data_;
  size_t package_count_ = 0;
  uint32_t max_reference_depth_ = 16;
  StringPool values_;             // the table's global value string pool (views data_)
  std::vector<TypeChunk> types_;  // sorted by (package_id, type_id), file order within
};

}  // namespace appban::apk
