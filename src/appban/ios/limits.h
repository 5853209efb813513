// Named limits on everything an iOS app (IPA, .app bundle, framework, Mach-O) can make the
// readers allocate or loop over. Defaults are generous for real apps (the largest App Store
// binaries are a few hundred MB with tens of thousands of symbols) and tight enough that a
// hostile file cannot exhaust a 2-core, few-GB analysis box.
#pragma once

#include <cstdint>

#include "appban/apk/limits.h"
#include "appban/plist/plist.h"

namespace appban::ios {

struct Limits {
  // The ZIP container of an IPA (reused from the APK reader) and what is inflated from it.
  apk::Limits zip;
  // Property lists: Info.plist, entitlements, provisioning profiles, privacy manifests.
  plist::Limits plist;
  uint64_t max_plist_bytes = 8ull << 20;

  // Mach-O.
  uint64_t max_macho_bytes = 1ull << 30;  // one executable, all slices
  uint32_t max_fat_slices = 16;           // real universal files carry 2 to 4
  uint32_t max_load_commands = 4096;      // the kernel refuses headers above 32 KB of commands anyway
  uint32_t max_sections = 4096;
  uint32_t max_archive_members = 100'000;  // object files of one static library slice (real SDKs: hundreds)
  uint32_t max_symbols = 4'000'000;
  uint32_t max_imported_symbols_kept = 20'000;  // reported, after deduplication
  uint32_t max_strings_kept = 50'000;           // __cstring strings kept for endpoint extraction
  uint32_t max_objc_names_kept = 50'000;        // class names and selectors, each

  // Code signature.
  uint64_t max_code_signature_bytes = 32ull << 20;
  uint32_t max_signature_blobs = 64;
  uint32_t max_code_slots = 1u << 24;  // page hashes of one CodeDirectory (4 KB pages: 64 GB)
  uint64_t max_cms_bytes = 1ull << 20;

  // Bundles.
  uint32_t max_nested_bundles = 512;  // frameworks and plug-ins, together
  uint64_t max_bundle_files = 200'000;
};

}  // namespace appban::ios
