// Read-only access to whole files. MappedFile maps a file into memory (RAII: unmapped on
// destruction) so parsers can work on a span without copying; only the pages a parser touches are
// read from disk. Movable, not copyable; the mapping is immutable and safe to read from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "appban/common/bytes.h"
#include "appban/common/status.h"

namespace appban {

class MappedFile {
 public:
  static Result<MappedFile> Open(const std::string& path);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  Bytes bytes() const { return {static_cast<const uint8_t*>(data_), size_}; }
  // Tells the kernel the pages wholly inside [offset, offset+length) are not needed for now (they
  // are clean file pages: reading them again simply faults them back in). Keeps a reader's
  // resident memory at what it has decoded, not decoded plus compressed.
  void ReleasePages(uint64_t offset, uint64_t length) const;
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, void* data, size_t size) : path_(std::move(path)), data_(data), size_(size) {}
  void Reset();

  std::string path_;
  void* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a whole file, refusing files larger than `max_bytes`.
Result<std::string> ReadFileToString(const std::string& path, uint64_t max_bytes);

// Writes `contents` to `path` atomically: a temporary file in the same directory, fsync, rename,
// fsync of the directory. Readers see the old file or the new one, never a partial write.
// An existing device or FIFO (/dev/stdout) is written in place instead of being replaced.
Status WriteFileAtomically(const std::string& path, std::string_view contents, unsigned mode = 0644);

}  // namespace appban
