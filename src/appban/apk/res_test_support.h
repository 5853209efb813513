// Test-only helpers for the AXML / ARSC / manifest tests: run the reference tools (aapt, unzip) on
// androguard's example APKs, and patch bytes of a real manifest. Not part of any library.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "appban/common/bytes.h"

namespace appban::apk::testing {

inline const std::filesystem::path kExamples = "/usr/share/doc/androguard/examples";

inline std::string ShellQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// stdout of `command` (stderr discarded).
inline std::string RunCommand(const std::string& command) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen((command + " 2>/dev/null").c_str(), "r"), pclose);
  if (!pipe) return out;
  std::array<char, 65536> chunk;
  size_t n;
  while ((n = fread(chunk.data(), 1, chunk.size(), pipe.get())) > 0) out.append(chunk.data(), n);
  return out;
}

inline std::string ReadApkEntry(const std::filesystem::path& apk, const std::string& entry) {
  return RunCommand("unzip -p " + ShellQuote(apk.string()) + " " + ShellQuote(entry));
}

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// Every example APK androguard ships under tests/ (sorted, so failures are reproducible).
inline std::vector<std::filesystem::path> ExampleApks() {
  std::vector<std::filesystem::path> apks;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(kExamples / "tests", error)) {
    if (entry.path().extension() == ".apk") apks.push_back(entry.path());
  }
  std::sort(apks.begin(), apks.end());
  return apks;
}

inline Bytes AsBytesOf(const std::string& text) { return AsBytes(text); }

inline void Put16(std::string* data, size_t offset, uint16_t value) {
  (*data)[offset] = static_cast<char>(value & 0xff);
  (*data)[offset + 1] = static_cast<char>(value >> 8);
}
inline void Put32(std::string* data, size_t offset, uint32_t value) {
  for (int i = 0; i < 4; ++i) (*data)[offset + i] = static_cast<char>((value >> (8 * i)) & 0xff);
}
inline uint16_t Get16(const std::string& data, size_t offset) {
  return static_cast<uint16_t>(static_cast<uint8_t>(data[offset]) | static_cast<uint8_t>(data[offset + 1]) << 8);
}
inline uint32_t Get32(const std::string& data, size_t offset) {
  return Get16(data, offset) | static_cast<uint32_t>(Get16(data, offset + 2)) << 16;
}

// Overwrites, with 'x's, the text of every string the resource map names (the android: attribute
// names) in an aapt-built manifest with a UTF-16 pool right after the 8-byte file header and the
// resource map right after the pool. Returns `manifest` unchanged when it is not laid out so.
inline std::string StripResourceMappedNames(const std::string& manifest) {
  const size_t pool = 8;
  if (manifest.size() < 64 || Get16(manifest, pool) != 0x0001 || (Get32(manifest, pool + 16) & 0x100) != 0) {
    return manifest;
  }
  const size_t resource_map = pool + Get32(manifest, pool + 4);
  if (Get16(manifest, resource_map) != 0x0180) return manifest;
  std::string out = manifest;
  const size_t entries = pool + Get16(manifest, pool + 2);
  const size_t strings = pool + Get32(manifest, pool + 20);
  const size_t mapped = (Get32(manifest, resource_map + 4) - 8) / 4;
  for (size_t i = 0; i < mapped; ++i) {
    size_t at = strings + Get32(manifest, entries + 4 * i);
    uint16_t length = Get16(manifest, at);
    for (uint16_t k = 0; k < length; ++k) Put16(&out, at + 2 + 2 * k, 'x');
  }
  return out;
}

}  // namespace appban::apk::testing
