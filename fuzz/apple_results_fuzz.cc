// libFuzzer target for what an Apple MDM's webhook delivers (apple_results.h): the input is tried
// as a webhook event (JSON carrying a base64 plist) and as a device's answer plist; whatever
// parses is folded into a results file and read back as apps and device information. Any crash,
// hang, leak or sanitizer report is a bug in apple_results.cc.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "appban/mdm/apple_results.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  appban::mdm::MdmLimits limits;
  limits.max_apps_per_device = 1000;
  limits.max_recorded_commands = 8;
  for (auto result : {appban::mdm::ParseWebhookEvent(input, limits), appban::mdm::ParseCommandResult(input, limits)}) {
    if (!result.ok()) continue;
    appban::mdm::ResultsFile results;
    (void)appban::mdm::RecordResult(results, *result, 1, limits);
    (void)appban::mdm::ParseInstalledApplicationList(result->payload, limits);
    (void)appban::mdm::ParseDeviceInformation(result->payload);
  }
  return 0;
}
