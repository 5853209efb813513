#include "apple_schema.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>

namespace appban::testing {
namespace {

constexpr int kMaxDepth = 32;

std::vector<int> VersionParts(const std::string& text) {
  std::vector<int> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('.', start);
    if (end == std::string::npos) end = text.size();
    try {
      parts.push_back(std::stoi(text.substr(start, end - start)));
    } catch (...) {
      parts.push_back(0);
    }
    start = end + 1;
  }
  parts.resize(4, 0);
  return parts;
}

SupportedOs ParseSupported(const YAML::Node& node, const SupportedOs& inherited) {
  SupportedOs out = inherited;
  if (!node || !node.IsMap()) return out;
  for (const auto& os : node) {
    OsSupport& support = out[os.first.as<std::string>()];
    const YAML::Node& fields = os.second;
    if (!fields.IsMap()) continue;
    if (fields["introduced"]) support.introduced = fields["introduced"].as<std::string>();
    if (fields["removed"]) support.removed = fields["removed"].as<std::string>();
    if (fields["supervised"]) support.supervised = fields["supervised"].as<bool>();
  }
  return out;
}

std::vector<SchemaKey> ParseKeys(const YAML::Node& list, const SupportedOs& inherited, int depth) {
  std::vector<SchemaKey> keys;
  if (!list || !list.IsSequence() || depth > kMaxDepth) return keys;
  for (const YAML::Node& item : list) {
    SchemaKey key;
    key.key = item["key"].as<std::string>();
    key.type = item["type"] ? item["type"].as<std::string>() : "<any>";
    key.required = item["presence"] && item["presence"].as<std::string>() == "required";
    if (item["rangelist"]) {
      for (const YAML::Node& value : item["rangelist"]) key.rangelist.push_back(value.as<std::string>());
    }
    key.supported = ParseSupported(item["supportedOS"], inherited);
    key.subkeys = ParseKeys(item["subkeys"], key.supported, depth + 1);
    keys.push_back(std::move(key));
  }
  return keys;
}

bool TypeMatches(const std::string& type, const plist::Value& value) {
  using T = plist::Value::Type;
  if (type == "<any>") return true;
  if (type == "<string>") return value.type() == T::kString;
  if (type == "<integer>") return value.type() == T::kInteger;
  if (type == "<real>") return value.type() == T::kReal || value.type() == T::kInteger;
  if (type == "<boolean>") return value.type() == T::kBoolean;
  if (type == "<date>") return value.type() == T::kDate;
  if (type == "<data>") return value.type() == T::kData;
  if (type == "<array>") return value.type() == T::kArray;
  if (type == "<dictionary>") return value.type() == T::kDict;
  return false;
}

std::string ScalarText(const plist::Value& value) {
  if (const std::string* text = value.AsString()) return *text;
  if (auto number = value.AsInteger()) return std::to_string(*number);
  if (auto flag = value.AsBoolean()) return *flag ? "true" : "false";
  return "";
}

void ValidateValue(const SchemaKey& schema, const plist::Value& value, const std::string& path,
                   std::vector<std::string>& errors, int depth);

void ValidateDict(const std::vector<SchemaKey>& keys, const std::vector<SchemaKey>* extra, const plist::Value& dict,
                  const std::string& path, std::vector<std::string>& errors, int depth) {
  const SchemaKey* any = nullptr;
  auto find = [&](const std::string& name) -> const SchemaKey* {
    for (const SchemaKey& key : keys) {
      if (key.key == name) return &key;
      if (key.key == "ANY") any = &key;
    }
    if (extra) {
      for (const SchemaKey& key : *extra) {
        if (key.key == name) return &key;
      }
    }
    return nullptr;
  };
  for (const auto& [name, value] : *dict.AsDict()) {
    const SchemaKey* key = find(name);
    if (key == nullptr) key = any;
    if (key == nullptr) {
      errors.push_back(path + name + ": unknown key");
      continue;
    }
    ValidateValue(*key, value, path + name, errors, depth + 1);
  }
  auto check_required = [&](const std::vector<SchemaKey>& list) {
    for (const SchemaKey& key : list) {
      if (key.required && key.key != "ANY" && dict.Find(key.key) == nullptr) {
        errors.push_back(path + key.key + ": required key missing");
      }
    }
  };
  check_required(keys);
  if (extra) check_required(*extra);
}

void ValidateValue(const SchemaKey& schema, const plist::Value& value, const std::string& path,
                   std::vector<std::string>& errors, int depth) {
  if (depth > kMaxDepth) {
    errors.push_back(path + ": nested too deeply");
    return;
  }
  if (!TypeMatches(schema.type, value)) {
    errors.push_back(path + ": must be " + schema.type + ", is " + std::string(plist::TypeName(value.type())));
    return;
  }
  if (!schema.rangelist.empty()) {
    const std::string text = ScalarText(value);
    if (std::find(schema.rangelist.begin(), schema.rangelist.end(), text) == schema.rangelist.end()) {
      errors.push_back(path + ": \"" + text + "\" is not an allowed value");
    }
  }
  if (schema.type == "<dictionary>" && !schema.subkeys.empty()) {
    ValidateDict(schema.subkeys, nullptr, value, path + ".", errors, depth);
  } else if (schema.type == "<array>" && !schema.subkeys.empty()) {
    const SchemaKey& item = schema.subkeys.front();
    size_t index = 0;
    for (const plist::Value& element : *value.AsArray()) {
      const std::string at = path + "[" + std::to_string(index++) + "]";
      ValidateValue(item, element, at, errors, depth + 1);
      // An array of scalars whose item lists subkeys: those are the allowed values.
      if (item.type != "<dictionary>" && item.type != "<array>" && !item.subkeys.empty()) {
        const std::string text = ScalarText(element);
        bool known = false;
        for (const SchemaKey& allowed : item.subkeys) known = known || allowed.key == text;
        if (!known) errors.push_back(at + ": \"" + text + "\" is not an allowed value");
      }
    }
  }
}

void CollectUnsupported(const std::vector<SchemaKey>& keys, const std::vector<SchemaKey>* extra,
                        const plist::Value& dict, const AppleTarget& target, const std::string& path,
                        std::vector<std::string>& out, int depth) {
  if (!dict.is_dict() || depth > kMaxDepth) return;
  for (const auto& [name, value] : *dict.AsDict()) {
    const SchemaKey* key = nullptr;
    for (const SchemaKey& candidate : keys) {
      if (candidate.key == name || (key == nullptr && candidate.key == "ANY")) key = &candidate;
    }
    if (key == nullptr && extra) {
      for (const SchemaKey& candidate : *extra) {
        if (candidate.key == name) key = &candidate;
      }
    }
    if (key == nullptr) continue;
    if (auto why = NotSupported(key->supported, target)) out.push_back(path + name + ": " + *why);
    if (key->type == "<dictionary>")
      CollectUnsupported(key->subkeys, nullptr, value, target, path + name + ".", out, depth + 1);
  }
}

}  // namespace

std::optional<std::string> NotSupported(const SupportedOs& support, const AppleTarget& target) {
  auto it = support.find(target.os);
  if (it == support.end()) return "not supported on " + target.os;
  const OsSupport& os = it->second;
  if (os.introduced == "n/a") return "not available on " + target.os;
  if (!os.introduced.empty() && VersionParts(target.version) < VersionParts(os.introduced)) {
    return "needs " + target.os + " " + os.introduced + " or later (device has " + target.version + ")";
  }
  if (!os.removed.empty() && os.removed != "n/a" && VersionParts(target.version) >= VersionParts(os.removed)) {
    return "removed in " + target.os + " " + os.removed;
  }
  if (os.supervised.value_or(false) && !target.supervised) return "needs a supervised device";
  return std::nullopt;
}

Result<AppleSchema> AppleSchema::Load(const std::string& path) {
  try {
    YAML::Node root = YAML::LoadFile(path);
    AppleSchema schema;
    const YAML::Node payload = root["payload"];
    if (!payload) return Status::Corruption(path + ": no payload");
    if (payload["requesttype"]) schema.request_type_ = payload["requesttype"].as<std::string>();
    if (payload["payloadtype"]) schema.payload_type_ = payload["payloadtype"].as<std::string>();
    schema.supported_ = ParseSupported(payload["supportedOS"], {});
    schema.payload_keys_ = ParseKeys(root["payloadkeys"], schema.supported_, 0);
    schema.response_keys_ = ParseKeys(root["responsekeys"], schema.supported_, 0);
    return schema;
  } catch (const YAML::Exception& error) {
    return Status::Corruption(path + ": " + error.what());
  }
}

std::vector<std::string> AppleSchema::Validate(const plist::Value& dict, const AppleSchema* extra) const {
  std::vector<std::string> errors;
  if (!dict.is_dict()) return {"not a dictionary"};
  ValidateDict(payload_keys_, extra ? &extra->payload_keys_ : nullptr, dict, "", errors, 0);
  return errors;
}

std::vector<std::string> AppleSchema::ValidateResponse(const plist::Value& dict) const {
  std::vector<std::string> errors;
  if (!dict.is_dict()) return {"not a dictionary"};
  ValidateDict(response_keys_, nullptr, dict, "", errors, 0);
  return errors;
}

std::vector<std::string> AppleSchema::Unsupported(const plist::Value& dict, const AppleTarget& target,
                                                  const AppleSchema* extra) const {
  std::vector<std::string> out;
  if (auto why = NotSupported(supported_, target))
    out.push_back((payload_type_.empty() ? request_type_ : payload_type_) + ": " + *why);
  CollectUnsupported(payload_keys_, extra ? &extra->payload_keys_ : nullptr, dict, target, "", out, 0);
  return out;
}

std::optional<std::string> AppleSchema::KeyUnsupported(const std::string& key, const AppleTarget& target) const {
  for (const SchemaKey& candidate : payload_keys_) {
    if (candidate.key == key) return NotSupported(candidate.supported, target);
  }
  return "unknown key";
}

Result<AppleSchemas> AppleSchemas::Load(const std::string& mdm_directory) {
  AppleSchemas schemas;
  std::error_code error;
  for (const char* sub : {"commands", "profiles"}) {
    for (const auto& entry : std::filesystem::directory_iterator(mdm_directory + "/" + sub, error)) {
      if (entry.path().extension() != ".yaml") continue;
      APPBAN_ASSIGN_OR_RETURN(AppleSchema schema, AppleSchema::Load(entry.path().string()));
      auto shared = std::make_shared<AppleSchema>(std::move(schema));
      if (!shared->request_type().empty()) schemas.commands_[shared->request_type()] = shared;
      if (!shared->payload_type().empty()) schemas.profiles_[shared->payload_type()] = shared;
    }
  }
  if (error) return Status::NotFound(mdm_directory + ": " + error.message());
  if (schemas.commands_.empty() || !schemas.Profile("TopLevel") || !schemas.Profile("CommonPayloadKeys")) {
    return Status::NotFound(mdm_directory + ": no command or profile schemas");
  }
  return schemas;
}

const AppleSchema* AppleSchemas::Command(const std::string& request_type) const {
  auto it = commands_.find(request_type);
  return it == commands_.end() ? nullptr : it->second.get();
}

const AppleSchema* AppleSchemas::Profile(const std::string& payload_type) const {
  auto it = profiles_.find(payload_type);
  return it == profiles_.end() ? nullptr : it->second.get();
}

std::vector<std::string> AppleSchemas::ValidateCommand(const plist::Value& document) const {
  if (!document.is_dict()) return {"the command is not a dictionary"};
  std::vector<std::string> errors;
  for (const auto& [name, value] : *document.AsDict()) {
    if (name != "Command" && name != "CommandUUID") errors.push_back(name + ": unknown key");
  }
  const std::string* uuid = document.FindString("CommandUUID");
  if (uuid == nullptr || uuid->empty()) errors.push_back("CommandUUID: required string missing");
  const plist::Value* command = document.Find("Command");
  if (command == nullptr || !command->is_dict()) {
    errors.push_back("Command: required dictionary missing");
    return errors;
  }
  const std::string* request_type = command->FindString("RequestType");
  if (request_type == nullptr) {
    errors.push_back("Command.RequestType: required string missing");
    return errors;
  }
  const AppleSchema* schema = Command(*request_type);
  if (schema == nullptr) {
    errors.push_back("Command.RequestType: unknown request type \"" + *request_type + "\"");
    return errors;
  }
  plist::Value keys = plist::Value::MakeDict();
  for (const auto& [name, value] : *command->AsDict()) {
    if (name != "RequestType") keys.Set(name, value);
  }
  for (std::string& error : schema->Validate(keys)) errors.push_back("Command." + error);
  return errors;
}

std::vector<std::string> AppleSchemas::ValidateProfile(const plist::Value& profile) const {
  std::vector<std::string> errors = Profile("TopLevel")->Validate(profile);
  const plist::Value::Array* content = profile.FindArray("PayloadContent");
  if (content == nullptr) return errors;
  for (size_t i = 0; i < content->size(); ++i) {
    const plist::Value& payload = (*content)[i];
    const std::string at = "PayloadContent[" + std::to_string(i) + "].";
    const std::string* type = payload.FindString("PayloadType");
    const AppleSchema* schema = type ? Profile(*type) : nullptr;
    if (schema == nullptr) {
      errors.push_back(at + "PayloadType: unknown payload type");
      continue;
    }
    for (std::string& error : schema->Validate(payload, Profile("CommonPayloadKeys"))) errors.push_back(at + error);
  }
  return errors;
}

std::vector<std::string> AppleSchemas::UnsupportedInProfile(const plist::Value& profile,
                                                            const AppleTarget& target) const {
  std::vector<std::string> out = Profile("TopLevel")->Unsupported(profile, target);
  const plist::Value::Array* content = profile.FindArray("PayloadContent");
  if (content == nullptr) return out;
  for (const plist::Value& payload : *content) {
    const std::string* type = payload.FindString("PayloadType");
    const AppleSchema* schema = type ? Profile(*type) : nullptr;
    if (schema == nullptr) continue;
    for (std::string& why : schema->Unsupported(payload, target, Profile("CommonPayloadKeys"))) {
      out.push_back(*type + "." + why);
    }
  }
  return out;
}

}  // namespace appban::testing
