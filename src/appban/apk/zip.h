// ZIP container reader for APKs, reading entries the way Android's package installer
// (libziparchive) does rather than the way desktop unzip tools do. Works over a span of the
// whole file (usually a MappedFile); never copies the archive. A ZipArchive is immutable after
// Open and safe to Read() from several threads at once.
//
// Android-compatible leniencies, each reported as an Anomaly:
//  - the "encrypted" general-purpose flag on an entry that is not actually encrypted is ignored;
//  - an unknown compression method is read as STORED;
//  - local header sizes that disagree with the central directory: the central directory wins;
//  - duplicate entry names: the first entry in the central directory is the one used;
//  - other structural oddities (extra data before the archive, comment tricks, data descriptors).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "appban/apk/anomaly.h"
#include "appban/apk/limits.h"
#include "appban/common/bytes.h"
#include "appban/common/status.h"

namespace appban::apk {

inline constexpr uint16_t kZipMethodStored = 0;
inline constexpr uint16_t kZipMethodDeflate = 8;

struct ZipEntry {
  std::string name;
  uint16_t declared_method = 0;  // as written in the central directory
  bool read_as_stored = false;   // the declared method is unknown; data is taken as stored
  uint16_t flags = 0;            // general-purpose bit flags from the central directory
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;    // from the central directory (what Android uses)
  uint64_t uncompressed_size = 0;  // from the central directory
  uint64_t local_header_offset = 0;
  uint64_t data_offset = 0;    // start of the entry's data, after the local header
  uint32_t central_index = 0;  // position in the central directory

  bool is_deflated() const { return declared_method == kZipMethodDeflate && !read_as_stored; }
};

class ZipArchive {
 public:
  // Parses the end record and central directory and cross-checks every local header.
  // Errors: NotRecognized ("no central directory") when there is no end record at all;
  // Truncated / Corruption when structures run past the file or contradict themselves beyond
  // what Android would accept; LimitExceeded for too many entries or names too long.
  static Result<ZipArchive> Open(Bytes file, const Limits& limits);

  // Movable, not copyable: the name index holds views into entries_, which a move keeps valid
  // (the vector's elements stay where they are) and a copy would not.
  ZipArchive(ZipArchive&&) noexcept = default;
  ZipArchive& operator=(ZipArchive&&) noexcept = default;
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  // Every entry in central-directory order, duplicates included.
  const std::vector<ZipEntry>& entries() const { return entries_; }
  // The entry Android would use for `name` (the first of duplicates), or nullptr.
  const ZipEntry* Find(std::string_view name) const;

  // Inflates (or copies) one entry. Verifies the CRC-32 and the declared size. Enforces the
  // per-entry inflated size and compression-ratio limits; `total_budget`, when given, is the
  // remaining inflated-byte allowance across entries and is decremented.
  // Thread-safe. Anomalies found while reading (none expected for a healthy file) go to `anomalies`.
  Result<Buffer> Read(const ZipEntry& entry, uint64_t* total_budget = nullptr, Anomalies* anomalies = nullptr) const;
  // The number of bytes Read(entry) produces and takes from the budget: the declared inflated
  // size, or for an entry read as stored, its stored length. Lets callers that read entries in
  // parallel split the budget before inflating anything.
  static uint64_t DeclaredSize(const ZipEntry& entry);

  // Structure offsets, needed by the APK Signing Block reader.
  uint64_t central_directory_offset() const { return central_directory_offset_; }
  uint64_t central_directory_size() const { return central_directory_size_; }
  uint64_t end_of_central_directory_offset() const { return eocd_offset_; }

  // Anomalies found by Open.
  const Anomalies& anomalies() const { return anomalies_; }
  // Empty when Android's libziparchive would open this archive; otherwise why it would not
  // (duplicate names, local headers contradicting the central directory, bytes before the first
  // local header, ...). We still read such archives, so an analyst can see what is in them.
  std::string_view android_rejection() const { return android_rejection_; }
  Bytes file() const { return file_; }

 private:
  ZipArchive() = default;

  Bytes file_;
  Limits limits_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string_view, uint32_t> first_by_name_;  // views into entries_[i].name
  uint64_t central_directory_offset_ = 0;
  uint64_t central_directory_size_ = 0;
  uint64_t eocd_offset_ = 0;
  Anomalies anomalies_;
  std::string android_rejection_;
};

}  // namespace appban::apk
