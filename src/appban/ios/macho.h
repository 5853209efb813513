// Mach-O reader: thin and universal (fat, fat64) executables, dylibs and bundles as they ship in
// iOS apps. Reads every architecture's header and load commands, minimum OS, linked libraries,
// encryption, the code-signature location, imported symbols, Objective-C class names and
// selectors, Swift module names and C strings (for endpoints). Pure parsing over a span with
// explicit bounds: a load command running past its header, a slice running past the file or
// overlapping another is an error or an anomaly, never a read out of bounds. Thread-safe (pure).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "appban/apk/anomaly.h"
#include "appban/common/bytes.h"
#include "appban/common/status.h"
#include "appban/ios/limits.h"

namespace appban::ios {

using apk::Anomalies;

struct LinkedLibrary {
  std::string path;  // "/System/Library/Frameworks/CoreLocation.framework/CoreLocation", "@rpath/…"
  std::string kind;  // "load", "weak", "reexport", "lazy", "upward", "autolink"
};

struct MachOSlice {
  std::string arch;  // "arm64", "arm64e", "armv7", "x86_64", ...
  uint32_t cpu_type = 0;
  uint32_t cpu_subtype = 0;
  uint64_t offset = 0;  // of this slice within the file
  uint64_t size = 0;
  bool is_64 = false;
  std::string file_type;  // "execute", "dylib", "bundle", "object", ..., "static-library" (an ar archive)
  uint32_t flags = 0;
  bool pie = false;
  uint32_t load_command_count = 0;
  std::vector<std::string> load_commands;  // names in order ("LC_SEGMENT_64", ...)

  std::string platform;      // "ios", "macos", "iossimulator", ... (LC_BUILD_VERSION or LC_VERSION_MIN_*)
  std::string minimum_os;    // "15.0"
  std::string sdk;           // "16.0"
  std::string uuid;          // LC_UUID, lowercase hex with dashes
  std::string install_name;  // LC_ID_DYLIB, for a dylib/framework
  // For a static library, the facts below are the union of its Mach-O object members' (imports:
  // those no member defines) and libraries are the objects' auto-link requests (LC_LINKER_OPTION,
  // kind "autolink": "-framework UIKit" is "UIKit.framework/UIKit", "-lz" is "libz.dylib").
  uint32_t archive_members = 0;  // Mach-O objects in a static library; 0 for an image
  std::vector<LinkedLibrary> libraries;
  std::vector<std::string> rpaths;

  // LC_ENCRYPTION_INFO[_64]: present, and whether the protected range is encrypted (cryptid != 0,
  // an App Store binary as downloaded). Then the sections inside [crypt_offset, +crypt_size) are
  // ciphertext and their strings, class names and selectors cannot be read.
  bool has_encryption_info = false;
  uint32_t crypt_id = 0;
  uint64_t crypt_offset = 0;
  uint64_t crypt_size = 0;
  bool encrypted() const { return has_encryption_info && crypt_id != 0; }

  // LC_CODE_SIGNATURE: offset and size of the superblob, relative to the slice.
  std::optional<uint64_t> code_signature_offset;
  uint64_t code_signature_size = 0;

  std::vector<std::string> imported_symbols;  // undefined external symbols, sorted, deduplicated
  uint64_t imported_symbol_count = 0;         // before the cap
  std::vector<std::string> objc_classes;      // defined (__objc_classname), sorted
  std::vector<std::string> objc_selectors;    // __objc_methname, sorted
  std::vector<std::string> swift_modules;     // from mangled Swift symbol and class names
  std::vector<std::string> strings;           // __cstring, printable, 4+ chars, in file order
  // Facts that could not be read because their section is encrypted ("__TEXT,__cstring").
  std::vector<std::string> unreadable_sections;
};

struct MachO {
  bool fat = false;
  bool fat64 = false;
  std::vector<MachOSlice> slices;
  Anomalies anomalies;
};

// True when `bytes` start with a Mach-O or universal magic (thin 32/64, fat, fat64).
bool LooksLikeMachO(Bytes bytes);

// Parses `bytes` (the whole file). Errors: NotRecognized without a Mach-O magic; Truncated,
// Corruption or LimitExceeded naming the slice and load command at fault. A slice that cannot
// be read in a universal file is an anomaly when another slice can be.
Result<MachO> ParseMachO(Bytes bytes, const Limits& limits = {});

// "arm64" for (CPU_TYPE_ARM64, 0); "cpu 0x…" for an unknown pair.
std::string ArchName(uint32_t cpu_type, uint32_t cpu_subtype);

}  // namespace appban::ios
