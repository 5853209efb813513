// Fuzzes ResourceTable::Parse and then Resolve on ids taken from the input itself (every aligned
// 32-bit word that looks like an app or framework resource id), so lookups reach real entries.
#include <cstddef>
#include <cstdint>

#include "appban/apk/arsc.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  appban::apk::Anomalies anomalies;
  auto table =
      appban::apk::ResourceTable::Parse(appban::Buffer::CopyOf({data, size}), appban::apk::Limits{}, &anomalies);
  if (!table.ok()) return 0;
  size_t total = 0;
  int lookups = 0;
  for (size_t offset = 0; offset + 4 <= size && lookups < 256; offset += 4) {
    uint32_t word = static_cast<uint32_t>(data[offset]) | static_cast<uint32_t>(data[offset + 1]) << 8 |
                    static_cast<uint32_t>(data[offset + 2]) << 16 | static_cast<uint32_t>(data[offset + 3]) << 24;
    uint32_t package = word >> 24;
    if ((package != 0x7f && package != 0x01) || ((word >> 16) & 0xff) == 0) continue;
    ++lookups;
    if (auto value = table->Resolve(word)) total += value->string_value.size() + value->data;
  }
  for (uint32_t entry = 0; entry < 4; ++entry) {
    if (auto text = table->ResolveString(0x7f010000 + entry)) total += text->size();
  }
  return total == 0xdeadbeef;  // keep `total` observable
}
