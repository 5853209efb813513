// An AMAPI Device (enterprises.devices.list) as appban reads it: which policy it is on, what it
// applied, and the apps it reports installed, as policy::InstalledApp values that evaluate against a
// bundle exactly like an agent device's inventory. Pure; thread-safe.
//
// What AMAPI cannot tell: applicationReports carry SHA-1 signing-certificate fingerprints
// (signingKeyCertFingerprints), not the SHA-256 appban's android-signer targets use, so publisher
// rules do not match MDM-reported apps; package-name rules do. Reports exist only when the policy
// has statusReportingSettings.applicationReportsEnabled (the connector turns it on).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/status.h"
#include "appban/policy/evaluate.h"

namespace appban::mdm {

struct AmapiDevice {
  std::string name;         // enterprises/E/devices/D
  std::string policy_name;  // the policy assigned (Device.policyName)
  std::string applied_policy_name;
  std::string applied_policy_version;  // int64 as a string, compare with Policy.version
  bool policy_compliant = false;
  std::optional<UnixSeconds> last_policy_sync;  // lastPolicySyncTime (RFC 3339), when present
  bool reports_apps = false;                    // applicationReports present at all
  std::vector<policy::InstalledApp> installed;  // reports in state INSTALLED
  std::vector<std::string> removed;             // packages reported REMOVED
};

// Fails (kCorruption) when the device has no name or a field has the wrong type.
Result<AmapiDevice> ParseAmapiDevice(const Json& device);

}  // namespace appban::mdm
