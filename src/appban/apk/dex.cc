// DEX reader. Layout and rules from the public "Dalvik Executable format" specification
// (source.android.com/docs/core/runtime/dex-format); the v41 container fields follow ART's
// libdexfile headers.
//
// Parse validates every id table once — bounds, every index it holds, every string's terminator —
// so the accessors below read straight from the buffer with no error paths. Everything a
// well-formed DEX may legally vary on, or that Android tolerates, becomes an anomaly; anything
// that would make an accessor read out of bounds is an error.
#include "appban/apk/dex.h"
#include "appban/common/text.h"

#include <libdeflate.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <utility>

namespace appban::apk {
namespace {

constexpr uint32_t kHeaderSize = 0x70;           // versions 035..040
constexpr uint32_t kContainerHeaderSize = 0x78;  // version 041 adds container_size, header_offset
constexpr uint32_t kLittleEndianTag = 0x12345678;
constexpr uint32_t kReverseEndianTag = 0x78563412;
constexpr uint32_t kNoIndex = 0xffffffff;
constexpr uint32_t kMinKnownVersion = 35;
constexpr uint32_t kMaxKnownVersion = 41;
constexpr uint32_t kFirstContainerVersion = 41;

// Header field offsets.
constexpr size_t kChecksumOffset = 8;
constexpr size_t kSignatureOffset = 12;
constexpr size_t kFileSizeOffset = 32;
constexpr size_t kHeaderSizeOffset = 36;
constexpr size_t kEndianTagOffset = 40;
constexpr size_t kLinkSizeOffset = 44;
constexpr size_t kMapOffsetOffset = 52;
constexpr size_t kStringIdsOffset = 56;  // then type, proto, field, method ids and class_defs,
                                         // each a (size, offset) pair of u32
constexpr size_t kContainerSizeOffset = 0x70;
constexpr size_t kHeaderOffsetOffset = 0x74;

// Entry sizes of the id tables.
constexpr uint32_t kStringIdSize = 4;
constexpr uint32_t kTypeIdSize = 4;
constexpr uint32_t kProtoIdSize = 12;
constexpr uint32_t kFieldIdSize = 8;
constexpr uint32_t kMethodIdSize = 8;
constexpr uint32_t kClassDefSize = 32;

// map_list item type codes of the id tables, in header order.
constexpr std::array<uint16_t, 6> kIdTableMapCodes = {0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0006};
constexpr std::array<const char*, 6> kIdTableNames = {"string_ids", "type_ids",   "proto_ids",
                                                      "field_ids",  "method_ids", "class_defs"};

// Readers for offsets Parse has already proven to be in bounds. Byte assembly keeps them
// independent of host endianness; compilers turn it into one load.
inline uint16_t U16At(const uint8_t* base, size_t offset) {
  return static_cast<uint16_t>(base[offset] | (base[offset + 1] << 8));
}
inline uint32_t U32At(const uint8_t* base, size_t offset) {
  return static_cast<uint32_t>(base[offset]) | (static_cast<uint32_t>(base[offset + 1]) << 8) |
         (static_cast<uint32_t>(base[offset + 2]) << 16) | (static_cast<uint32_t>(base[offset + 3]) << 24);
}

// Yields the UTF-16 code units of a MUTF-8 string one by one. Bytes that are not valid MUTF-8
// (or 4-byte UTF-8, which some tools emit) become values above any code unit, so every byte
// string still has a distinct, deterministic unit sequence.
class Utf16Units {
 public:
  explicit Utf16Units(std::string_view text, size_t position = 0) : text_(text), position_(position) {}

  bool Next(uint32_t* unit) {
    if (pending_ != kNone) {
      *unit = std::exchange(pending_, kNone);
      return true;
    }
    if (position_ >= text_.size()) return false;
    auto byte = [&](size_t i) { return static_cast<uint8_t>(text_[position_ + i]); };
    auto continuation = [&](size_t i) { return position_ + i < text_.size() && (byte(i) & 0xc0) == 0x80; };
    uint8_t lead = byte(0);
    if (lead < 0x80) {
      *unit = lead, position_ += 1;
    } else if ((lead & 0xe0) == 0xc0 && continuation(1)) {
      *unit = ((lead & 0x1fu) << 6) | (byte(1) & 0x3fu), position_ += 2;
    } else if ((lead & 0xf0) == 0xe0 && continuation(1) && continuation(2)) {
      *unit = ((lead & 0x0fu) << 12) | ((byte(1) & 0x3fu) << 6) | (byte(2) & 0x3fu), position_ += 3;
    } else if ((lead & 0xf8) == 0xf0 && continuation(1) && continuation(2) && continuation(3) &&
               DecodeSupplementary(lead, unit)) {
      position_ += 4;
    } else {
      *unit = kMalformedBase + lead, position_ += 1;
    }
    return true;
  }

 private:
  static constexpr uint32_t kNone = 0xffffffff;
  static constexpr uint32_t kMalformedBase = 0x110000;

  // A 4-byte UTF-8 sequence: emit its surrogate pair, as UTF-16 would hold it.
  bool DecodeSupplementary(uint8_t lead, uint32_t* unit) {
    uint32_t code_point = ((lead & 0x07u) << 18) | ((static_cast<uint8_t>(text_[position_ + 1]) & 0x3fu) << 12) |
                          ((static_cast<uint8_t>(text_[position_ + 2]) & 0x3fu) << 6) |
                          (static_cast<uint8_t>(text_[position_ + 3]) & 0x3fu);
    if (code_point < 0x10000 || code_point > 0x10ffff) return false;
    *unit = 0xd800 + ((code_point - 0x10000) >> 10);
    pending_ = 0xdc00 + ((code_point - 0x10000) & 0x3ff);
    return true;
  }

  std::string_view text_;
  size_t position_;
  uint32_t pending_ = kNone;
};

// Orders MUTF-8 strings by UTF-16 code units, the order the format requires for string_ids. This
// equals plain byte order except around U+0000, which MUTF-8 writes as C0 80 and which Kotlin
// metadata strings are full of. Returns <0, 0 or >0.
int CompareMutf8(std::string_view a, std::string_view b) {
  size_t mismatch = static_cast<size_t>(std::mismatch(a.begin(), a.end(), b.begin(), b.end()).first - a.begin());
  // Restart decoding where a character surely begins: just after an ASCII byte (never part of a
  // multi-byte sequence) or at the start. The bytes before are identical in both strings, so
  // this gives exactly the result of comparing the full unit sequences.
  size_t start = mismatch;
  while (start > 0 && static_cast<uint8_t>(a[start - 1]) >= 0x80) --start;
  Utf16Units left(a, start), right(b, start);
  while (true) {
    uint32_t left_unit = 0, right_unit = 0;
    bool left_more = left.Next(&left_unit), right_more = right.Next(&right_unit);
    if (!left_more || !right_more) return left_more ? 1 : (right_more ? -1 : 0);
    if (left_unit != right_unit) return left_unit < right_unit ? -1 : 1;
  }
}

struct TableSpec {
  uint32_t count = 0;
  uint32_t offset = 0;
};

// Holds what Parse needs while validating one file, so the helpers can name the file in messages
// and add anomalies without long parameter lists.
class Validator {
 public:
  Validator(const std::string& name, Bytes bytes, Anomalies* anomalies)
      : name_(name), bytes_(bytes), base_(bytes.data()), anomalies_(anomalies) {}

  void Anomaly(std::string code, std::string detail) const {
    AddAnomaly(anomalies_, std::move(code), name_, std::move(detail));
  }

  // A table of `spec.count` entries of `entry_size` bytes at `spec.offset` must lie inside the
  // file. Tables that overlap the header or are misaligned are read anyway (the bytes are there)
  // but reported, because every DEX compiler writes them aligned after the header.
  Status CheckTable(const char* table, TableSpec spec, uint32_t entry_size, uint32_t header_size) const {
    if (spec.count == 0) return Status::Ok();
    uint64_t end = uint64_t{spec.offset} + uint64_t{spec.count} * entry_size;
    if (end > bytes_.size()) {
      return Status::Truncated(std::string(table) + " table at " + HexNumber(spec.offset) + " with " +
                               std::to_string(spec.count) + " entries runs past the end of " + name_ + " (size " +
                               std::to_string(bytes_.size()) + ")");
    }
    if (spec.offset < header_size) {
      Anomaly("dex.table_overlaps_header", std::string(table) + " table at " + HexNumber(spec.offset) +
                                               " starts inside the " + std::to_string(header_size) +
                                               "-byte header; read as found");
    }
    if (spec.offset % 4 != 0) {
      Anomaly("dex.misaligned_table",
              std::string(table) + " table at " + HexNumber(spec.offset) + " is not 4-byte aligned; read as found");
    }
    return Status::Ok();
  }

  // A type_list (u32 size, then u16 type indices) at `offset`, as used for prototype parameters
  // and implemented interfaces. `owner` names the referring item for messages.
  Status CheckTypeList(uint32_t offset, uint32_t type_count, const std::string& owner) const {
    auto size = LoadLE<uint32_t>(bytes_, offset);
    if (!size || uint64_t{offset} + 4 + uint64_t{*size} * 2 > bytes_.size()) {
      return Status::Corruption(owner + " has a type list at " + HexNumber(offset) + " that runs past the end of " +
                                name_);
    }
    for (uint32_t i = 0; i < *size; ++i) {
      uint16_t type = U16At(base_, size_t{offset} + 4 + size_t{i} * 2);
      if (type >= type_count) {
        return Status::Corruption(owner + " lists type " + std::to_string(type) + " but type_ids has " +
                                  std::to_string(type_count) + " entries");
      }
    }
    return Status::Ok();
  }

  Status IndexError(const char* table, uint32_t entry, const char* field, uint32_t value, const char* target,
                    uint32_t target_count) const {
    return Status::Corruption(std::string(table) + "[" + std::to_string(entry) + "]." + field + " is " +
                              std::to_string(value) + " but " + target + " has " + std::to_string(target_count) +
                              " entries");
  }

  const std::string& name() const { return name_; }
  Bytes bytes() const { return bytes_; }
  const uint8_t* base() const { return base_; }

 private:
  const std::string& name_;
  Bytes bytes_;
  const uint8_t* base_;
  Anomalies* anomalies_;
};

// The version is three ASCII digits and a NUL ("035\0"); returns 0 when it is not.
uint32_t ParseVersion(Bytes magic) {
  uint32_t version = 0;
  for (size_t i = 4; i < 7; ++i) {
    if (magic[i] < '0' || magic[i] > '9') return 0;
    version = version * 10 + (magic[i] - '0');
  }
  return magic[7] == 0 ? version : 0;
}

// The Adler-32 checksum covers everything after its own field; ART verifies it before loading
// a DEX, so a payload tampered after the build without fixing it shows up here. (The SHA-1
// "signature" is not checked: ART ignores it and d8 output does not match a plain SHA-1 of the
// file, so a mismatch would be noise on every modern app.) libdeflate's Adler-32 gives zlib's
// result ~7x faster (SIMD); the tests cross-check it with zlib.
void CheckChecksum(const Validator& validator, Bytes covered) {
  const uint8_t* base = covered.data();
  uint32_t stored_checksum = U32At(base, kChecksumOffset);
  uint32_t actual_checksum =
      static_cast<uint32_t>(libdeflate_adler32(1, base + kSignatureOffset, covered.size() - kSignatureOffset));
  if (stored_checksum != actual_checksum) {
    validator.Anomaly("dex.checksum_mismatch", "header checksum is " + HexNumber(stored_checksum) +
                                                   " but the Adler-32 of the file is " + HexNumber(actual_checksum) +
                                                   "; the file was modified after it was built");
  }
}

// The map_list is what ART walks to verify a DEX; it must exist and agree with the header.
void CheckMap(const Validator& validator, uint32_t map_offset, const std::array<TableSpec, 6>& tables) {
  Bytes bytes = validator.bytes();
  if (map_offset == 0) {
    validator.Anomaly("dex.map_missing", "header has no map_list (map_off is 0), which Android requires");
    return;
  }
  auto count = LoadLE<uint32_t>(bytes, map_offset);
  if (map_offset % 4 != 0 || !count || uint64_t{map_offset} + 4 + uint64_t{*count} * 12 > bytes.size()) {
    validator.Anomaly("dex.bad_map", "map_list at " + HexNumber(map_offset) +
                                         " is misaligned or runs past the end of the file; ignored");
    return;
  }
  for (uint32_t i = 0; i < *count; ++i) {
    size_t item = size_t{map_offset} + 4 + size_t{i} * 12;
    uint16_t type = U16At(validator.base(), item);
    auto code = std::find(kIdTableMapCodes.begin(), kIdTableMapCodes.end(), type);
    if (code == kIdTableMapCodes.end()) continue;
    size_t table = static_cast<size_t>(code - kIdTableMapCodes.begin());
    uint32_t size = U32At(validator.base(), item + 4);
    uint32_t offset = U32At(validator.base(), item + 8);
    if (size != tables[table].count || (size != 0 && offset != tables[table].offset)) {
      validator.Anomaly("dex.map_mismatch", std::string("map_list says ") + kIdTableNames[table] + " has " +
                                                std::to_string(size) + " entries at " + HexNumber(offset) +
                                                " but the header says " + std::to_string(tables[table].count) + " at " +
                                                HexNumber(tables[table].offset) + "; the header was used");
    }
  }
}

// What the header says, once checked: the version, the header's own size and the id tables.
struct HeaderFacts {
  uint32_t version = 0;
  uint32_t header_size = 0;
  std::array<TableSpec, 6> tables;  // string, type, proto, field, method ids, class_defs
};

// The magic, the size limit and room for a header: everything that must hold before a Validator
// may read header fields.
Status CheckEnvelope(const std::string& name, Bytes bytes, const Limits& limits) {
  if (bytes.size() < 4 || std::memcmp(bytes.data(), "dex\n", 4) != 0) {
    return Status::NotRecognized(name + " is not a DEX file (no \"dex\\n\" magic)");
  }
  if (bytes.size() > limits.max_dex_bytes) {
    return Status::LimitExceeded(name + " is " + std::to_string(bytes.size()) + " bytes, over the limit of " +
                                 std::to_string(limits.max_dex_bytes) + " bytes for one DEX file");
  }
  if (bytes.size() < kHeaderSize) {
    return Status::Truncated(name + " has " + std::to_string(bytes.size()) + " bytes but a DEX header needs " +
                             std::to_string(kHeaderSize));
  }
  return Status::Ok();
}

// The header's extent (file_size), the v41 container fields and the checksum over that extent.
Status CheckExtent(const Validator& validator, uint32_t version, uint32_t header_size) {
  Bytes bytes = validator.bytes();
  const uint8_t* base = validator.base();
  // The extent this header describes: normally the whole buffer.
  uint32_t file_size = U32At(base, kFileSizeOffset);
  if (file_size > bytes.size()) {
    return Status::Truncated("header says " + validator.name() + " is " + std::to_string(file_size) +
                             " bytes but only " + std::to_string(bytes.size()) + " are present");
  }
  bool multi_dex_container = false;
  if (version >= kFirstContainerVersion && header_size >= kContainerHeaderSize &&
      bytes.size() >= kContainerHeaderSize) {
    uint32_t container_size = U32At(base, kContainerSizeOffset);
    uint32_t header_offset = U32At(base, kHeaderOffsetOffset);
    if (header_offset != 0 || container_size != file_size) {
      // Several DEX files share one container (Android 15+). Only the first is read: its tables
      // sit at the same offsets whether they count from the header or from the container.
      multi_dex_container = true;
      validator.Anomaly("dex.container_multiple", "DEX container of " + std::to_string(container_size) +
                                                      " bytes holds more than this first " + std::to_string(file_size) +
                                                      "-byte DEX (header_offset " + std::to_string(header_offset) +
                                                      "); only the first DEX is read and its checksum is not verified");
    }
  }
  if (file_size < bytes.size() && !multi_dex_container) {
    validator.Anomaly("dex.trailing_data", "header file_size is " + std::to_string(file_size) + " but the file has " +
                                               std::to_string(bytes.size()) + " bytes; the extra bytes are ignored");
  }
  if (file_size < kHeaderSize) {
    validator.Anomaly("dex.bad_file_size", "header file_size " + std::to_string(file_size) +
                                               " is smaller than the header; using the real size");
    file_size = static_cast<uint32_t>(bytes.size());
  }
  if (!multi_dex_container) CheckChecksum(validator, bytes.first(file_size));
  return Status::Ok();
}

// Reads and checks the header: version, byte order, header size, extent and checksum, link
// section, map_list, and that every id table lies inside the file.
Result<HeaderFacts> ReadHeader(const Validator& validator) {
  const uint8_t* base = validator.base();
  HeaderFacts header;
  header.version = ParseVersion(validator.bytes());
  if (header.version < kMinKnownVersion || header.version > kMaxKnownVersion) {
    std::string shown;
    for (size_t i = 4; i < 8; ++i) shown += (base[i] >= 0x20 && base[i] < 0x7f) ? static_cast<char>(base[i]) : '?';
    validator.Anomaly("dex.unknown_version",
                      "DEX version \"" + shown + "\" is not one of 035..041; read with the 035..041 layout");
  }

  uint32_t endian_tag = U32At(base, kEndianTagOffset);
  if (endian_tag == kReverseEndianTag) {
    return Status::Unsupported(validator.name() +
                               " is a big-endian (reverse endian_tag 0x78563412) DEX; Android never ships "
                               "these and appban reads only little-endian DEX");
  }
  if (endian_tag != kLittleEndianTag) {
    validator.Anomaly("dex.bad_endian_tag", "endian_tag is " + HexNumber(endian_tag) +
                                                " instead of 0x12345678; read as "
                                                "little-endian");
  }

  header.header_size = U32At(base, kHeaderSizeOffset);
  uint32_t expected_header_size = header.version >= kFirstContainerVersion ? kContainerHeaderSize : kHeaderSize;
  if (header.header_size != expected_header_size) {
    validator.Anomaly("dex.bad_header_size", "header_size is " + std::to_string(header.header_size) + " instead of " +
                                                 std::to_string(expected_header_size));
  }
  APPBAN_RETURN_IF_ERROR(CheckExtent(validator, header.version, header.header_size));

  if (U32At(base, kLinkSizeOffset) != 0) {
    validator.Anomaly("dex.link_section", "DEX declares a link section, which Android does not support; ignored");
  }

  auto& tables = header.tables;
  for (size_t i = 0; i < tables.size(); ++i) {
    tables[i] = {U32At(base, kStringIdsOffset + i * 8), U32At(base, kStringIdsOffset + i * 8 + 4)};
  }
  CheckMap(validator, U32At(base, kMapOffsetOffset), tables);
  constexpr std::array<uint32_t, 6> kEntrySizes = {kStringIdSize, kTypeIdSize,   kProtoIdSize,
                                                   kFieldIdSize,  kMethodIdSize, kClassDefSize};
  for (size_t i = 0; i < tables.size(); ++i) {
    APPBAN_RETURN_IF_ERROR(validator.CheckTable(kIdTableNames[i], tables[i], kEntrySizes[i], header.header_size));
  }
  return header;
}

// Where each string's bytes are, and whether string_ids are in the order the format requires.
struct StringIndex {
  std::vector<uint32_t> offsets;
  std::vector<uint32_t> lengths;
  bool sorted = true;
};

// Strings: a uleb128 UTF-16 length, then MUTF-8 bytes ending in NUL. MUTF-8 encodes U+0000 as
// C0 80, so the first zero byte is always the terminator and memchr finds it. Real files never
// share string bytes, so scanning more than a few times the file means overlapping strings
// planted to make this loop quadratic.
Result<StringIndex> IndexStrings(const Validator& validator, TableSpec strings) {
  Bytes bytes = validator.bytes();
  const uint8_t* base = validator.base();
  const std::string& name = validator.name();
  const size_t size = bytes.size();
  uint64_t scan_budget = uint64_t{size} * 4 + 4096;
  uint32_t length_mismatches = 0, first_length_mismatch = 0;
  StringIndex index;
  index.offsets.resize(strings.count);
  index.lengths.resize(strings.count);
  std::string_view previous;
  for (uint32_t i = 0; i < strings.count; ++i) {
    uint32_t data_offset = U32At(base, size_t{strings.offset} + size_t{i} * kStringIdSize);
    ByteReader reader(bytes);
    std::optional<uint32_t> utf16_length;
    if (!reader.Seek(data_offset) || !(utf16_length = reader.Uleb128())) {
      return Status::Corruption("string_ids[" + std::to_string(i) + "] points at " + HexNumber(data_offset) +
                                ", which is not a string_data_item inside " + name + " (size " + std::to_string(size) +
                                ")");
    }
    size_t start = reader.position();
    const void* terminator = std::memchr(base + start, 0, size - start);
    if (terminator == nullptr) {
      return Status::Corruption("string " + std::to_string(i) + " at " + HexNumber(data_offset) +
                                " has no NUL terminator before the end of " + name);
    }
    size_t length = static_cast<size_t>(static_cast<const uint8_t*>(terminator) - (base + start));
    if (length + 1 > scan_budget) {
      return Status::LimitExceeded("string data in " + name + " overlaps itself (string " + std::to_string(i) +
                                   " and earlier ones reread more than 4x the file)");
    }
    scan_budget -= length + 1;
    // Each UTF-16 unit takes 1 to 3 MUTF-8 bytes.
    if (length < *utf16_length || length > uint64_t{*utf16_length} * 3) {
      if (length_mismatches++ == 0) first_length_mismatch = i;
    }
    index.offsets[i] = static_cast<uint32_t>(start);
    index.lengths[i] = static_cast<uint32_t>(length);
    std::string_view current(reinterpret_cast<const char*>(base + start), length);
    if (index.sorted && i > 0 && CompareMutf8(previous, current) >= 0) index.sorted = false;
    previous = current;
  }
  if (length_mismatches > 0) {
    validator.Anomaly("dex.string_length_mismatch",
                      std::to_string(length_mismatches) + " strings (first: string " +
                          std::to_string(first_length_mismatch) +
                          ") have a byte length that cannot encode their declared UTF-16 length");
  }
  if (!index.sorted && strings.count > 1) {
    validator.Anomaly("dex.unsorted_strings", "string_ids are not in the sorted order the format requires");
  }
  return index;
}

// Every type_id names a string. Returns whether they are sorted by string index.
Result<bool> CheckTypeIds(const Validator& validator, TableSpec types, TableSpec strings) {
  const uint8_t* base = validator.base();
  bool sorted = true;
  for (uint32_t i = 0; i < types.count; ++i) {
    uint32_t descriptor = U32At(base, size_t{types.offset} + size_t{i} * kTypeIdSize);
    if (descriptor >= strings.count) {
      return validator.IndexError("type_ids", i, "descriptor_idx", descriptor, "string_ids", strings.count);
    }
    if (i > 0 && descriptor <= U32At(base, size_t{types.offset} + size_t{i - 1} * kTypeIdSize)) sorted = false;
  }
  return sorted;
}

Status CheckProtoIds(const Validator& validator, TableSpec protos, TableSpec types, TableSpec strings) {
  const uint8_t* base = validator.base();
  for (uint32_t i = 0; i < protos.count; ++i) {
    size_t item = size_t{protos.offset} + size_t{i} * kProtoIdSize;
    uint32_t shorty = U32At(base, item), return_type = U32At(base, item + 4), parameters = U32At(base, item + 8);
    if (shorty >= strings.count)
      return validator.IndexError("proto_ids", i, "shorty_idx", shorty, "string_ids", strings.count);
    if (return_type >= types.count) {
      return validator.IndexError("proto_ids", i, "return_type_idx", return_type, "type_ids", types.count);
    }
    if (parameters != 0) {
      APPBAN_RETURN_IF_ERROR(validator.CheckTypeList(parameters, types.count, "proto_ids[" + std::to_string(i) + "]"));
    }
  }
  return Status::Ok();
}

Status CheckFieldIds(const Validator& validator, TableSpec fields, TableSpec types, TableSpec strings) {
  const uint8_t* base = validator.base();
  for (uint32_t i = 0; i < fields.count; ++i) {
    size_t item = size_t{fields.offset} + size_t{i} * kFieldIdSize;
    uint16_t owner = U16At(base, item), type = U16At(base, item + 2);
    uint32_t field_name = U32At(base, item + 4);
    if (owner >= types.count) return validator.IndexError("field_ids", i, "class_idx", owner, "type_ids", types.count);
    if (type >= types.count) return validator.IndexError("field_ids", i, "type_idx", type, "type_ids", types.count);
    if (field_name >= strings.count) {
      return validator.IndexError("field_ids", i, "name_idx", field_name, "string_ids", strings.count);
    }
  }
  return Status::Ok();
}

// Every method_id names a type, a prototype and a string. Returns whether they are sorted by
// defining class.
Result<bool> CheckMethodIds(const Validator& validator, TableSpec methods, TableSpec protos, TableSpec types,
                            TableSpec strings) {
  const uint8_t* base = validator.base();
  bool sorted_by_class = true;
  for (uint32_t i = 0; i < methods.count; ++i) {
    size_t item = size_t{methods.offset} + size_t{i} * kMethodIdSize;
    uint16_t owner = U16At(base, item), proto = U16At(base, item + 2);
    uint32_t method_name = U32At(base, item + 4);
    if (owner >= types.count) return validator.IndexError("method_ids", i, "class_idx", owner, "type_ids", types.count);
    if (proto >= protos.count)
      return validator.IndexError("method_ids", i, "proto_idx", proto, "proto_ids", protos.count);
    if (method_name >= strings.count) {
      return validator.IndexError("method_ids", i, "name_idx", method_name, "string_ids", strings.count);
    }
    if (i > 0 && owner < U16At(base, item - kMethodIdSize)) sorted_by_class = false;
  }
  return sorted_by_class;
}

Status CheckClassDefs(const Validator& validator, TableSpec class_defs, TableSpec types, TableSpec strings) {
  const uint8_t* base = validator.base();
  const size_t size = validator.bytes().size();
  uint32_t dangling_class_data = 0;
  for (uint32_t i = 0; i < class_defs.count; ++i) {
    size_t item = size_t{class_defs.offset} + size_t{i} * kClassDefSize;
    uint32_t owner = U32At(base, item), superclass = U32At(base, item + 8), interfaces = U32At(base, item + 12);
    uint32_t source_file = U32At(base, item + 16);
    if (owner >= types.count) return validator.IndexError("class_defs", i, "class_idx", owner, "type_ids", types.count);
    if (superclass != kNoIndex && superclass >= types.count) {
      return validator.IndexError("class_defs", i, "superclass_idx", superclass, "type_ids", types.count);
    }
    if (interfaces != 0) {
      APPBAN_RETURN_IF_ERROR(validator.CheckTypeList(interfaces, types.count, "class_defs[" + std::to_string(i) + "]"));
    }
    if (source_file != kNoIndex && source_file >= strings.count) {
      return validator.IndexError("class_defs", i, "source_file_idx", source_file, "string_ids", strings.count);
    }
    // annotations_off, class_data_off, static_values_off: not read here, only sanity-checked.
    for (size_t field = 20; field < kClassDefSize; field += 4) {
      if (U32At(base, item + field) >= size) ++dangling_class_data;
    }
  }
  if (dangling_class_data > 0) {
    validator.Anomaly("dex.class_data_out_of_range",
                      std::to_string(dangling_class_data) + " class_def data offsets point past the end of the file");
  }
  return Status::Ok();
}

}  // namespace

Result<DexFile> DexFile::Parse(std::string name, Buffer data, const Limits& limits, Anomalies* anomalies) {
  Bytes bytes = data.bytes();
  APPBAN_RETURN_IF_ERROR(CheckEnvelope(name, bytes, limits));
  Validator validator(name, bytes, anomalies);
  APPBAN_ASSIGN_OR_RETURN(HeaderFacts header, ReadHeader(validator));
  const auto& [strings, types, protos, fields, methods, class_defs] = header.tables;
  APPBAN_ASSIGN_OR_RETURN(StringIndex string_index, IndexStrings(validator, strings));
  APPBAN_ASSIGN_OR_RETURN(bool types_sorted, CheckTypeIds(validator, types, strings));
  APPBAN_RETURN_IF_ERROR(CheckProtoIds(validator, protos, types, strings));
  APPBAN_RETURN_IF_ERROR(CheckFieldIds(validator, fields, types, strings));
  APPBAN_ASSIGN_OR_RETURN(bool methods_sorted_by_class, CheckMethodIds(validator, methods, protos, types, strings));
  APPBAN_RETURN_IF_ERROR(CheckClassDefs(validator, class_defs, types, strings));

  DexFile dex;
  dex.version_ = header.version;
  dex.string_count_ = strings.count, dex.string_ids_offset_ = strings.offset;
  dex.type_count_ = types.count, dex.type_ids_offset_ = types.offset;
  dex.proto_count_ = protos.count, dex.proto_ids_offset_ = protos.offset;
  dex.field_count_ = fields.count, dex.field_ids_offset_ = fields.offset;
  dex.method_count_ = methods.count, dex.method_ids_offset_ = methods.offset;
  dex.class_def_count_ = class_defs.count, dex.class_defs_offset_ = class_defs.offset;
  dex.string_offsets_ = std::move(string_index.offsets);
  dex.string_lengths_ = std::move(string_index.lengths);
  dex.strings_sorted_ = string_index.sorted;
  dex.types_sorted_ = types_sorted;
  dex.methods_sorted_by_class_ = methods_sorted_by_class;
  dex.name_ = std::move(name);
  dex.data_ = std::move(data);
  return dex;
}

std::string_view DexFile::String(uint32_t index) const {
  return {reinterpret_cast<const char*>(data_.data()) + string_offsets_[index], string_lengths_[index]};
}

std::string_view DexFile::TypeDescriptor(uint32_t index) const {
  return String(U32At(data_.data(), size_t{type_ids_offset_} + size_t{index} * kTypeIdSize));
}

MethodRef DexFile::Method(uint32_t index) const {
  size_t item = size_t{method_ids_offset_} + size_t{index} * kMethodIdSize;
  const uint8_t* base = data_.data();
  uint16_t proto = U16At(base, item + 2);
  return {TypeDescriptor(U16At(base, item)), String(U32At(base, item + 4)),
          String(U32At(base, size_t{proto_ids_offset_} + size_t{proto} * kProtoIdSize))};
}

FieldRef DexFile::Field(uint32_t index) const {
  size_t item = size_t{field_ids_offset_} + size_t{index} * kFieldIdSize;
  const uint8_t* base = data_.data();
  return {TypeDescriptor(U16At(base, item)), String(U32At(base, item + 4)), TypeDescriptor(U16At(base, item + 2))};
}

std::string_view DexFile::ClassDescriptor(uint32_t index) const {
  return TypeDescriptor(U32At(data_.data(), size_t{class_defs_offset_} + size_t{index} * kClassDefSize));
}

std::string_view DexFile::SuperclassDescriptor(uint32_t index) const {
  uint32_t superclass = U32At(data_.data(), size_t{class_defs_offset_} + size_t{index} * kClassDefSize + 8);
  return superclass == kNoIndex ? std::string_view() : TypeDescriptor(superclass);
}

std::optional<uint32_t> DexFile::FindString(std::string_view mutf8) const {
  if (strings_sorted_) {
    uint32_t low = 0, high = string_count_;
    while (low < high) {
      uint32_t middle = low + (high - low) / 2;
      if (CompareMutf8(String(middle), mutf8) < 0) {
        low = middle + 1;
      } else {
        high = middle;
      }
    }
    if (low < string_count_ && String(low) == mutf8) return low;
    return std::nullopt;
  }
  for (uint32_t i = 0; i < string_count_; ++i) {
    if (String(i) == mutf8) return i;
  }
  return std::nullopt;
}

std::optional<uint32_t> DexFile::FindType(std::string_view descriptor) const {
  const uint8_t* base = data_.data();
  auto descriptor_index = [&](uint32_t type) {
    return U32At(base, size_t{type_ids_offset_} + size_t{type} * kTypeIdSize);
  };
  if (strings_sorted_ && types_sorted_) {
    // Sorted strings are unique, so the type (if any) is the one naming that exact string.
    auto string_index = FindString(descriptor);
    if (!string_index) return std::nullopt;
    uint32_t low = 0, high = type_count_;
    while (low < high) {
      uint32_t middle = low + (high - low) / 2;
      if (descriptor_index(middle) < *string_index) {
        low = middle + 1;
      } else {
        high = middle;
      }
    }
    if (low < type_count_ && descriptor_index(low) == *string_index) return low;
    return std::nullopt;
  }
  for (uint32_t i = 0; i < type_count_; ++i) {
    if (TypeDescriptor(i) == descriptor) return i;
  }
  return std::nullopt;
}

uint32_t DexFile::MethodClassType(uint32_t index) const {
  return U16At(data_.data(), size_t{method_ids_offset_} + size_t{index} * kMethodIdSize);
}

std::vector<uint32_t> DexFile::MethodsOfType(uint32_t type_index) const {
  std::vector<uint32_t> out;
  uint32_t first = 0, last = method_count_;
  if (methods_sorted_by_class_) {
    uint32_t low = 0, high = method_count_;
    while (low < high) {
      uint32_t middle = low + (high - low) / 2;
      if (MethodClassType(middle) < type_index) {
        low = middle + 1;
      } else {
        high = middle;
      }
    }
    first = low;
  }
  for (uint32_t i = first; i < last; ++i) {
    uint32_t owner = MethodClassType(i);
    if (owner == type_index) {
      out.push_back(i);
    } else if (methods_sorted_by_class_ && owner > type_index) {
      break;
    }
  }
  return out;
}

bool DexFile::ReferencesMethod(std::string_view class_descriptor, std::string_view name) const {
  // A descriptor may name several types in a hostile file with duplicate type_ids, so when the
  // tables are unsorted every matching method is checked by text.
  if (!(strings_sorted_ && types_sorted_ && methods_sorted_by_class_)) {
    for (uint32_t i = 0; i < method_count_; ++i) {
      MethodRef method = Method(i);
      if (method.class_descriptor == class_descriptor && method.name == name) return true;
    }
    return false;
  }
  auto type = FindType(class_descriptor);
  if (!type) return false;
  for (uint32_t method : MethodsOfType(*type)) {
    if (Method(method).name == name) return true;
  }
  return false;
}

std::string DexFile::MethodPrototype(uint32_t index) const {
  const uint8_t* base = data_.data();
  uint16_t proto = U16At(base, size_t{method_ids_offset_} + size_t{index} * kMethodIdSize + 2);
  size_t proto_item = size_t{proto_ids_offset_} + size_t{proto} * kProtoIdSize;
  std::string out = "(";
  uint32_t parameters = U32At(base, proto_item + 8);
  if (parameters != 0) {
    uint32_t count = U32At(base, parameters);
    for (uint32_t i = 0; i < count; ++i) out += TypeDescriptor(U16At(base, size_t{parameters} + 4 + size_t{i} * 2));
  }
  out += ')';
  out += TypeDescriptor(U32At(base, proto_item + 4));
  return out;
}

std::vector<uint32_t> DexFile::ClassesWithPrefix(std::string_view prefix) const {
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < class_def_count_; ++i) {
    if (ClassDescriptor(i).starts_with(prefix)) out.push_back(i);
  }
  return out;
}

std::vector<uint32_t> DexFile::StringsContaining(std::string_view needle, size_t max_results) const {
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < string_count_ && out.size() < max_results; ++i) {
    if (String(i).find(needle) != std::string_view::npos) out.push_back(i);
  }
  return out;
}

}  // namespace appban::apk
