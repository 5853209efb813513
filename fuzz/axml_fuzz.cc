// Fuzzes ParseAxml and then ExtractManifest on whatever tree it accepted: both promise a value or
// a clear error for any bytes, never a crash, hang or unbounded allocation.
#include <cstddef>
#include <cstdint>

#include "appban/apk/axml.h"
#include "appban/apk/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  appban::apk::Limits limits;
  // Keep one input's work small so the fuzzer explores; the real limits are larger but enforced
  // by the same checks.
  limits.max_xml_nodes = 100'000;
  limits.max_xml_string_bytes = 4u << 20;
  appban::apk::Anomalies anomalies;
  auto document = appban::apk::ParseAxml({data, size}, limits, &anomalies);
  if (!document.ok()) return 0;
  auto manifest = appban::apk::ExtractManifest(*document, nullptr, &anomalies);
  if (manifest.ok() && manifest->package.empty()) __builtin_trap();  // a manifest always has a package
  return 0;
}
