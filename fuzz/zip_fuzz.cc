// libFuzzer target for the ZIP reader: open the input as an archive, then read every entry with
// small limits, so size lies and bombs are exercised without the fuzzer itself running out of
// memory. Any crash, hang, leak or sanitizer report is a bug in zip.cc.
#include <cstddef>
#include <cstdint>

#include "appban/apk/zip.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  appban::apk::Limits limits;
  limits.max_zip_entries = 4096;
  limits.max_entry_inflated_bytes = 4u << 20;
  limits.max_total_inflated_bytes = 16u << 20;
  auto zip = appban::apk::ZipArchive::Open(appban::Bytes(data, size), limits);
  if (!zip.ok()) return 0;
  uint64_t budget = limits.max_total_inflated_bytes;
  appban::apk::Anomalies anomalies;
  for (const appban::apk::ZipEntry& entry : zip->entries()) {
    auto contents = zip->Read(entry, &budget, &anomalies);
    if (contents.ok() && contents->size() > limits.max_entry_inflated_bytes) __builtin_trap();
    (void)zip->Find(entry.name);
  }
  return 0;
}
