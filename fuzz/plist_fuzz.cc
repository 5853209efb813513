// libFuzzer target for the plist reader (binary and XML): parse with small limits, and when a
// document parses, write it as XML and read that back — it must parse again. Any crash, hang, leak
// or sanitizer report is a bug in plist.cc.
#include <cstddef>
#include <cstdint>

#include "appban/plist/plist.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  appban::plist::Limits limits;
  limits.max_values = 100'000;
  limits.max_payload_bytes = 4u << 20;
  limits.max_depth = 64;
  auto value = appban::plist::Parse(appban::Bytes(data, size), limits);
  if (!value.ok()) return 0;
  std::string xml = appban::plist::WriteXml(*value);
  appban::plist::Limits relaxed;
  relaxed.max_depth = 128;
  relaxed.max_input_bytes = 1ull << 30;
  relaxed.max_payload_bytes = 1ull << 30;
  if (!appban::plist::ParseXml(appban::AsBytes(xml), relaxed).ok()) __builtin_trap();
  return 0;
}
