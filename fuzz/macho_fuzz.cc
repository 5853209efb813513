// libFuzzer target for the Mach-O reader (thin, fat, fat64) and, through it, the code-signature
// superblob, DER entitlements and CMS parsing: every slice that carries LC_CODE_SIGNATURE has its
// signature read and its pages checked. Any crash, hang, leak or sanitizer report is a bug in
// ios/macho.cc or ios/code_signature.cc.
#include <cstddef>
#include <cstdint>

#include "appban/ios/code_signature.h"
#include "appban/ios/macho.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  appban::ios::Limits limits;
  limits.max_symbols = 100'000;
  limits.max_code_slots = 1u << 16;
  appban::Bytes bytes(data, size);
  auto macho = appban::ios::ParseMachO(bytes, limits);
  if (!macho.ok()) {
    // The superblob reader on its own, over the raw input.
    appban::apk::Anomalies anomalies;
    (void)appban::ios::ParseCodeSignature(bytes, bytes, std::nullopt, limits, &anomalies, "fuzz");
    (void)appban::ios::ParseDerEntitlements(bytes, limits);
    return 0;
  }
  for (const auto& slice : macho->slices) {
    if (slice.offset > size || slice.size > size - slice.offset) __builtin_trap();
    if (!slice.code_signature_offset) continue;
    auto slice_bytes = bytes.subspan(slice.offset, slice.size);
    auto blob = appban::SubSpan(slice_bytes, *slice.code_signature_offset, slice.code_signature_size);
    if (!blob) continue;
    appban::apk::Anomalies anomalies;
    (void)appban::ios::ParseCodeSignature(*blob, slice_bytes, std::nullopt, limits, &anomalies, "fuzz");
  }
  return 0;
}
