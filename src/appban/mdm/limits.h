// Named limits on what the MDM connectors read from files and from an MDM's API. An MDM is a
// remote service reached over the network: its answers are bounded like any untrusted input, and a
// limit that is hit is an error naming it, never a silent truncation.
#pragma once

#include <cstddef>
#include <cstdint>

namespace appban::mdm {

struct MdmLimits {
  // A Google service-account key file is about 2.3 KB (a 2048-bit RSA key in PEM plus a few ids).
  uint64_t max_key_file_bytes = 64 * 1024;
  // An OAuth token response is a few hundred bytes.
  uint64_t max_token_response_bytes = 64 * 1024;
  // One AMAPI response: a policy, or one page of devices. A device with 300 application reports
  // is ~150 KB, and pages are requested at kDevicePageSize devices; 32 MiB leaves a wide margin.
  uint64_t max_response_bytes = 32ull << 20;
  // Policies nest a handful of levels; managed configurations may nest more. 64 keeps the
  // recursive parser far from the stack's end on a hostile "[[[[".
  int max_json_depth = 64;
  // Paging stops with kLimitExceeded rather than following a server that never ends.
  size_t max_pages = 10'000;
  size_t max_devices = 1'000'000;
  size_t max_policies = 10'000;
  // Entries of one policy's applications[] (Google documents no limit; thousands are unusual).
  size_t max_applications_per_policy = 10'000;
  // Intune (Graph): apps in the tenant's catalogue (mobileApps), apps detected across the fleet,
  // and assignments of one app. Large tenants detect tens of thousands of distinct apps.
  size_t max_mobile_apps = 100'000;
  size_t max_detected_apps = 1'000'000;
  size_t max_assignments_per_app = 10'000;
  // The connector's own state file (which entries appban owns, per policy).
  uint64_t max_state_file_bytes = 16ull << 20;

  // Apple MDM. A webhook event carries one command result: an InstalledApplicationList of a
  // phone with 300 apps is ~60 KB of plist, ~80 KB once base64 in the event's JSON.
  uint64_t max_webhook_event_bytes = 4ull << 20;
  // Apps one device may report; a device over it is reported, not truncated.
  size_t max_apps_per_device = 10'000;
  // Devices one Apple connector manages (lines of its devices file).
  size_t max_apple_devices = 1'000'000;
  uint64_t max_devices_file_bytes = 128ull << 20;
  // What the webhook receiver keeps: the results file, and command results in it (oldest dropped).
  uint64_t max_results_file_bytes = 1ull << 30;
  size_t max_recorded_commands = 200'000;
};

inline constexpr MdmLimits kMdmLimits{};

// Page size asked of enterprises.devices.list / policies.list (the service may return fewer).
inline constexpr int kDevicePageSize = 100;
inline constexpr int kPolicyPageSize = 100;

}  // namespace appban::mdm
