// Named limits on everything an APK can make a parser allocate or loop over. Defaults are
// generous for real apps (the largest store apps have ~100 MB of DEX and ~30k ZIP entries) and
// tight enough that a hostile file cannot exhaust a 2-core, few-GB analysis box.
#pragma once

#include <cstdint>

namespace appban::apk {

struct Limits {
  // ZIP container.
  uint32_t max_zip_entries = 100'000;
  uint64_t max_entry_inflated_bytes = 512ull << 20;  // one entry, after inflation
  uint64_t max_total_inflated_bytes = 2ull << 30;    // everything inspect inflates, together
  uint32_t max_compression_ratio = 1000;             // inflated / compressed, above 1 MiB output
  uint32_t max_entry_name_bytes = 4096;

  // Binary XML and resources.arsc.
  uint64_t max_manifest_bytes = 16ull << 20;
  uint64_t max_resources_bytes = 256ull << 20;
  uint32_t max_string_pool_strings = 4'000'000;
  uint32_t max_xml_depth = 256;
  uint32_t max_xml_nodes = 1'000'000;
  uint32_t max_resource_reference_depth = 16;
  // Bytes of text one binary XML document may materialise: attribute records can alias one
  // record (attributeSize 0) or one long string, so output can outgrow the input many times over.
  uint64_t max_xml_string_bytes = 64ull << 20;

  // DEX.
  uint32_t max_dex_files = 512;
  // One DEX file. Its offsets are 32-bit and a single DEX holds at most 65536 method refs, so real
  // ones stay far below this (tens of MB).
  uint64_t max_dex_bytes = 256ull << 20;

  // Signing.
  uint64_t max_signing_block_bytes = 64ull << 20;
  uint32_t max_signers = 64;
  uint32_t max_certificates_per_signer = 64;
  uint32_t max_signing_block_entries = 1024;  // ID-value pairs in the APK Signing Block
};

}  // namespace appban::apk
