// A managed phone (or tablet, or laptop) as an MDM reports it, in the one form every connector
// (AMAPI, Intune, Apple MDM) hands to the fleet import, so that compliance evaluates MDM devices
// against the bundle exactly like agent devices. Each connector's Survey fills these from its own
// inventory; the import (issue 14) writes them to the fleet store with `source` and `platform`.
// Plain values; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/time.h"
#include "appban/policy/evaluate.h"

namespace appban::mdm {

enum class MdmSource { kAmapi, kIntune, kAppleMdm };

// "amapi", "intune", "apple-mdm": the `source` appban shows for the device.
constexpr std::string_view MdmSourceName(MdmSource source) {
  switch (source) {
    case MdmSource::kAmapi:
      return "amapi";
    case MdmSource::kIntune:
      return "intune";
    case MdmSource::kAppleMdm:
      return "apple-mdm";
  }
  return "unknown";
}

struct MdmDevice {
  MdmSource source = MdmSource::kAmapi;
  std::string connector;            // the configured connector's name ([[mdm.amapi]] name = …)
  std::string mdm_id;               // the MDM's own stable id: AMAPI device name, Intune id, Apple UDID
  std::string platform;             // "android", "ios", "ipados", "macos", "windows"
  std::string display_name;         // the name the MDM shows (may be empty)
  std::string user;                 // primary user (UPN, e-mail) when the MDM knows it
  std::string serial_number;        // when the MDM knows it
  std::vector<std::string> groups;  // appban groups the device counts in (from the connector config)

  // False when the MDM holds no app inventory for the device (reporting off, never synced):
  // appban cannot verify it, and must not count it compliant.
  bool reports_apps = false;
  std::vector<policy::InstalledApp> installed;  // apps the MDM reports installed
  std::vector<std::string> removed;             // app ids the MDM reports removed (remediation evidence)

  std::optional<UnixSeconds> last_mdm_sync;  // when the device last reported to its MDM
  std::optional<bool> mdm_compliant;         // the MDM's own compliance verdict, if it has one
  // When appban last changed the MDM object that governs this device (its AMAPI policy, its
  // Intune assignment, its Apple profile), if it ever did.
  std::optional<UnixSeconds> pushed_at;

  // Empty when the MDM can enforce appban's bans on this device; otherwise why it cannot
  // (e.g. "unsupervised iPhone: blockedAppBundleIDs needs supervision", "policy not managed by
  // appban"). Such a device is shown as cannot-enforce, never as compliant.
  std::string cannot_enforce_reason;
};

}  // namespace appban::mdm
