// ZIP reading for APKs, modelled on what Android's installer does rather than on desktop unzip.
//
// What Android does (AOSP system/libziparchive zip_archive.cc, read for this file) and what we do:
//
//  End record (EOCD). Android scans backwards over the last 64 KiB + 22 bytes (the largest
//    possible comment plus the record) and takes the LAST "PK\5\6" it finds. It then requires the
//    record's comment to end exactly at the end of the file ("extraneous bytes" otherwise) and
//    rejects the file. We take the same record; a comment that stops short of the end of the file
//    or runs past it is an anomaly (zip.comment_length_mismatch / zip.comment_truncated) and an
//    Android rejection, and we read on. An earlier end record whose comment also reaches the end
//    of the file (a decoy hidden in a comment) is zip.multiple_end_records. No record in the
//    window: NotRecognized("no central directory").
//  ZIP64. Android looks for the ZIP64 end record only when an EOCD field is saturated (0xFFFF /
//    0xFFFFFFFF, comment length included) and then requires the locator immediately before the
//    EOCD. We do the same; a saturated field without a locator is zip.zip64_locator_missing (an
//    Android rejection) and the 32-bit values are used. Per-entry sizes and offsets saturated to
//    0xFFFFFFFF are taken from the 0x0001 extra field with Android's rules (a field is present
//    when its 32-bit value is saturated, or all three when the field is 24 or 28 bytes long).
//  Central directory. Android requires cd_offset + cd_size <= eocd offset, walks exactly the
//    declared number of records inside cd_size, and rejects records that run past it, a missing
//    record signature, a local header offset at or past the central directory, names that are
//    not UTF-8 or contain NUL, and (since the 2013 "master key" fix) duplicate names. We fail
//    with Truncated / Corruption for the structural cases; a bad name is
//    zip.invalid_entry_name and a duplicate is zip.duplicate_entry (Find() returns the first,
//    as the pre-2013 native reader did), both Android rejections.
//  First bytes. Android rejects an archive whose first four bytes are not a local header
//    signature (bug 64211847). Any bytes before the first local header are
//    zip.data_before_archive; an Android rejection when the file does not start with "PK\3\4".
//  Local headers. Android checks the signature, that the local name length and bytes equal the
//    central ones, and, when the local header has no data-descriptor bit (bit 3), that CRC and
//    both sizes equal the central ones (kInconsistentInformation otherwise). With bit 3 set the
//    local sizes are ignored and the data descriptor after the data must match the central
//    directory. A bit-3 disagreement between local and central flags is only logged. It ignores
//    the local compression method. We check the signature and bounds (Corruption); name, size
//    and CRC disagreements are zip.local_name_mismatch / zip.local_header_mismatch /
//    zip.data_descriptor_mismatch (Android rejections) and the central directory wins (data
//    starts after the local name and extra field as written, as in Android);
//    zip.data_descriptor_flag_mismatch and zip.local_method_mismatch are reported only.
//  Encryption. libziparchive never looks at the encryption bits, so an entry flagged encrypted
//    is read as plain data: zip.encryption_flag_ignored.
//  Methods. libziparchive extracts only STORED and DEFLATE, but the resource loader (androidfw)
//    treats every entry that is not DEFLATE as STORED, and Android 9+ installs packages whose
//    manifest uses an unknown method. We read an unknown method as STORED:
//    zip.unknown_method_read_as_stored.
//  Stored sizes. For STORED data Android copies uncompressed_size bytes and checks that they fit
//    before the central directory. So do we; compressed != uncompressed is zip.stored_size_mismatch.
//  Inflation. Android inflates into a buffer of the declared size and fails when the output is
//    larger or smaller than declared (kInconsistentInformation). So do we (Corruption naming the
//    entry). Android does not verify CRC-32 (kCrcChecksEnabled is false); we verify it and report
//    zip.crc_mismatch without failing. Bytes left over after the DEFLATE stream are ignored by
//    Android when the file is mapped: zip.trailing_compressed_bytes.
//
// Zip bombs, which Android has no defence against beyond the device running out of space, are
// caught before any allocation: entries whose local header + data overlap (quoted-overlap bombs)
// make Open fail; Read refuses entries whose declared size exceeds max_entry_inflated_bytes or the
// caller's remaining total budget, or whose declared ratio exceeds max_compression_ratio; and the
// output buffer is exactly the declared size, so a size lie stops inflation at that size.
#include "appban/apk/zip.h"
#include "appban/common/text.h"

#include <libdeflate.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <utility>

namespace appban::apk {
namespace {

constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr uint32_t kEndRecordSignature = 0x06054b50;
constexpr uint32_t kZip64EndRecordSignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint32_t kDataDescriptorSignature = 0x08074b50;

constexpr size_t kLocalHeaderSize = 30;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kEndRecordSize = 22;
constexpr size_t kZip64LocatorSize = 20;
constexpr size_t kZip64EndRecordSize = 56;
constexpr size_t kMaxCommentBytes = 0xffff;
constexpr uint16_t kZip64ExtraId = 0x0001;

constexpr uint16_t kFlagEncrypted = 1u << 0;
constexpr uint16_t kFlagDataDescriptor = 1u << 3;
constexpr uint16_t kFlagStrongEncryption = 1u << 6;

// The compression-ratio limit applies only to outputs above this size: tiny, highly repetitive
// files (empty layouts, padding) legitimately compress far better than 1000:1.
constexpr uint64_t kRatioCheckMinimumOutput = 1ull << 20;

// Entry names come from the file; keep them printable and short in messages.
std::string Printable(std::string_view name) {
  constexpr size_t kMaxShown = 200;
  std::string out;
  out.reserve(std::min(name.size(), kMaxShown) + 2);
  for (size_t i = 0; i < name.size() && i < kMaxShown; ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f) {
      char escaped[5];
      std::snprintf(escaped, sizeof(escaped), "\\x%02x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (name.size() > kMaxShown) out += "...";
  return out;
}

// Android's rule for entry names: valid UTF-8 (no overlong forms, no surrogates) and no NUL.
bool IsValidEntryName(std::string_view name) {
  size_t i = 0;
  while (i < name.size()) {
    auto c = static_cast<unsigned char>(name[i]);
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t length;
    uint32_t code_point;
    if ((c & 0xe0) == 0xc0) {
      length = 2;
      code_point = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      length = 3;
      code_point = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      length = 4;
      code_point = c & 0x07;
    } else {
      return false;
    }
    if (name.size() - i < length) return false;
    for (size_t k = 1; k < length; ++k) {
      auto continuation = static_cast<unsigned char>(name[i + k]);
      if ((continuation & 0xc0) != 0x80) return false;
      code_point = (code_point << 6) | (continuation & 0x3f);
    }
    static constexpr uint32_t kMinimumForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code_point < kMinimumForLength[length] || code_point > 0x10ffff ||
        (code_point >= 0xd800 && code_point <= 0xdfff)) {
      return false;
    }
    i += length;
  }
  return true;
}

// Bytes an entry occupies after its local header. Declared STORED entries are copied for their
// uncompressed size (as libziparchive does); an unknown method, read as stored, is taken for the
// bytes actually written, its compressed size.
uint64_t StoredLength(const ZipEntry& entry) {
  return entry.declared_method == kZipMethodStored ? entry.uncompressed_size : entry.compressed_size;
}
uint64_t DataLength(const ZipEntry& entry) { return entry.is_deflated() ? entry.compressed_size : StoredLength(entry); }

struct EndRecord {
  uint64_t offset = 0;  // of the classic EOCD
  uint64_t entry_count = 0;
  uint64_t directory_size = 0;
  uint64_t directory_offset = 0;
  uint64_t directory_limit = 0;  // the central directory must end at or before this offset
};

struct Zip64Values {
  std::optional<uint64_t> uncompressed_size;
  std::optional<uint64_t> compressed_size;
  std::optional<uint64_t> local_header_offset;
};

// Parses the ZIP64 extended-information extra field (id 0x0001) with libziparchive's rules.
// `need_offset` is false for local headers, which carry no offset.
Result<Zip64Values> ParseZip64Extra(Bytes extra, uint32_t uncompressed32, uint32_t compressed32,
                                    std::optional<uint32_t> offset32, std::string_view where) {
  size_t position = 0;
  while (extra.size() - position >= 4) {
    uint16_t id = *LoadLE<uint16_t>(extra, position);
    uint16_t size = *LoadLE<uint16_t>(extra, position + 2);
    position += 4;
    if (size > extra.size() - position) {
      return Status::Corruption(std::string(where) + ": extra field of " + std::to_string(size) +
                                " bytes runs past the end of the extra data");
    }
    if (id != kZip64ExtraId) {
      position += size;
      continue;
    }
    Bytes field = extra.subspan(position, size);
    // A trailing 4-byte disk number is ignored, as Android does.
    size_t usable = size == 28 ? 24 : size;
    bool complete = usable == 24;
    Zip64Values values;
    size_t cursor = 0;
    auto take = [&](bool wanted, std::optional<uint64_t>* out) -> bool {
      if (!wanted) return true;
      auto value = cursor + 8 <= usable ? LoadLE<uint64_t>(field, cursor) : std::nullopt;
      if (!value) return false;
      *out = *value;
      cursor += 8;
      return true;
    };
    if (!take(uncompressed32 == UINT32_MAX || complete, &values.uncompressed_size) ||
        !take(compressed32 == UINT32_MAX || complete, &values.compressed_size) ||
        !take(offset32.has_value() && (*offset32 == UINT32_MAX || complete), &values.local_header_offset)) {
      return Status::Corruption(std::string(where) + ": ZIP64 extra field of " + std::to_string(size) +
                                " bytes is too short for the sizes it must hold");
    }
    if (cursor == 0 || cursor != usable) {
      return Status::Corruption(std::string(where) + ": ZIP64 extra field has " + std::to_string(size) +
                                " bytes where " + std::to_string(cursor) + " are expected");
    }
    return values;
  }
  return Status::Corruption(std::string(where) +
                            ": sizes are saturated to 0xFFFFFFFF but there is no ZIP64 extra field");
}

class ArchiveParser {
 public:
  ArchiveParser(Bytes file, Anomalies* anomalies, std::string* android_rejection)
      : file_(file), anomalies_(anomalies), android_rejection_(android_rejection) {}

  void Note(std::string code, std::string where, std::string detail) {
    AddAnomaly(anomalies_, std::move(code), std::move(where), std::move(detail));
  }
  // An anomaly that also makes Android refuse the package.
  void NoteRejected(std::string code, std::string where, std::string detail) {
    if (android_rejection_->empty()) android_rejection_->assign(where + ": " + detail);
    Note(std::move(code), std::move(where), std::move(detail) + "; Android's installer rejects such a package");
  }

  Result<EndRecord> FindEndRecord() {
    if (file_.size() < kEndRecordSize) return Status::NotRecognized("no central directory");
    const size_t window = std::min(file_.size(), kMaxCommentBytes + kEndRecordSize);
    const size_t lowest = file_.size() - window;
    std::optional<size_t> found;
    for (size_t i = file_.size() - kEndRecordSize + 1; i-- > lowest;) {
      if (file_[i] == 0x50 && *LoadLE<uint32_t>(file_, i) == kEndRecordSignature) {
        found = i;
        break;
      }
    }
    if (!found) return Status::NotRecognized("no central directory");
    const size_t eocd = *found;

    // A second end record further back whose comment reaches the end of the file: tools that
    // search forwards or validate comment lengths would pick a different central directory.
    for (size_t i = eocd; i-- > lowest;) {
      if (file_[i] == 0x50 && *LoadLE<uint32_t>(file_, i) == kEndRecordSignature &&
          i + kEndRecordSize + *LoadLE<uint16_t>(file_, i + 20) == file_.size()) {
        Note("zip.multiple_end_records", "end of central directory",
             "another end record at offset " + std::to_string(i) + " has a comment covering the one used at " +
                 std::to_string(eocd) + "; the last one is used, as Android does");
        break;
      }
    }

    EndRecord record;
    record.offset = eocd;
    const uint16_t entries_on_disk = *LoadLE<uint16_t>(file_, eocd + 8);
    const uint16_t entries = *LoadLE<uint16_t>(file_, eocd + 10);
    const uint32_t directory_size = *LoadLE<uint32_t>(file_, eocd + 12);
    const uint32_t directory_offset = *LoadLE<uint32_t>(file_, eocd + 16);
    const uint16_t comment_length = *LoadLE<uint16_t>(file_, eocd + 20);
    const uint64_t comment_end = eocd + kEndRecordSize + comment_length;
    if (comment_end > file_.size()) {
      NoteRejected("zip.comment_truncated", "end of central directory",
                   "archive comment declares " + std::to_string(comment_length) + " bytes but the file ends after " +
                       std::to_string(file_.size() - eocd - kEndRecordSize));
    } else if (comment_end < file_.size()) {
      NoteRejected("zip.comment_length_mismatch", "end of central directory",
                   std::to_string(file_.size() - comment_end) + " bytes follow the archive comment");
    }
    record.entry_count = entries;
    record.directory_size = directory_size;
    record.directory_offset = directory_offset;
    record.directory_limit = eocd;

    if (entries_on_disk == UINT16_MAX || entries == UINT16_MAX || directory_size == UINT32_MAX ||
        directory_offset == UINT32_MAX || comment_length == UINT16_MAX) {
      APPBAN_RETURN_IF_ERROR(ReadZip64EndRecord(&record));
    }

    if (record.directory_offset > record.directory_limit) {
      return Status::Corruption("central directory offset " + std::to_string(record.directory_offset) +
                                " lies after the end record at offset " + std::to_string(record.directory_limit));
    }
    if (record.directory_size > record.directory_limit - record.directory_offset) {
      return Status::Truncated("central directory at offset " + std::to_string(record.directory_offset) + " declares " +
                               std::to_string(record.directory_size) + " bytes but only " +
                               std::to_string(record.directory_limit - record.directory_offset) +
                               " remain before the end record");
    }
    return record;
  }

  Status ReadZip64EndRecord(EndRecord* record) {
    const std::string where = "end of central directory";
    if (record->offset < kZip64LocatorSize ||
        LoadLE<uint32_t>(file_, record->offset - kZip64LocatorSize) != kZip64LocatorSignature) {
      // A 65535-byte comment alone saturates a field; older Android versions accepted that.
      NoteRejected("zip.zip64_locator_missing", where,
                   "the end record has saturated (ZIP64) fields but no ZIP64 locator precedes it; its 32-bit values "
                   "are used (current libziparchive refuses this; versions without ZIP64 support did not)");
      return Status::Ok();
    }
    const uint64_t locator = record->offset - kZip64LocatorSize;
    const uint64_t zip64_offset = *LoadLE<uint64_t>(file_, locator + 8);
    if (locator < kZip64EndRecordSize || zip64_offset > locator - kZip64EndRecordSize) {
      return Status::Corruption("ZIP64 end record offset " + std::to_string(zip64_offset) +
                                " does not leave room before its locator at " + std::to_string(locator));
    }
    if (LoadLE<uint32_t>(file_, zip64_offset) != kZip64EndRecordSignature) {
      return Status::Corruption("no ZIP64 end record signature at offset " + std::to_string(zip64_offset));
    }
    record->entry_count = *LoadLE<uint64_t>(file_, zip64_offset + 32);
    record->directory_size = *LoadLE<uint64_t>(file_, zip64_offset + 40);
    record->directory_offset = *LoadLE<uint64_t>(file_, zip64_offset + 48);
    record->directory_limit = zip64_offset;
    return Status::Ok();
  }

  // Reads central-directory record `index` at `position` (relative to `directory`) into `entry`
  // and returns the position of the next record.
  Result<size_t> ReadCentralRecord(Bytes directory, size_t position, uint64_t index, uint64_t count,
                                   const Limits& limits, ZipEntry* entry) {
    if (directory.size() - position < kCentralHeaderSize) {
      return Status::Truncated("central directory ends after " + std::to_string(index) + " of " +
                               std::to_string(count) + " entries");
    }
    if (*LoadLE<uint32_t>(directory, position) != kCentralHeaderSignature) {
      return Status::Corruption("central directory record " + std::to_string(index) + " at offset " +
                                std::to_string(directory_offset_ + position) + " has no signature");
    }
    entry->flags = *LoadLE<uint16_t>(directory, position + 8);
    entry->declared_method = *LoadLE<uint16_t>(directory, position + 10);
    entry->crc32 = *LoadLE<uint32_t>(directory, position + 16);
    const uint32_t compressed32 = *LoadLE<uint32_t>(directory, position + 20);
    const uint32_t uncompressed32 = *LoadLE<uint32_t>(directory, position + 24);
    const uint16_t name_length = *LoadLE<uint16_t>(directory, position + 28);
    const uint16_t extra_length = *LoadLE<uint16_t>(directory, position + 30);
    const uint16_t comment_length = *LoadLE<uint16_t>(directory, position + 32);
    const uint32_t offset32 = *LoadLE<uint32_t>(directory, position + 42);
    const size_t record_size = kCentralHeaderSize + name_length + extra_length + comment_length;
    if (directory.size() - position < record_size) {
      return Status::Truncated("central directory record " + std::to_string(index) + " of " +
                               std::to_string(record_size) + " bytes runs past the end of the central directory");
    }
    if (name_length > limits.max_entry_name_bytes) {
      return Status::LimitExceeded("central directory record " + std::to_string(index) + ": entry name of " +
                                   std::to_string(name_length) + " bytes exceeds the limit of " +
                                   std::to_string(limits.max_entry_name_bytes) + " (max_entry_name_bytes)");
    }
    entry->name.assign(reinterpret_cast<const char*>(directory.data() + position + kCentralHeaderSize), name_length);
    entry->compressed_size = compressed32;
    entry->uncompressed_size = uncompressed32;
    entry->local_header_offset = offset32;
    if (compressed32 == UINT32_MAX || uncompressed32 == UINT32_MAX || offset32 == UINT32_MAX) {
      Bytes extra = directory.subspan(position + kCentralHeaderSize + name_length, extra_length);
      APPBAN_ASSIGN_OR_RETURN(Zip64Values wide,
                              ParseZip64Extra(extra, uncompressed32, compressed32, offset32, Printable(entry->name)));
      entry->uncompressed_size = wide.uncompressed_size.value_or(uncompressed32);
      entry->compressed_size = wide.compressed_size.value_or(compressed32);
      entry->local_header_offset = wide.local_header_offset.value_or(offset32);
    }
    entry->central_index = static_cast<uint32_t>(index);
    entry->read_as_stored = entry->declared_method != kZipMethodStored && entry->declared_method != kZipMethodDeflate;
    return position + record_size;
  }

  // Reports central-directory-only oddities of one entry.
  void CheckCentralRecord(const ZipEntry& entry) {
    if (!IsValidEntryName(entry.name)) {
      NoteRejected("zip.invalid_entry_name", Printable(entry.name), "entry name is not valid UTF-8 or contains NUL");
    }
    if (entry.flags & (kFlagEncrypted | kFlagStrongEncryption)) {
      Note("zip.encryption_flag_ignored", Printable(entry.name),
           "entry is flagged encrypted (flags " + Hex32(entry.flags) +
               ") but Android ignores the flag and reads the data as plain; so do we");
    }
    if (entry.read_as_stored) {
      Note("zip.unknown_method_read_as_stored", Printable(entry.name),
           "compression method " + std::to_string(entry.declared_method) +
               " is neither STORED nor DEFLATE; Android reads such an entry as STORED, and so do we");
    }
  }

  // Checks the local header of `entry` against the central directory and sets data_offset.
  Status CheckLocalHeader(ZipEntry* entry, uint64_t directory_offset) {
    const std::string where = Printable(entry->name);
    const uint64_t offset = entry->local_header_offset;
    if (offset >= directory_offset || directory_offset - offset < kLocalHeaderSize) {
      return Status::Corruption(where + ": local header offset " + std::to_string(offset) +
                                " is not before the central directory at " + std::to_string(directory_offset));
    }
    if (*LoadLE<uint32_t>(file_, offset) != kLocalHeaderSignature) {
      return Status::Corruption(where + ": no local header signature at offset " + std::to_string(offset));
    }
    const uint16_t local_flags = *LoadLE<uint16_t>(file_, offset + 6);
    const uint16_t local_method = *LoadLE<uint16_t>(file_, offset + 8);
    const uint32_t local_crc = *LoadLE<uint32_t>(file_, offset + 14);
    const uint32_t local_compressed32 = *LoadLE<uint32_t>(file_, offset + 18);
    const uint32_t local_uncompressed32 = *LoadLE<uint32_t>(file_, offset + 22);
    const uint16_t name_length = *LoadLE<uint16_t>(file_, offset + 26);
    const uint16_t extra_length = *LoadLE<uint16_t>(file_, offset + 28);
    const uint64_t data_offset = offset + kLocalHeaderSize + name_length + extra_length;
    if (data_offset > directory_offset) {
      return Status::Corruption(where + ": local header at offset " + std::to_string(offset) +
                                " runs into the central directory at " + std::to_string(directory_offset));
    }
    entry->data_offset = data_offset;
    std::string_view local_name = AsStringView(file_.subspan(offset + kLocalHeaderSize, name_length));
    if (local_name != entry->name) {
      NoteRejected("zip.local_name_mismatch", where,
                   "local header names the entry \"" + Printable(local_name) +
                       "\"; the central directory name is used and the data read after the local header");
    }
    if (local_method != entry->declared_method) {
      Note("zip.local_method_mismatch", where,
           "local header declares compression method " + std::to_string(local_method) + " but the central directory " +
               std::to_string(entry->declared_method) + "; Android uses the central directory, and so do we");
    }
    if ((local_flags & kFlagDataDescriptor) != (entry->flags & kFlagDataDescriptor)) {
      Note("zip.data_descriptor_flag_mismatch", where,
           "local and central headers disagree on whether a data descriptor follows the data; the local header is "
           "followed, as Android does");
    }

    const uint64_t data_length = DataLength(*entry);
    if (data_length > directory_offset - data_offset) {
      return Status::Corruption(where + ": " + std::to_string(data_length) + " bytes of data at offset " +
                                std::to_string(data_offset) + " run into the central directory at " +
                                std::to_string(directory_offset));
    }
    if (!entry->is_deflated() && entry->compressed_size != entry->uncompressed_size) {
      Note("zip.stored_size_mismatch", where,
           "entry read as stored declares " + std::to_string(entry->compressed_size) + " compressed but " +
               std::to_string(entry->uncompressed_size) + " uncompressed bytes; " + std::to_string(data_length) +
               " bytes are read");
    }

    if (local_flags & kFlagDataDescriptor) {
      CheckDataDescriptor(*entry, data_offset + data_length, directory_offset);
      return Status::Ok();
    }
    uint64_t local_compressed = local_compressed32;
    uint64_t local_uncompressed = local_uncompressed32;
    if (local_compressed32 == UINT32_MAX || local_uncompressed32 == UINT32_MAX) {
      Bytes extra = file_.subspan(offset + kLocalHeaderSize + name_length, extra_length);
      auto wide = ParseZip64Extra(extra, local_uncompressed32, local_compressed32, std::nullopt, where + " (local)");
      if (wide.ok()) {
        local_compressed = wide->compressed_size.value_or(local_compressed32);
        local_uncompressed = wide->uncompressed_size.value_or(local_uncompressed32);
      }
    }
    if (local_crc != entry->crc32 || local_compressed != entry->compressed_size ||
        local_uncompressed != entry->uncompressed_size) {
      NoteRejected("zip.local_header_mismatch", where,
                   "local header declares CRC " + Hex32(local_crc) + ", " + std::to_string(local_compressed) +
                       " compressed and " + std::to_string(local_uncompressed) +
                       " uncompressed bytes, central directory " + Hex32(entry->crc32) + ", " +
                       std::to_string(entry->compressed_size) + " and " + std::to_string(entry->uncompressed_size) +
                       "; the central directory is used");
    }
    return Status::Ok();
  }

  void CheckDataDescriptor(const ZipEntry& entry, uint64_t descriptor_offset, uint64_t directory_offset) {
    const bool wide = entry.compressed_size >= UINT32_MAX || entry.uncompressed_size >= UINT32_MAX;
    Bytes before_directory = file_.first(directory_offset);
    uint64_t position = descriptor_offset;
    if (LoadLE<uint32_t>(before_directory, position) == kDataDescriptorSignature) position += 4;
    auto crc = LoadLE<uint32_t>(before_directory, position);
    std::optional<uint64_t> compressed, uncompressed;
    if (wide) {
      compressed = LoadLE<uint64_t>(before_directory, position + 4);
      uncompressed = LoadLE<uint64_t>(before_directory, position + 12);
    } else {
      compressed = LoadLE<uint32_t>(before_directory, position + 4);
      uncompressed = LoadLE<uint32_t>(before_directory, position + 8);
    }
    if (!crc || !compressed || !uncompressed) {
      NoteRejected("zip.data_descriptor_mismatch", Printable(entry.name),
                   "local header announces a data descriptor but none fits before the central directory");
    } else if (*crc != entry.crc32 || *compressed != entry.compressed_size ||
               *uncompressed != entry.uncompressed_size) {
      NoteRejected("zip.data_descriptor_mismatch", Printable(entry.name),
                   "data descriptor declares CRC " + Hex32(*crc) + ", " + std::to_string(*compressed) + " and " +
                       std::to_string(*uncompressed) + " bytes, which differ from the central directory");
    }
  }

  void set_directory_offset(uint64_t offset) { directory_offset_ = offset; }

 private:
  Bytes file_;
  Anomalies* anomalies_;
  std::string* android_rejection_;
  uint64_t directory_offset_ = 0;
};

// Fails when two entries' local header + data ranges intersect. Real archives never share bytes
// between entries; overlapping ones are how "quoted overlap" zip bombs make one compressed kernel
// count as the data of many entries.
Status CheckNoOverlap(const std::vector<ZipEntry>& entries) {
  struct Span {
    uint64_t begin;
    uint64_t end;
    uint32_t index;
  };
  std::vector<Span> spans;
  spans.reserve(entries.size());
  for (uint32_t i = 0; i < entries.size(); ++i) {
    const ZipEntry& entry = entries[i];
    spans.push_back({entry.local_header_offset, entry.data_offset + DataLength(entry), i});
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < spans.size(); ++i) {
    if (spans[i].begin < spans[i - 1].end) {
      const ZipEntry& first = entries[spans[i - 1].index];
      const ZipEntry& second = entries[spans[i].index];
      return Status::Corruption("entries \"" + Printable(first.name) + "\" (bytes " +
                                std::to_string(spans[i - 1].begin) + "-" + std::to_string(spans[i - 1].end) +
                                ") and \"" + Printable(second.name) + "\" (from byte " +
                                std::to_string(spans[i].begin) + ") overlap: a zip-bomb construction, refused");
    }
  }
  return Status::Ok();
}

struct DecompressorDeleter {
  void operator()(libdeflate_decompressor* decompressor) const { libdeflate_free_decompressor(decompressor); }
};

}  // namespace

Result<ZipArchive> ZipArchive::Open(Bytes file, const Limits& limits) {
  ZipArchive archive;
  archive.file_ = file;
  archive.limits_ = limits;
  ArchiveParser parser(file, &archive.anomalies_, &archive.android_rejection_);

  APPBAN_ASSIGN_OR_RETURN(EndRecord end, parser.FindEndRecord());
  archive.eocd_offset_ = end.offset;
  archive.central_directory_offset_ = end.directory_offset;
  archive.central_directory_size_ = end.directory_size;
  parser.set_directory_offset(end.directory_offset);
  if (end.entry_count > limits.max_zip_entries) {
    return Status::LimitExceeded("central directory declares " + std::to_string(end.entry_count) +
                                 " entries, more than the limit of " + std::to_string(limits.max_zip_entries) +
                                 " (max_zip_entries)");
  }

  Bytes directory = file.subspan(end.directory_offset, end.directory_size);
  // Never reserve from the declared count alone: each record takes at least 46 bytes.
  archive.entries_.reserve(std::min<uint64_t>(end.entry_count, directory.size() / kCentralHeaderSize));
  size_t position = 0;
  for (uint64_t i = 0; i < end.entry_count; ++i) {
    ZipEntry entry;
    APPBAN_ASSIGN_OR_RETURN(position,
                            parser.ReadCentralRecord(directory, position, i, end.entry_count, limits, &entry));
    parser.CheckCentralRecord(entry);
    archive.entries_.push_back(std::move(entry));
  }
  // The local headers lie all over the file, one page (and one TLB miss) each: asking for the
  // ones a few entries ahead overlaps those misses instead of waiting for each in turn.
  constexpr size_t kPrefetchAhead = 16;
  for (size_t i = 0; i < archive.entries_.size(); ++i) {
    if (i + kPrefetchAhead < archive.entries_.size()) {
      const uint64_t ahead = archive.entries_[i + kPrefetchAhead].local_header_offset;
      if (ahead < file.size()) __builtin_prefetch(file.data() + ahead);
    }
    APPBAN_RETURN_IF_ERROR(parser.CheckLocalHeader(&archive.entries_[i], end.directory_offset));
  }

  if (!archive.entries_.empty()) {
    uint64_t first_local_header = UINT64_MAX;
    for (const ZipEntry& entry : archive.entries_)
      first_local_header = std::min(first_local_header, entry.local_header_offset);
    if (first_local_header > 0) {
      const bool starts_with_local_header = LoadLE<uint32_t>(file, 0) == kLocalHeaderSignature;
      std::string detail = std::to_string(first_local_header) + " bytes precede the first local header";
      if (starts_with_local_header) {
        parser.Note("zip.data_before_archive", "start of file",
                    detail + ", beginning with a local header that no central directory record names");
      } else {
        parser.NoteRejected("zip.data_before_archive", "start of file",
                            detail + " and the file does not start with a local header");
      }
    }
    APPBAN_RETURN_IF_ERROR(CheckNoOverlap(archive.entries_));
  }

  // entries_ is final: views into its names stay valid from here on (also across moves).
  archive.first_by_name_.reserve(archive.entries_.size());
  for (const ZipEntry& entry : archive.entries_) {
    auto [it, inserted] = archive.first_by_name_.try_emplace(entry.name, entry.central_index);
    if (!inserted) {
      parser.NoteRejected("zip.duplicate_entry", Printable(entry.name),
                          "central directory records " + std::to_string(it->second) + " and " +
                              std::to_string(entry.central_index) + " have the same name; the first is used");
    }
  }
  return archive;
}

const ZipEntry* ZipArchive::Find(std::string_view name) const {
  auto it = first_by_name_.find(name);
  return it == first_by_name_.end() ? nullptr : &entries_[it->second];
}

uint64_t ZipArchive::DeclaredSize(const ZipEntry& entry) {
  return entry.is_deflated() ? entry.uncompressed_size : StoredLength(entry);
}

Result<Buffer> ZipArchive::Read(const ZipEntry& entry, uint64_t* total_budget, Anomalies* anomalies) const {
  const std::string where = Printable(entry.name);
  const uint64_t declared = DeclaredSize(entry);
  if (declared > limits_.max_entry_inflated_bytes) {
    return Status::LimitExceeded(
        where + ": declared size of " + std::to_string(declared) + " bytes exceeds the per-entry limit of " +
        std::to_string(limits_.max_entry_inflated_bytes) + " bytes (max_entry_inflated_bytes)");
  }
  if (total_budget != nullptr && declared > *total_budget) {
    return Status::LimitExceeded(where + ": declared size of " + std::to_string(declared) + " bytes exceeds the " +
                                 std::to_string(*total_budget) + " bytes left of the total inflation limit of " +
                                 std::to_string(limits_.max_total_inflated_bytes) +
                                 " bytes (max_total_inflated_bytes)");
  }

  Buffer out;
  if (!entry.is_deflated()) {
    auto data = SubSpan(file_, entry.data_offset, declared);
    if (!data) {
      return Status::Truncated(where + ": " + std::to_string(declared) + " bytes of stored data at offset " +
                               std::to_string(entry.data_offset) + " run past the end of the file");
    }
    out = Buffer::CopyOf(*data);
  } else {
    if (declared > kRatioCheckMinimumOutput &&
        declared / std::max<uint64_t>(entry.compressed_size, 1) > limits_.max_compression_ratio) {
      return Status::LimitExceeded(where + ": " + std::to_string(entry.compressed_size) + " compressed bytes declare " +
                                   std::to_string(declared) + " inflated bytes, a ratio above the limit of " +
                                   std::to_string(limits_.max_compression_ratio) + " (max_compression_ratio)");
    }
    auto input = SubSpan(file_, entry.data_offset, entry.compressed_size);
    if (!input) {
      return Status::Truncated(where + ": " + std::to_string(entry.compressed_size) +
                               " bytes of compressed data at offset " + std::to_string(entry.data_offset) +
                               " run past the end of the file");
    }
    std::unique_ptr<libdeflate_decompressor, DecompressorDeleter> decompressor(libdeflate_alloc_decompressor());
    if (!decompressor) return Status::Internal(where + ": cannot allocate a DEFLATE decompressor");
    // The buffer is exactly the declared size, so a stream that inflates to more stops there:
    // a lying size can never make us produce or allocate more than was declared (and checked).
    out = Buffer(static_cast<size_t>(declared));
    uint8_t empty_output;  // libdeflate wants a valid pointer even for zero bytes of room
    size_t consumed = 0;
    size_t produced = 0;
    libdeflate_result result =
        libdeflate_deflate_decompress_ex(decompressor.get(), input->data(), input->size(),
                                         out.empty() ? &empty_output : out.data(), out.size(), &consumed, &produced);
    switch (result) {
      case LIBDEFLATE_SUCCESS:
        break;
      case LIBDEFLATE_INSUFFICIENT_SPACE:
        return Status::Corruption(where + ": inflates to more than the declared " + std::to_string(declared) +
                                  " bytes; Android refuses to extract it, and inflation was stopped there");
      default:
        return Status::Corruption(where + ": invalid DEFLATE data in " + std::to_string(entry.compressed_size) +
                                  " compressed bytes at offset " + std::to_string(entry.data_offset));
    }
    if (produced != declared) {
      return Status::Corruption(where + ": inflates to " + std::to_string(produced) + " bytes but " +
                                std::to_string(declared) + " are declared; Android refuses to extract it");
    }
    if (consumed != input->size()) {
      AddAnomaly(anomalies, "zip.trailing_compressed_bytes", where,
                 std::to_string(input->size() - consumed) +
                     " bytes follow the end of the DEFLATE stream inside the entry's compressed size; ignored, as "
                     "Android does");
    }
  }

  const uint32_t crc = static_cast<uint32_t>(libdeflate_crc32(0, out.data(), out.size()));
  if (crc != entry.crc32) {
    AddAnomaly(anomalies, "zip.crc_mismatch", where,
               "data has CRC-32 " + Hex32(crc) + " but " + Hex32(entry.crc32) +
                   " is declared; Android does not check CRCs, so the data is used as read");
  }
  if (total_budget != nullptr) *total_budget -= declared;
  return out;
}

}  // namespace appban::apk
