// The Apple MDM commands the connector queues, as the command plists an MDM's queue takes
// (NanoMDM's PUT /v1/enqueue/{id} body): {CommandUUID, Command: {RequestType, …keys}}. Each
// command's keys are those of Apple's schema (tests/specs/apple/mdm/commands/*.yaml), which the
// tests and the emulator validate every generated command against. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "appban/plist/plist.h"

namespace appban::mdm {

// The request types appban sends.
inline constexpr std::string_view kInstallProfile = "InstallProfile";
inline constexpr std::string_view kRemoveProfile = "RemoveProfile";
inline constexpr std::string_view kRemoveApplication = "RemoveApplication";
inline constexpr std::string_view kInstalledApplicationList = "InstalledApplicationList";
inline constexpr std::string_view kDeviceInformation = "DeviceInformation";

// The DeviceInformation queries appban needs: whether the device is supervised and its OS.
inline constexpr std::string_view kDeviceQueries[] = {"IsSupervised", "OSVersion",    "ProductName",
                                                      "Model",        "SerialNumber", "DeviceName"};
// The InstalledApplicationList keys appban reads (Items; the device computes only these).
inline constexpr std::string_view kInstalledApplicationItems[] = {"Identifier", "Name", "ShortVersion", "Version"};

struct MdmCommand {
  std::string uuid;          // CommandUUID
  std::string request_type;  // "RemoveApplication", …
  std::string detail;        // the bundle id or profile identifier it concerns ("" for queries)
  plist::Value plist;        // the whole command document

  std::string Xml() const { return plist::WriteXml(plist); }
};

// InstallProfile with `signed_profile` (the CMS DER of a signed profile) as Payload.
MdmCommand InstallProfileCommand(std::string uuid, std::string profile_identifier, std::string signed_profile);
MdmCommand RemoveProfileCommand(std::string uuid, std::string profile_identifier);
MdmCommand RemoveApplicationCommand(std::string uuid, std::string bundle_id);
MdmCommand InstalledApplicationListCommand(std::string uuid);
MdmCommand DeviceInformationCommand(std::string uuid);

}  // namespace appban::mdm
