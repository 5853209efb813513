// libFuzzer target for the IPA path: the input is opened as an in-memory IPA (or Mach-O), which
// runs the ZIP reader, bundle discovery, Info.plist, privacy manifest and provisioning-profile
// readers and every nested executable's Mach-O and signature readers, with small limits. An input
// that is neither is read as a bare provisioning profile (CMS, then its plist). Any crash, hang,
// leak or sanitizer report is a bug in the ios part.
#include <cstddef>
#include <cstdint>

#include "appban/ios/app.h"
#include "appban/ios/report_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  appban::ios::Limits limits;
  limits.zip.max_zip_entries = 4096;
  limits.zip.max_entry_inflated_bytes = 4u << 20;
  limits.zip.max_total_inflated_bytes = 16u << 20;
  limits.max_symbols = 100'000;
  limits.max_nested_bundles = 64;
  auto app = appban::ios::IosApp::FromBytes(appban::Bytes(data, size), "fuzz.ipa", limits);
  if (!app.ok()) {
    (void)appban::ios::ReadProvisioningProfile(appban::Bytes(data, size), limits, 0);
    return 0;
  }
  (void)appban::ios::InspectDocument(*app).dump();
  return 0;
}
