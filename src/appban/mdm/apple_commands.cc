#include "appban/mdm/apple_commands.h"

namespace appban::mdm {
namespace {

MdmCommand Make(std::string uuid, std::string_view request_type, std::string detail, plist::Value::Dict keys) {
  plist::Value command = plist::Value::MakeDict();
  command.Set("RequestType", plist::Value::String(std::string(request_type)));
  for (auto& [key, value] : keys) command.Set(key, std::move(value));
  plist::Value document = plist::Value::MakeDict();
  document.Set("Command", std::move(command));
  document.Set("CommandUUID", plist::Value::String(uuid));
  return MdmCommand{std::move(uuid), std::string(request_type), std::move(detail), std::move(document)};
}

template <size_t N>
plist::Value Strings(const std::string_view (&values)[N]) {
  plist::Value::Array out;
  for (std::string_view value : values) out.push_back(plist::Value::String(std::string(value)));
  return plist::Value::MakeArray(std::move(out));
}

}  // namespace

MdmCommand InstallProfileCommand(std::string uuid, std::string profile_identifier, std::string signed_profile) {
  return Make(std::move(uuid), kInstallProfile, std::move(profile_identifier),
              {{"Payload", plist::Value::Data(std::move(signed_profile))}});
}

MdmCommand RemoveProfileCommand(std::string uuid, std::string profile_identifier) {
  plist::Value identifier = plist::Value::String(profile_identifier);
  return Make(std::move(uuid), kRemoveProfile, std::move(profile_identifier), {{"Identifier", std::move(identifier)}});
}

MdmCommand RemoveApplicationCommand(std::string uuid, std::string bundle_id) {
  plist::Value identifier = plist::Value::String(bundle_id);
  return Make(std::move(uuid), kRemoveApplication, std::move(bundle_id), {{"Identifier", std::move(identifier)}});
}

MdmCommand InstalledApplicationListCommand(std::string uuid) {
  // Every app, managed or not: a banned app the user installed from the App Store counts too.
  return Make(std::move(uuid), kInstalledApplicationList, "",
              {{"ManagedAppsOnly", plist::Value::Boolean(false)}, {"Items", Strings(kInstalledApplicationItems)}});
}

MdmCommand DeviceInformationCommand(std::string uuid) {
  return Make(std::move(uuid), kDeviceInformation, "", {{"Queries", Strings(kDeviceQueries)}});
}

}  // namespace appban::mdm
