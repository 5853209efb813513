// The Apple MDM connector: turns a bundle's iOS bans into commands on an MDM's command queue
// (NanoMDM's enqueue API, apple_client.h) and turns what devices answer (apple_results.h) into
// MdmDevices. `appban mdm plan|apply|status` drives it through MdmConnector.
//
// Per configured device (devices_file: enrollment id and appban groups), every iOS bundle id a
// rule names (directly or through its vendor) is evaluated like an app on an agent device in those
// groups (policy::PolicyIndex::Evaluate: effective times, scopes and waivers count the same way):
//   - remove or block-install → the bundle id is in the device's restrictions profile
//     (blockedAppBundleIDs, apple_profile.h), queued with InstallProfile when the list changed,
//     or RemoveProfile when it became empty;
//   - remove → also RemoveApplication, once, unless the device's app list shows the app absent;
//     again only when the device acknowledged it and a later app list shows it (reinstalled);
//   - waived, report-only or not banned → not in the profile, no command: a waived device with
//     nothing else banned is left alone.
// With any enforcement command, and for a device that never answered, DeviceInformation (is it
// supervised, which OS) and InstalledApplicationList are queued too, unless already pending.
//
// State. DATA_DIR/mdm/apple-NAME.json (0600, replaced atomically) records, per device, the
// blocked list of the profile last queued and the commands queued, each only once the MDM said it
// is queued: nothing is half-recorded. A command whose fate is unknown (no answer after retries)
// is not recorded and is queued again by the next apply — harmless, as installing the same
// profile again replaces it and removing an absent app fails without effect. A plan right after an
// apply is empty. Results arrive separately (the webhook receiver writes
// DATA_DIR/mdm/apple-NAME-results.json); an InstallProfile the device refused is queued again.
//
// Thread-safety: one thread at a time.
#pragma once

#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/status.h"
#include "appban/common/time.h"
#include "appban/mdm/apple_client.h"
#include "appban/mdm/apple_profile.h"
#include "appban/mdm/apple_results.h"
#include "appban/mdm/config.h"
#include "appban/mdm/connector.h"
#include "appban/mdm/retry.h"
#include "appban/policy/bundle.h"
#include "appban/policy/evaluate.h"

namespace appban::mdm {

// blockedAppBundleIDs: iOS/iPadOS 15 and later, supervised (com.apple.applicationaccess.yaml).
inline constexpr std::string_view kBlockedAppsMinimumOs = "15.0";
// RemoveApplication removes unmanaged apps too on supervised devices from iOS 26 (Apple's newer
// application.remove.yaml; tests/specs/apple/SOURCE).
inline constexpr std::string_view kRemoveUnmanagedMinimumOs = "26.0";

struct AppleDeviceEntry {
  std::string id;                   // NanoMDM enrollment id (the device's UDID for a device channel)
  std::vector<std::string> groups;  // appban groups
};
// The devices file: one device per line, "ENROLLMENT-ID [group,group…]"; '#' starts a comment.
Result<std::vector<AppleDeviceEntry>> ParseDevicesFile(std::string_view text, const MdmLimits& limits = kMdmLimits);

// The iOS bundle ids the bundle's rules name, with the rules naming each; Team ID targets, which
// no MDM restriction can express, are listed as unenforceable.
struct BannedBundles {
  std::map<std::string, std::vector<std::string>, std::less<>> bundles;
  std::vector<std::pair<std::string, std::string>> unenforceable;  // rule, target
};
BannedBundles CollectBannedBundles(const policy::Bundle& bundle);

struct AppleDeviceState {
  std::optional<std::vector<std::string>> profile;           // blocked ids of appban's profile on the device
  std::string profile_command;                               // the InstallProfile/RemoveProfile that set it
  std::map<std::string, std::string, std::less<>> removals;  // bundle id → RemoveApplication uuid
  std::vector<std::string> queries;                          // DeviceInformation/InstalledApplicationList uuids
};
struct AppleState {
  std::map<std::string, AppleDeviceState, std::less<>> devices;
  int64_t last_applied_bundle = 0;
  UnixSeconds last_applied_at = 0;
};
Result<AppleState> LoadAppleState(const std::string& path);
Status SaveAppleState(const std::string& path, const AppleState& state);

// What one device needs.
struct AppleDevicePlan {
  std::string device;
  std::vector<std::string> blocked;      // the blockedAppBundleIDs it should have
  bool install_profile = false;          // queue InstallProfile with `blocked`
  bool remove_profile = false;           // queue RemoveProfile (nothing left to block)
  std::string profile_retry;             // why the profile is queued again (the device refused it)
  std::vector<std::string> remove_apps;  // queue RemoveApplication
  std::vector<std::string> forget;       // removals recorded for bundles no longer banned
  std::vector<std::string> waived;       // banned, but waived for this device
  bool query = false;                    // queue DeviceInformation + InstalledApplicationList

  bool Empty() const { return !install_profile && !remove_profile && remove_apps.empty() && forget.empty() && !query; }
};

// The pure planning step: desired state from the bundle, what was recorded, what devices answered.
AppleDevicePlan PlanAppleDevice(const policy::PolicyIndex& index, const BannedBundles& banned,
                                const AppleDeviceEntry& device, const AppleDeviceState* recorded,
                                const ResultsFile& results, UnixSeconds now);

// The MdmDevice for one configured device, from what it answered.
MdmDevice AppleMdmDevice(const std::string& connector, const AppleDeviceEntry& device, const AppleDeviceState* recorded,
                         const ResultsFile& results);

struct AppleConnectorOptions {
  std::string state_dir;  // DATA_DIR/mdm
  RetryPolicy retry;
  net::ClientOptions http;
  std::function<UnixSeconds()> now = [] { return static_cast<UnixSeconds>(std::time(nullptr)); };
  std::function<std::string()> new_uuid = RandomUuid;  // CommandUUIDs
};

class AppleConnector : public MdmConnector {
 public:
  // Reads the API key (0600), the signing identity (key 0600), the devices file and, when set, the
  // pinned CA. Makes no request yet.
  static Result<std::unique_ptr<AppleConnector>> Create(AppleConnectorConfig config, AppleConnectorOptions options);
  ~AppleConnector() override;

  MdmSource source() const override { return MdmSource::kAppleMdm; }
  std::string_view name() const override { return config_.name; }
  Result<ConnectorReport> Plan(const policy::Bundle& bundle) override;
  Result<ConnectorReport> Apply(const policy::Bundle& bundle) override;
  Result<std::vector<MdmDevice>> Inventory(const policy::Bundle& bundle) override;
  // Inventory, evaluated against the bundle, as a report for `appban mdm status`.
  Result<ConnectorReport> Survey(const policy::Bundle& bundle);

  // The bundle ids blocked for a device in `groups`, and the signed restrictions profile listing
  // them (appban mdm apple-profile).
  Result<std::vector<std::string>> BlockedFor(const policy::Bundle& bundle, const std::vector<std::string>& groups);
  Result<std::string> SignedProfile(const policy::Bundle& bundle, const std::vector<std::string>& groups);
  std::string signer() const { return identity_.subject(); }
  // The profile's (unsigned) XML plist for a blocked list.
  std::string ProfileXml(const std::vector<std::string>& blocked) const;

  const std::string& state_path() const { return state_path_; }
  const std::string& results_path() const { return results_path_; }
  const std::vector<AppleDeviceEntry>& devices() const { return devices_; }

 private:
  struct Prepared;
  AppleConnector(AppleConnectorConfig config, AppleConnectorOptions options, SigningIdentity identity);
  Result<Prepared> Prepare(const policy::Bundle& bundle);

  AppleConnectorConfig config_;
  AppleConnectorOptions options_;
  SigningIdentity identity_;
  std::vector<AppleDeviceEntry> devices_;
  std::string state_path_;
  std::string results_path_;
  std::unique_ptr<CommandQueueClient> client_;
};

}  // namespace appban::mdm
