// Validation of Apple MDM command and profile plists against Apple's device-management schema
// (YAML files of https://github.com/apple/device-management, adopted in tests/specs/apple/; the
// format is described in its docs/schema.md), the way a strict server or device checks them:
//   - keys: a key the schema does not define is refused (unless the level allows ANY key);
//   - types: <string> <integer> <real> <boolean> <date> <data> <array> <dictionary> <any>, and
//     array items / dictionary members recursively through `subkeys`;
//   - presence: a `required` key that is missing is refused;
//   - values: `rangelist`, and the allowed values an array of strings lists as its item's subkeys
//     (DeviceInformation's Queries);
//   - supportedOS: for a target (iOS 17.5, supervised or not), each key present must be supported
//     — introduced on that OS and not later than its version, not removed, and not needing
//     supervision the device lacks. A key inherits its parent's (and the payload's) supportedOS,
//     overridden field by field by its own.
// Test-only. Immutable after Load; thread-safe.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "appban/common/status.h"
#include "appban/plist/plist.h"

namespace appban::testing {

struct AppleTarget {
  std::string os = "iOS";  // the supportedOS key: iOS (also iPadOS), macOS, tvOS, visionOS, watchOS
  std::string version;     // "17.5"
  bool supervised = false;
};

// One OS's support entry of supportedOS.
struct OsSupport {
  std::string introduced;  // "15.0", "n/a", or "" (inherited / unspecified)
  std::string removed;
  std::optional<bool> supervised;
};
using SupportedOs = std::map<std::string, OsSupport>;

struct SchemaKey {
  std::string key;  // "ANY": any key name
  std::string type;
  bool required = false;
  std::vector<std::string> rangelist;  // scalars as text
  SupportedOs supported;               // already merged with the parent's
  std::vector<SchemaKey> subkeys;
};

class AppleSchema {
 public:
  // Loads one YAML file (a command, a check-in or a profile payload).
  static Result<AppleSchema> Load(const std::string& path);

  const std::string& request_type() const { return request_type_; }  // commands: payload.requesttype
  const std::string& payload_type() const { return payload_type_; }  // profiles: payload.payloadtype
  const SupportedOs& supported() const { return supported_; }

  // Error messages for `dict` against payloadkeys (or responsekeys); empty when it conforms.
  // `extra` are further keys allowed at the top level (profile payloads: CommonPayloadKeys).
  std::vector<std::string> Validate(const plist::Value& dict, const AppleSchema* extra = nullptr) const;
  std::vector<std::string> ValidateResponse(const plist::Value& dict) const;
  // Keys present in `dict` (recursively) the target does not support, with why; plus the
  // payload itself when the target does not support it.
  std::vector<std::string> Unsupported(const plist::Value& dict, const AppleTarget& target,
                                       const AppleSchema* extra = nullptr) const;
  // Whether `key` (top level) is supported on the target, and why not.
  std::optional<std::string> KeyUnsupported(const std::string& key, const AppleTarget& target) const;

 private:
  std::string request_type_, payload_type_;
  SupportedOs supported_;
  std::vector<SchemaKey> payload_keys_, response_keys_;
};

// Why `support` does not cover `target` (nullopt when it does).
std::optional<std::string> NotSupported(const SupportedOs& support, const AppleTarget& target);

// Every schema of a directory tree of YAML files (tests/specs/apple/mdm), by request type
// (commands) and by payload type (profiles).
class AppleSchemas {
 public:
  static Result<AppleSchemas> Load(const std::string& mdm_directory);
  const AppleSchema* Command(const std::string& request_type) const;
  const AppleSchema* Profile(const std::string& payload_type) const;

  // A whole command document: {Command: {RequestType, …}, CommandUUID}. Errors, empty if valid.
  std::vector<std::string> ValidateCommand(const plist::Value& document) const;
  // A whole configuration profile: TopLevel keys, then each PayloadContent item against its
  // payload type's schema plus CommonPayloadKeys. Errors, empty if valid.
  std::vector<std::string> ValidateProfile(const plist::Value& profile) const;
  // Keys of the profile the target does not support.
  std::vector<std::string> UnsupportedInProfile(const plist::Value& profile, const AppleTarget& target) const;

 private:
  std::map<std::string, std::shared_ptr<AppleSchema>> commands_, profiles_;
};

}  // namespace appban::testing
