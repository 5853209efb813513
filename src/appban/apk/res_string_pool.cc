// ResStringPool reading. What Android's ResStringPool::setTo() rejects (a string count whose
// offset array overruns the chunk, stringsStart at/after the chunk end, styles that start before
// the strings) makes the whole document unreadable on a device, so an app cannot ship such a pool
// and still install; analysers that are stricter or looser than Android on the *accepted* cases are
// what malware exploits. We accept everything Android accepts, and for the rest we repair the
// header the way that keeps the most strings readable and say so in an anomaly.
#include "appban/apk/res_string_pool.h"
#include "appban/common/text.h"
#include "appban/common/utf16.h"

#include <algorithm>
#include <cstdio>

namespace appban::apk {
namespace {

constexpr size_t kStringPoolHeaderBytes = 28;
constexpr uint32_t kSortedFlag = 0x1;
constexpr uint32_t kUtf8Flag = 0x100;

}  // namespace

std::optional<ChunkHeader> ReadChunkHeader(Bytes data, size_t offset) {
  auto type = LoadLE<uint16_t>(data, offset);
  auto header_size = LoadLE<uint16_t>(data, offset + 2);
  auto size = LoadLE<uint32_t>(data, offset + 4);
  if (!type || !header_size || !size) return std::nullopt;
  return ChunkHeader{*type, *header_size, *size};
}

std::string ValidateChunk(const ChunkHeader& header, size_t min_header_size, size_t bytes_available) {
  if (header.header_size < min_header_size) {
    return "header size " + std::to_string(header.header_size) + " is below the minimum " +
           std::to_string(min_header_size);
  }
  if (header.header_size > header.size) {
    return "chunk size " + std::to_string(header.size) + " is smaller than its header size " +
           std::to_string(header.header_size);
  }
  if (((header.header_size | header.size) & 0x3) != 0) {
    return "chunk size " + std::to_string(header.size) + " or header size " + std::to_string(header.header_size) +
           " is not a multiple of 4";
  }
  if (header.size > bytes_available) {
    return "chunk size " + std::to_string(header.size) + " overruns the " + std::to_string(bytes_available) +
           " bytes left";
  }
  return "";
}

Result<StringPool> StringPool::Parse(Bytes chunk, size_t chunk_offset, std::string_view part, const Limits& limits,
                                     Anomalies* anomalies) {
  const std::string where = std::string(part) + " string pool at " + HexNumber(chunk_offset);
  const std::string prefix = std::string(part) + ".";
  StringPool pool;
  pool.chunk_ = chunk;
  if (chunk.size() < kStringPoolHeaderBytes) {
    AddAnomaly(anomalies, prefix + "string_pool_truncated", where,
               "string pool chunk of " + std::to_string(chunk.size()) +
                   " bytes cannot hold its 28-byte header; "
                   "read as empty (Android rejects it)");
    return pool;
  }
  const uint16_t header_size = *LoadLE<uint16_t>(chunk, 2);
  uint32_t string_count = *LoadLE<uint32_t>(chunk, 8);
  const uint32_t style_count = *LoadLE<uint32_t>(chunk, 12);
  const uint32_t flags = *LoadLE<uint32_t>(chunk, 16);
  uint32_t strings_start = *LoadLE<uint32_t>(chunk, 20);
  const uint32_t styles_start = *LoadLE<uint32_t>(chunk, 24);
  const size_t size = chunk.size();

  // Android puts the offset array right after headerSize, whatever that says.
  size_t entries_offset = header_size;
  if (header_size != kStringPoolHeaderBytes) {
    if (header_size < kChunkHeaderBytes || header_size > size) {
      entries_offset = kStringPoolHeaderBytes;
      AddAnomaly(anomalies, prefix + "string_pool_header_size", where,
                 "string pool header size " + std::to_string(header_size) +
                     " is impossible; offsets read after the standard 28-byte header");
    } else {
      AddAnomaly(anomalies, prefix + "string_pool_header_size", where,
                 "string pool header size is " + std::to_string(header_size) +
                     " instead of 28; offsets read after it, as Android does");
    }
  }
  pool.utf8_ = (flags & kUtf8Flag) != 0;
  if ((flags & ~(kUtf8Flag | kSortedFlag)) != 0) {
    AddAnomaly(anomalies, prefix + "string_pool_flags", where,
               "string pool flags " + HexNumber(flags) + " carry unknown bits; read as " +
                   (pool.utf8_ ? "UTF-8" : "UTF-16") + " from the UTF-8 bit alone, as Android does");
  }

  const uint64_t entries_room = (size - entries_offset) / 4;
  if (string_count > entries_room) {
    uint64_t repaired = entries_room;
    if (strings_start > entries_offset && strings_start < size) {
      repaired = std::min<uint64_t>(repaired, (strings_start - entries_offset) / 4);
    }
    AddAnomaly(anomalies, prefix + "string_count", where,
               "declared string count " + std::to_string(string_count) + " needs more offset bytes than the " +
                   std::to_string(size) + "-byte chunk holds; read as " + std::to_string(repaired) +
                   " (Android rejects the pool)");
    string_count = static_cast<uint32_t>(repaired);
  }
  if (string_count > limits.max_string_pool_strings) {
    return Status::LimitExceeded(where + ": " + std::to_string(string_count) + " strings exceed the limit of " +
                                 std::to_string(limits.max_string_pool_strings));
  }
  if (style_count > (size - entries_offset) / 4 - string_count) {
    AddAnomaly(anomalies, prefix + "style_count", where,
               "declared style count " + std::to_string(style_count) + " overruns the chunk; styles ignored");
  }

  const uint64_t computed_strings_start =
      entries_offset + 4ull * string_count + 4ull * std::min<uint64_t>(style_count, (size - entries_offset) / 4);
  if (string_count > 0 && (size < 2 || strings_start >= size - 2)) {
    uint64_t repaired = std::min<uint64_t>(computed_strings_start, size);
    AddAnomaly(anomalies, prefix + "strings_start", where,
               "stringsStart " + HexNumber(strings_start) + " lies at or past the end of the " + std::to_string(size) +
                   "-byte pool; read from " + HexNumber(repaired) +
                   " after the offset arrays (Android rejects the pool)");
    strings_start = static_cast<uint32_t>(repaired);
  } else if (string_count > 0 && strings_start < entries_offset + 4ull * string_count) {
    AddAnomaly(anomalies, prefix + "strings_start", where,
               "stringsStart " + HexNumber(strings_start) +
                   " overlaps the string offset array; used as is, as "
                   "Android does");
  }

  size_t strings_end = size;
  if (style_count > 0) {
    if (styles_start <= strings_start || size < 2 || styles_start >= size - 2) {
      AddAnomaly(anomalies, prefix + "styles_start", where,
                 "stylesStart " + HexNumber(styles_start) + " does not lie between the strings (" +
                     HexNumber(strings_start) +
                     ") and the chunk end; strings read to the chunk end (Android "
                     "rejects the pool)");
    } else {
      strings_end = styles_start;
    }
  } else if (styles_start != 0) {
    AddAnomaly(anomalies, prefix + "styles_start_without_styles", where,
               "stylesStart is " + HexNumber(styles_start) + " but the style count is 0; ignored, as Android does");
  }
  pool.string_count_ = string_count;
  pool.entries_offset_ = entries_offset;
  pool.strings_start_ = std::min<size_t>(strings_start, size);
  pool.strings_end_ = strings_end;
  return pool;
}

StringPool::Lookup StringPool::Get(uint32_t index, std::string* out) const {
  out->clear();
  if (index >= string_count_) return Lookup::kOutOfRange;
  auto offset = LoadLE<uint32_t>(chunk_, entries_offset_ + 4ull * index);
  if (!offset || *offset >= strings_end_ - strings_start_) return Lookup::kBadOffset;
  Bytes strings = chunk_.subspan(strings_start_, strings_end_ - strings_start_);
  size_t position = *offset;
  if (utf8_) {
    // Two lengths, each 1 or 2 bytes: UTF-16 units (unused here), then UTF-8 bytes.
    auto read_length = [&](size_t* length) {
      auto first = LoadLE<uint8_t>(strings, position);
      if (!first) return false;
      ++position;
      if (*first & 0x80) {
        auto second = LoadLE<uint8_t>(strings, position);
        if (!second) return false;
        ++position;
        *length = (static_cast<size_t>(*first & 0x7f) << 8) | *second;
      } else {
        *length = *first;
      }
      return true;
    };
    size_t utf16_length = 0;
    size_t byte_length = 0;
    if (!read_length(&utf16_length) || !read_length(&byte_length)) return Lookup::kBadOffset;
    auto text = SubSpan(strings, position, byte_length);
    if (!text) return Lookup::kBadOffset;
    *out = SanitizeUtf8(std::string_view(reinterpret_cast<const char*>(text->data()), text->size()));
    auto terminator = LoadLE<uint8_t>(strings, position + byte_length);
    return terminator && *terminator == 0 ? Lookup::kOk : Lookup::kUnterminated;
  }
  auto first = LoadLE<uint16_t>(strings, position);
  if (!first) return Lookup::kBadOffset;
  position += 2;
  size_t unit_count = *first;
  if (*first & 0x8000) {
    auto second = LoadLE<uint16_t>(strings, position);
    if (!second) return Lookup::kBadOffset;
    position += 2;
    unit_count = (static_cast<size_t>(*first & 0x7fff) << 16) | *second;
  }
  auto text = SubSpan(strings, position, 2ull * unit_count);
  if (!text) return Lookup::kBadOffset;
  *out = Utf16ToUtf8(*text, Utf16Order::kLittleEndian);
  auto terminator = LoadLE<uint16_t>(strings, position + 2 * unit_count);
  return terminator && *terminator == 0 ? Lookup::kOk : Lookup::kUnterminated;
}

std::string StringPool::GetOrEmpty(uint32_t index) const {
  std::string out;
  Lookup lookup = Get(index, &out);
  if (lookup != Lookup::kOk && lookup != Lookup::kUnterminated) out.clear();
  return out;
}

}  // namespace appban::apk
