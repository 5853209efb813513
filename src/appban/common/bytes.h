// Bounds-checked little-endian reading over untrusted bytes. A ByteReader never reads outside the
// span it was given; every read either succeeds completely or fails and leaves the cursor alone.
// Formats parsed with it (ZIP, AXML, ARSC, DEX, APK Signing Block) are all little-endian.
// Not thread-safe; cheap to copy (it is a view).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

namespace appban {

using Bytes = std::span<const uint8_t>;

inline std::string_view AsStringView(Bytes bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}
inline Bytes AsBytes(std::string_view text) { return {reinterpret_cast<const uint8_t*>(text.data()), text.size()}; }

// Reads an unsigned little-endian integer of sizeof(T) bytes at `offset`, or nullopt when it
// would cross the end of `bytes`.
template <typename T>
std::optional<T> LoadLE(Bytes bytes, size_t offset) {
  if (offset > bytes.size() || bytes.size() - offset < sizeof(T)) return std::nullopt;
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) value |= static_cast<T>(static_cast<T>(bytes[offset + i]) << (8 * i));
  return value;
}

// Returns bytes[offset, offset+length) or nullopt when that range is not wholly inside `bytes`.
inline std::optional<Bytes> SubSpan(Bytes bytes, uint64_t offset, uint64_t length) {
  if (offset > bytes.size() || bytes.size() - offset < length) return std::nullopt;
  return bytes.subspan(static_cast<size_t>(offset), static_cast<size_t>(length));
}

class ByteReader {
 public:
  explicit ByteReader(Bytes bytes) : bytes_(bytes) {}

  size_t position() const { return position_; }
  size_t remaining() const { return bytes_.size() - position_; }
  bool empty() const { return remaining() == 0; }
  Bytes bytes() const { return bytes_; }

  bool Seek(size_t position) {
    if (position > bytes_.size()) return false;
    position_ = position;
    return true;
  }
  bool Skip(size_t count) {
    if (count > remaining()) return false;
    position_ += count;
    return true;
  }

  std::optional<uint8_t> U8() { return Read<uint8_t>(); }
  std::optional<uint16_t> U16() { return Read<uint16_t>(); }
  std::optional<uint32_t> U32() { return Read<uint32_t>(); }
  std::optional<uint64_t> U64() { return Read<uint64_t>(); }

  std::optional<Bytes> Take(size_t count) {
    if (count > remaining()) return std::nullopt;
    Bytes out = bytes_.subspan(position_, count);
    position_ += count;
    return out;
  }

  // Unsigned LEB128 as used by DEX, at most 5 bytes for a 32-bit value.
  std::optional<uint32_t> Uleb128() {
    uint32_t result = 0;
    size_t pos = position_;
    for (int shift = 0; shift < 35; shift += 7) {
      if (pos >= bytes_.size()) return std::nullopt;
      uint8_t byte = bytes_[pos++];
      result |= static_cast<uint32_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        position_ = pos;
        return result;
      }
    }
    return std::nullopt;  // more than 5 bytes: malformed
  }

 private:
  template <typename T>
  std::optional<T> Read() {
    auto value = LoadLE<T>(bytes_, position_);
    if (value) position_ += sizeof(T);
    return value;
  }

  Bytes bytes_;
  size_t position_ = 0;
};

}  // namespace appban

namespace appban {

// An owned, fixed-size byte buffer that is not zero-filled on allocation (inflating a 20 MB DEX
// into a zeroed vector would touch every page twice). Move-only.
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t size) : data_(size ? std::make_unique_for_overwrite<uint8_t[]>(size) : nullptr), size_(size) {}
  static Buffer CopyOf(Bytes bytes) {
    Buffer out(bytes.size());
    if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
    return out;
  }

  uint8_t* data() { return data_.get(); }
  const uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  Bytes bytes() const { return {data_.get(), size_}; }
  operator Bytes() const { return bytes(); }  // NOLINT: a buffer is naturally viewed as bytes
  // Shrinks the visible size (after an inflate that produced fewer bytes than reserved).
  void Truncate(size_t size) {
    if (size < size_) size_ = size;
  }

 private:
  std::unique_ptr<uint8_t[]> data_;
  size_t size_ = 0;
};

}  // namespace appban
