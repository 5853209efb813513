// An emulator of an Apple MDM server with NanoMDM's command-queue API and MicroMDM-style webhook,
// plus the devices enrolled in it, for the tests: a real HTTP server on 127.0.0.1 serving
//   PUT /v1/enqueue/{id}[,{id}…][?nopush=1]   raw command plist → JSON APIResult
// with HTTP basic auth "nanomdm:<api key>" (401 otherwise). Every command is parsed as a plist and
// validated against Apple's YAML command schema (apple_schema.h): an unknown key, a wrong type,
// a missing required key or an unknown request type is refused with 400 and the reasons, as a
// strict server would; an unknown enrollment id gets a command_error (500 when no id took it).
//
// Emulated devices (supervised or not, any iOS/iPadOS version, apps managed or not) act as real
// ones when CheckIn() is called — the moment a pushed device connects: each queued command is run
// and its result plist posted as a webhook event ({"topic": "mdm.Connect", "acknowledge_event":
// {udid, status, command_uuid, raw_payload}}) to the webhook URL, like NanoMDM's -webhook-url.
//   InstallProfile: the payload must be CMS-signed (the signature is verified), hold a valid
//     profile (TopLevel + every payload's schema); the device then applies blockedAppBundleIDs
//     only when supervised and on iOS 15+ (keys it does not support are ignored, as iOS does).
//   RemoveProfile: removes the profile (and its restrictions).
//   RemoveApplication: removes a managed app; an unmanaged one only when supervised on iOS 26+;
//     otherwise Error with an ErrorChain.
//   InstalledApplicationList / DeviceInformation: answered from the device's state, the answer
//     itself validated against the command's responsekeys.
// FailNext injects 503s; a device can be told to answer garbage (corrupt_answers).
//
// Thread-safety: the public methods may be called from the test thread while the server runs.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "appban/common/status.h"
#include "apple_schema.h"

namespace appban::testing {

struct EmulatedApp {
  std::string bundle_id;
  std::string name;
  std::string version = "1.0";
  bool managed = false;  // installed by the MDM
};

struct EmulatedAppleDevice {
  std::string udid;
  std::string product_name = "iPhone15,2";  // "iPad13,4" for an iPad
  std::string os_version = "17.5";
  bool supervised = true;
  std::string device_name = "Phone";
  std::string serial_number = "F2LXXXXXXX";
  std::vector<EmulatedApp> apps;
  // State the device keeps.
  std::set<std::string> blocked;                // blockedAppBundleIDs in force
  std::map<std::string, std::string> profiles;  // identifier → PayloadUUID
  std::vector<std::string> corrupt_answers;     // request types answered with a broken plist
};

struct AppleEmulatorOptions {
  std::string spec_dir;  // tests/specs/apple/mdm
  std::string api_key;
  std::string webhook_url;  // http://127.0.0.1:PORT/path; "" = results are only kept
};

class AppleEmulator {
 public:
  static Result<std::unique_ptr<AppleEmulator>> Start(AppleEmulatorOptions options);
  ~AppleEmulator();

  std::string base_url() const;  // http://127.0.0.1:PORT
  void set_webhook_url(const std::string& url);

  void PutDevice(EmulatedAppleDevice device);
  EmulatedAppleDevice GetDevice(const std::string& udid) const;
  // The device connects: runs every queued command and posts each result to the webhook.
  // Returns how many commands ran; an error when a webhook post failed.
  Result<int> CheckIn(const std::string& udid);
  Result<int> CheckInAll();

  void FailNext(int count, int status);
  std::vector<std::string> queued_request_types(const std::string& udid) const;
  std::vector<std::string> request_log() const;  // "InstallProfile → UDID", "REFUSED …" per enqueue
  int refused() const;                           // enqueues refused as invalid
  const AppleSchemas& schemas() const { return schemas_; }

 private:
  struct Server;
  AppleEmulator(AppleEmulatorOptions options, AppleSchemas schemas);

  AppleEmulatorOptions options_;
  AppleSchemas schemas_;
  std::unique_ptr<Server> server_;
};

}  // namespace appban::testing
