// ResStringPool (RES_STRING_POOL_TYPE chunk) reader shared by the AXML and resources.arsc parsers.
// Parsing only validates the header and remembers where the offset array and the character data
// are; a string is decoded (UTF-16 → UTF-8, or UTF-8 validated) only when asked for, so a pool of a
// million strings costs nothing until one is used. A view: the bytes must outlive it. Thread-safe
// for concurrent reads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "appban/apk/anomaly.h"
#include "appban/apk/limits.h"
#include "appban/common/bytes.h"
#include "appban/common/status.h"

namespace appban::apk {

// Chunk types shared by AXML and ARSC (frameworks/base/libs/androidfw/include/androidfw/ResourceTypes.h).
inline constexpr uint16_t kResNullType = 0x0000;
inline constexpr uint16_t kResStringPoolType = 0x0001;
inline constexpr uint16_t kResTableType = 0x0002;
inline constexpr uint16_t kResXmlType = 0x0003;
inline constexpr uint16_t kResXmlFirstChunkType = 0x0100;
inline constexpr uint16_t kResXmlStartNamespaceType = 0x0100;
inline constexpr uint16_t kResXmlEndNamespaceType = 0x0101;
inline constexpr uint16_t kResXmlStartElementType = 0x0102;
inline constexpr uint16_t kResXmlEndElementType = 0x0103;
inline constexpr uint16_t kResXmlCdataType = 0x0104;
inline constexpr uint16_t kResXmlLastChunkType = 0x017f;
inline constexpr uint16_t kResXmlResourceMapType = 0x0180;
inline constexpr uint16_t kResTablePackageType = 0x0200;
inline constexpr uint16_t kResTableTypeType = 0x0201;
inline constexpr uint16_t kResTableTypeSpecType = 0x0202;
inline constexpr uint16_t kResTableLibraryType = 0x0203;

inline constexpr uint32_t kNoStringIndex = 0xffffffff;

// A chunk header (ResChunk_header) read at some offset of a larger buffer.
struct ChunkHeader {
  uint16_t type = 0;
  uint16_t header_size = 0;
  uint32_t size = 0;
};
inline constexpr size_t kChunkHeaderBytes = 8;

// Reads a chunk header at `offset`, nullopt when fewer than 8 bytes remain.
std::optional<ChunkHeader> ReadChunkHeader(Bytes data, size_t offset);

// Android's validate_chunk(): header at least `min_header_size`, header within size, both 4-byte
// aligned, size within the data. Returns "" when valid, else what is wrong.
std::string ValidateChunk(const ChunkHeader& header, size_t min_header_size, size_t bytes_available);

class StringPool {
 public:
  enum class Lookup { kOk, kOutOfRange, kBadOffset, kUnterminated };

  StringPool() = default;

  // `chunk` is the whole string-pool chunk (header included), already bounded by the caller;
  // `chunk_offset` is where it sits in the file (for anomaly locations); `part` is the anomaly
  // code prefix ("axml", "arsc"). Bogus counts/offsets/flags are repaired the way that keeps the
  // most strings readable and reported as anomalies; only a hit limit is an error.
  static Result<StringPool> Parse(Bytes chunk, size_t chunk_offset, std::string_view part, const Limits& limits,
                                  Anomalies* anomalies);

  uint32_t size() const { return string_count_; }
  bool utf8() const { return utf8_; }

  // Decodes string `index` into `out` (UTF-8; invalid sequences become U+FFFD). On kUnterminated
  // `out` still holds the length-prefixed text; on the other errors it is cleared.
  Lookup Get(uint32_t index, std::string* out) const;
  // Convenience: the string, or "" for anything but kOk/kUnterminated.
  std::string GetOrEmpty(uint32_t index) const;

 private:
  Bytes chunk_;
  uint32_t string_count_ = 0;
  size_t entries_offset_ = 0;  // of the uint32 offset array, within chunk_
  size_t strings_start_ = 0;   // of the character data, within chunk_
  size_t strings_end_ = 0;     // one past the character data, within chunk_
  bool utf8_ = false;
};

}  // namespace appban::apk
