// resources.arsc indexing and lazy resolution.
//
// Layout (ResourceTypes.h): RES_TABLE_TYPE header {packageCount}, one global value string pool,
// then RES_TABLE_PACKAGE_TYPE chunks, each holding a type-name pool, a key-name pool, and per type
// a RES_TABLE_TYPE_SPEC_TYPE chunk plus one RES_TABLE_TYPE_TYPE chunk per configuration. A type
// chunk has an entry-offset array (uint32; or uint16 * 4 with FLAG_OFFSET16; or sorted
// {index, offset / 4} pairs with FLAG_SPARSE) followed by the entries. Parse() walks only chunk
// headers and records where each type chunk's offset array is; Resolve() reads the few bytes of
// one entry. Like the framework's LoadedArsc, unknown chunks are skipped and the first global
// string pool is the one used.
#include "appban/apk/arsc.h"
#include "appban/common/text.h"

#include <algorithm>

namespace appban::apk {
namespace {

constexpr size_t kTableHeaderBytes = 12;
constexpr size_t kPackageHeaderMinBytes = 284;  // ResTable_package without typeIdOffset
constexpr size_t kTypeHeaderMinBytes = 24;      // ResTable_type up to and including config.size
constexpr size_t kConfigOffsetInType = 20;
constexpr uint8_t kSparseFlag = 0x01;
constexpr uint8_t kOffset16Flag = 0x02;
constexpr uint16_t kEntryFlagComplex = 0x0001;
constexpr uint16_t kEntryFlagCompact = 0x0008;
constexpr uint32_t kNoEntry32 = 0xffffffff;
constexpr uint16_t kNoEntry16 = 0xffff;
constexpr size_t kEntryHeaderBytes = 8;
constexpr size_t kResValueBytes = 8;

// Walks the chunks in data[begin, end) and calls visit(offset, header, chunk bytes) for each one
// that Android's validate_chunk accepts, clamping a chunk that overruns the end (with an
// anomaly). Stops at the first chunk whose header cannot be trusted.
template <typename Visit>
Status WalkChunks(Bytes data, size_t begin, size_t end, std::string_view context, Anomalies* anomalies, Visit&& visit) {
  size_t offset = begin;
  while (offset + kChunkHeaderBytes <= end) {
    ChunkHeader chunk = *ReadChunkHeader(data, offset);
    std::string problem = ValidateChunk(chunk, kChunkHeaderBytes, end - offset);
    if (!problem.empty()) {
      bool only_overruns = chunk.header_size >= kChunkHeaderBytes && chunk.header_size <= chunk.size &&
                           chunk.header_size <= end - offset && ((chunk.header_size | chunk.size) & 3) == 0;
      if (!only_overruns) {
        AddAnomaly(anomalies, "arsc.bad_chunk", "resources.arsc at " + HexNumber(offset),
                   std::string(context) + " chunk type " + HexNumber(chunk.type) + ": " + problem +
                       "; the rest of it is skipped");
        return Status::Ok();
      }
      AddAnomaly(anomalies, "arsc.chunk_overrun", "resources.arsc at " + HexNumber(offset),
                 std::string(context) + " chunk type " + HexNumber(chunk.type) + ": " + problem +
                     "; read up to the end of its parent");
      chunk.size = static_cast<uint32_t>((end - offset) & ~size_t{3});
      if (chunk.size < chunk.header_size) return Status::Ok();
    }
    APPBAN_RETURN_IF_ERROR(visit(offset, chunk, data.subspan(offset, chunk.size)));
    offset += chunk.size;
  }
  return Status::Ok();
}

}  // namespace

Result<ResourceTable> ResourceTable::Parse(Buffer data, const Limits& limits, Anomalies* anomalies) {
  ResourceTable table;
  table.data_ = std::move(data);
  table.max_reference_depth_ = limits.max_resource_reference_depth;
  const Bytes bytes = table.data_.bytes();
  auto header = ReadChunkHeader(bytes, 0);
  if (!header || header->type != kResTableType) {
    return Status::NotRecognized("resources.arsc does not start with a resource table chunk (type 0x2)");
  }
  if (header->header_size < kTableHeaderBytes || header->header_size > bytes.size()) {
    return Status::Corruption("resource table header size " + std::to_string(header->header_size) + " is impossible");
  }
  size_t end = bytes.size();
  if (header->size > bytes.size()) {
    AddAnomaly(anomalies, "arsc.file_size", "resources.arsc",
               "declared table size " + std::to_string(header->size) + " exceeds the " + std::to_string(bytes.size()) +
                   " bytes present; read to the end of the data");
  } else if (header->size >= header->header_size) {
    end = header->size;
  }
  const uint32_t declared_packages = *LoadLE<uint32_t>(bytes, 8);
  bool have_pool = false;
  APPBAN_RETURN_IF_ERROR(WalkChunks(
      bytes, header->header_size, end, "table", anomalies,
      [&](size_t offset, const ChunkHeader& chunk, Bytes chunk_bytes) -> Status {
        if (chunk.type == kResStringPoolType) {
          if (have_pool) {
            AddAnomaly(anomalies, "arsc.multiple_string_pools", "resources.arsc at " + HexNumber(offset),
                       "a second global string pool; ignored, the first one is used as on Android");
            return Status::Ok();
          }
          APPBAN_ASSIGN_OR_RETURN(table.values_, StringPool::Parse(chunk_bytes, offset, "arsc", limits, anomalies));
          have_pool = true;
        } else if (chunk.type == kResTablePackageType) {
          APPBAN_RETURN_IF_ERROR(table.IndexPackage(offset, chunk_bytes, anomalies));
        } else {
          AddAnomaly(anomalies, "arsc.unknown_chunk", "resources.arsc at " + HexNumber(offset),
                     "chunk of unknown type " + HexNumber(chunk.type) + " in the table; skipped");
        }
        return Status::Ok();
      }));
  if (table.package_count_ != declared_packages) {
    AddAnomaly(anomalies, "arsc.package_count", "resources.arsc",
               "header declares " + std::to_string(declared_packages) + " packages but " +
                   std::to_string(table.package_count_) + " were found");
  }
  std::stable_sort(table.types_.begin(), table.types_.end(), [](const TypeChunk& a, const TypeChunk& b) {
    return a.package_id != b.package_id ? a.package_id < b.package_id : a.type_id < b.type_id;
  });
  return table;
}

Status ResourceTable::IndexPackage(size_t offset, Bytes package, Anomalies* anomalies) {
  const uint16_t header_size = *LoadLE<uint16_t>(package, 2);
  if (header_size < kPackageHeaderMinBytes) {
    AddAnomaly(anomalies, "arsc.bad_package", "resources.arsc at " + HexNumber(offset),
               "package header of " + std::to_string(header_size) + " bytes is too small; package skipped");
    return Status::Ok();
  }
  ++package_count_;
  const uint32_t package_id = *LoadLE<uint32_t>(package, 8);
  const Bytes data = data_.bytes();
  return WalkChunks(
      data, offset + header_size, offset + package.size(), "package", anomalies,
      [&](size_t type_offset, const ChunkHeader& chunk, Bytes chunk_bytes) -> Status {
        if (chunk.type != kResTableTypeType) return Status::Ok();  // pools, specs, library, overlayable: unused
        const std::string where = "resources.arsc at " + HexNumber(type_offset);
        if (chunk.header_size < kTypeHeaderMinBytes) {
          AddAnomaly(anomalies, "arsc.bad_type_chunk", where, "type chunk header too small; skipped");
          return Status::Ok();
        }
        TypeChunk type;
        type.package_id = package_id;
        type.type_id = chunk_bytes[8];
        type.flags = chunk_bytes[9];
        type.entry_count = *LoadLE<uint32_t>(chunk_bytes, 12);
        type.entries_start = *LoadLE<uint32_t>(chunk_bytes, 16);
        type.offset = static_cast<uint32_t>(type_offset);
        type.size = chunk.size;
        type.header_size = chunk.header_size;
        const uint64_t offsets_bytes =
            uint64_t{type.entry_count} * ((type.flags & (kSparseFlag | kOffset16Flag)) == kOffset16Flag ? 2 : 4);
        if (type.type_id == 0 || type.entries_start > chunk.size ||
            type.header_size + offsets_bytes > std::max<uint64_t>(type.entries_start, type.header_size)) {
          AddAnomaly(anomalies, "arsc.bad_type_chunk", where,
                     "type chunk with id " + std::to_string(type.type_id) + ", " + std::to_string(type.entry_count) +
                         " entries starting at " + std::to_string(type.entries_start) +
                         " does not fit its chunk; skipped, as Android does");
          return Status::Ok();
        }
        const uint32_t config_size = *LoadLE<uint32_t>(chunk_bytes, kConfigOffsetInType);
        const size_t config_end = std::min<uint64_t>(kConfigOffsetInType + uint64_t{config_size}, type.header_size);
        type.default_config = true;
        for (size_t i = kConfigOffsetInType + 4; i < config_end; ++i) {
          if (chunk_bytes[i] != 0) {
            type.default_config = false;
            break;
          }
        }
        types_.push_back(type);
        return Status::Ok();
      });
}

std::optional<ResourceValue> ResourceTable::EntryValue(const TypeChunk& chunk, uint32_t index) const {
  const Bytes bytes = data_.bytes().subspan(chunk.offset, chunk.size);
  uint64_t entry_offset = 0;
  if (chunk.flags & kSparseFlag) {
    // Sorted {uint16 entry index, uint16 offset / 4} pairs: binary search.
    uint32_t low = 0;
    uint32_t high = chunk.entry_count;
    bool found = false;
    while (low < high) {
      uint32_t mid = low + (high - low) / 2;
      auto entry_index = LoadLE<uint16_t>(bytes, chunk.header_size + 4ull * mid);
      auto quarter_offset = LoadLE<uint16_t>(bytes, chunk.header_size + 4ull * mid + 2);
      if (!entry_index || !quarter_offset) return std::nullopt;
      if (*entry_index == index) {
        entry_offset = uint64_t{*quarter_offset} * 4;
        found = true;
        break;
      }
      if (*entry_index < index) {
        low = mid + 1;
      } else {
        high = mid;
      }
    }
    if (!found) return std::nullopt;
  } else {
    if (index >= chunk.entry_count) return std::nullopt;
    if (chunk.flags & kOffset16Flag) {
      auto value = LoadLE<uint16_t>(bytes, chunk.header_size + 2ull * index);
      if (!value || *value == kNoEntry16) return std::nullopt;
      entry_offset = uint64_t{*value} * 4;
    } else {
      auto value = LoadLE<uint32_t>(bytes, chunk.header_size + 4ull * index);
      if (!value || *value == kNoEntry32) return std::nullopt;
      entry_offset = *value;
    }
  }
  const uint64_t entry_at = uint64_t{chunk.entries_start} + entry_offset;
  auto entry_size = LoadLE<uint16_t>(bytes, entry_at);
  auto entry_flags = LoadLE<uint16_t>(bytes, entry_at + 2);
  auto entry_data = LoadLE<uint32_t>(bytes, entry_at + 4);
  if (!entry_size || !entry_flags || !entry_data) return std::nullopt;
  ResourceValue value;
  if (*entry_flags & kEntryFlagCompact) {
    // Compact entry (Android 14): {uint16 key, uint16 flags with the value type in the high byte,
    // uint32 data}.
    value.type = static_cast<ValueType>(*entry_flags >> 8);
    value.data = *entry_data;
  } else {
    if (*entry_flags & kEntryFlagComplex) return std::nullopt;  // a bag (style, plural, array)
    if (*entry_size < kEntryHeaderBytes) return std::nullopt;
    auto res_value = SubSpan(bytes, entry_at + *entry_size, kResValueBytes);
    if (!res_value) return std::nullopt;
    value.type = static_cast<ValueType>((*res_value)[3]);
    value.data = *LoadLE<uint32_t>(*res_value, 4);
  }
  if (value.type == ValueType::kString) value.string_value = values_.GetOrEmpty(value.data);
  return value;
}

std::optional<ResourceValue> ResourceTable::Lookup(uint32_t id) const {
  const uint32_t package_id = id >> 24;
  const uint32_t type_id = (id >> 16) & 0xff;
  const uint32_t entry_index = id & 0xffff;
  if (type_id == 0) return std::nullopt;
  TypeChunk key;
  key.package_id = package_id;
  key.type_id = static_cast<uint8_t>(type_id);
  auto [first, last] = std::equal_range(types_.begin(), types_.end(), key, [](const TypeChunk& a, const TypeChunk& b) {
    return a.package_id != b.package_id ? a.package_id < b.package_id : a.type_id < b.type_id;
  });
  std::optional<ResourceValue> first_available;
  for (auto it = first; it != last; ++it) {
    if (!it->default_config && first_available) continue;
    auto value = EntryValue(*it, entry_index);
    if (!value) continue;
    if (it->default_config) return value;
    first_available = std::move(value);
  }
  return first_available;
}

std::optional<ResourceValue> ResourceTable::Resolve(uint32_t id) const {
  // Each step follows one reference; a cycle (A -> B -> A) runs out of depth and resolves to
  // nothing, like a dangling reference.
  for (uint32_t depth = 0; depth <= max_reference_depth_; ++depth) {
    auto value = Lookup(id);
    if (!value) return std::nullopt;
    bool is_reference = value->type == ValueType::kReference || value->type == ValueType::kDynamicReference;
    if (!is_reference || value->data == 0) return value;
    id = value->data;
  }
  return std::nullopt;
}

std::optional<std::string> ResourceTable::ResolveString(uint32_t id) const {
  auto value = Resolve(id);
  if (!value || value->type != ValueType::kString) return std::nullopt;
  return std::move(value->string_value);
}

}  // namespace appban::apk
