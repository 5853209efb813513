#include "appban/mdm/config_toml.h"

#include <cctype>
#include <set>

#include "appban/mdm/amapi_client.h"
#include "appban/mdm/mdm_device.h"
#include "appban/policy/model.h"

namespace appban::mdm {
namespace {

constexpr size_t kMaxConnectors = 64;
constexpr size_t kMaxPoliciesPerConnector = 10'000;
constexpr size_t kMaxPathLength = 4096;

Status ParsePolicy(const toml::table& table, const std::string& source, const std::string& prefix,
                   const std::string& enterprise, const TomlField& where, ManagedPolicy& out) {
  bool named = false;
  for (const TomlField& field : TomlFields(table, source, prefix)) {
    const std::string key = field.path().substr(prefix.size() + 1);
    if (key == "name") {
      APPBAN_ASSIGN_OR_RETURN(std::string name, field.String());
      // A bare id is taken inside the connector's enterprise; a full name must be inside it.
      out.name = name.find('/') == std::string::npos ? enterprise + "/policies/" + name : name;
      if (Status valid = ValidatePolicyName(out.name); !valid.ok()) return field.Error(valid.message());
      if (out.name.rfind(enterprise + "/", 0) != 0) return field.Error("policy is not in " + enterprise);
      named = true;
    } else if (key == "groups") {
      APPBAN_ASSIGN_OR_RETURN(out.groups, field.Strings());
      for (const std::string& group : out.groups) {
        if (Status valid = policy::ValidateIdentifier(group, "group"); !valid.ok()) return field.Error(valid.message());
      }
    } else {
      return field.Unknown();
    }
  }
  if (!named) return where.Error("a policy needs a name");
  return Status::Ok();
}

Status ParseAmapi(const toml::table& table, const std::string& source, const std::string& prefix,
                  const TomlField& where, AmapiConnectorConfig& out) {
  const toml::node* policies = nullptr;
  std::vector<TomlField> fields = TomlFields(table, source, prefix);
  // The enterprise first: policy names are checked against it.
  for (const TomlField& field : fields) {
    if (field.path() == prefix + ".enterprise") {
      APPBAN_ASSIGN_OR_RETURN(out.enterprise, field.String());
      if (Status valid = ValidateEnterpriseName(out.enterprise); !valid.ok()) return field.Error(valid.message());
    }
  }
  if (out.enterprise.empty()) return where.Error("enterprise is required (\"enterprises/ID\")");
  for (const TomlField& field : fields) {
    const std::string key = field.path().substr(prefix.size() + 1);
    if (key == "enterprise") continue;
    if (key == "name") {
      APPBAN_ASSIGN_OR_RETURN(out.name, field.String());
      if (Status valid = policy::ValidateIdentifier(out.name, "connector name"); !valid.ok()) {
        return field.Error(valid.message());
      }
    } else if (key == "service_account_key_file" || key == "ca_file") {
      APPBAN_ASSIGN_OR_RETURN(std::string path, field.String());
      if (path.size() > kMaxPathLength) return field.Error("path too long");
      if (!path.empty() && path.front() != '/') return field.Error("must be an absolute path");
      (key == "ca_file" ? out.ca_file : out.service_account_key_file) = std::move(path);
    } else if (key == "base_url") {
      APPBAN_ASSIGN_OR_RETURN(out.base_url, field.String());
      if (Result<SplitUrl> url = ParseServiceUrl(out.base_url); !url.ok()) return field.Error(url.status().message());
    } else if (key == "policies") {
      policies = &field.node();
      const toml::array* array = policies->as_array();
      if (array == nullptr) return field.Error("must be an array of tables ([[" + field.path() + "]])");
      if (array->size() > kMaxPoliciesPerConnector) return field.Error("too many policies");
      std::set<std::string> seen;
      for (size_t i = 0; i < array->size(); ++i) {
        const toml::table* policy_table = (*array)[i].as_table();
        if (policy_table == nullptr) return field.Error("must be an array of tables ([[" + field.path() + "]])");
        ManagedPolicy policy;
        APPBAN_RETURN_IF_ERROR(ParsePolicy(*policy_table, source, field.path() + "[" + std::to_string(i) + "]",
                                           out.enterprise, field, policy));
        if (!seen.insert(policy.name).second) return field.Error(policy.name + " is listed twice");
        out.policies.push_back(std::move(policy));
      }
    } else {
      return field.Unknown();
    }
  }
  if (out.name.empty()) return where.Error("name is required");
  if (out.service_account_key_file.empty()) {
    return where.Error("service_account_key_file is required (a path; credentials are never inline)");
  }
  if (out.policies.empty()) return where.Error("no [[" + prefix.substr(0, prefix.find('[')) + ".policies]] to manage");
  return Status::Ok();
}

// Reverse-DNS: letters, digits, '-' and '_' in dot-separated labels ("gov.example.appban.restrictions").
Status ValidateReverseDns(std::string_view text) {
  if (text.empty() || text.size() > 200) return Status::InvalidArgument("must be 1 to 200 characters");
  bool label_empty = true;
  for (char c : text) {
    if (c == '.') {
      if (label_empty) return Status::InvalidArgument("\"" + std::string(text) + "\" has an empty label");
      label_empty = true;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
      label_empty = false;
    } else {
      return Status::InvalidArgument("\"" + std::string(text) + "\" is not a reverse-DNS identifier");
    }
  }
  if (label_empty) return Status::InvalidArgument("\"" + std::string(text) + "\" ends with '.'");
  return Status::Ok();
}

Status ParseApple(const toml::table& table, const std::string& source, const std::string& prefix,
                  const TomlField& where, AppleConnectorConfig& out) {
  for (const TomlField& field : TomlFields(table, source, prefix)) {
    const std::string key = field.path().substr(prefix.size() + 1);
    std::string* path = key == "api_key_file"               ? &out.api_key_file
                        : key == "devices_file"             ? &out.devices_file
                        : key == "signing_certificate_file" ? &out.signing_certificate_file
                        : key == "signing_key_file"         ? &out.signing_key_file
                        : key == "ca_file"                  ? &out.ca_file
                                                            : nullptr;
    if (path != nullptr) {
      APPBAN_ASSIGN_OR_RETURN(*path, field.String());
      if (path->size() > kMaxPathLength) return field.Error("path too long");
      if (!path->empty() && path->front() != '/') return field.Error("must be an absolute path");
    } else if (key == "name") {
      APPBAN_ASSIGN_OR_RETURN(out.name, field.String());
      if (Status valid = policy::ValidateIdentifier(out.name, "connector name"); !valid.ok()) {
        return field.Error(valid.message());
      }
    } else if (key == "server_url") {
      APPBAN_ASSIGN_OR_RETURN(out.server_url, field.String());
      if (Result<SplitUrl> url = ParseServiceUrl(out.server_url); !url.ok()) return field.Error(url.status().message());
    } else if (key == "profile_identifier") {
      APPBAN_ASSIGN_OR_RETURN(out.profile_identifier, field.String());
      if (Status valid = ValidateReverseDns(out.profile_identifier); !valid.ok()) return field.Error(valid.message());
    } else if (key == "organization") {
      APPBAN_ASSIGN_OR_RETURN(out.organization, field.String());
      if (out.organization.size() > 200) return field.Error("longer than 200 characters");
    } else {
      return field.Unknown();
    }
  }
  if (out.name.empty()) return where.Error("name is required");
  if (out.server_url.empty()) return where.Error("server_url is required");
  if (out.api_key_file.empty()) return where.Error("api_key_file is required (a path; credentials are never inline)");
  if (out.devices_file.empty()) return where.Error("devices_file is required");
  if (out.signing_certificate_file.empty() || out.signing_key_file.empty()) {
    return where.Error("signing_certificate_file and signing_key_file are required (profiles are signed)");
  }
  return Status::Ok();
}

// Entra object ids and tenant ids: GUIDs; a tenant may also be named by a domain.
bool IsGuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-' : !std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

Status ValidateTenant(std::string_view tenant) {
  if (IsGuid(tenant)) return Status::Ok();
  if (tenant.empty() || tenant.size() > 253 || tenant.find('.') == std::string_view::npos) {
    return Status::InvalidArgument("tenant_id must be a GUID or a domain such as contoso.onmicrosoft.com");
  }
  for (char c : tenant) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') {
      return Status::InvalidArgument("tenant_id must be a GUID or a domain such as contoso.onmicrosoft.com");
    }
  }
  return Status::Ok();
}

// Intune object ids (policies, configurations) go into URL paths: GUIDs in practice; we accept the
// id characters only.
Status ValidateIntuneId(std::string_view id, std::string_view what) {
  if (id.empty() || id.size() > 128) return Status::InvalidArgument(std::string(what) + " is empty or too long");
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      return Status::InvalidArgument(std::string(what) + " may hold only letters, digits, '-' and '_'");
    }
  }
  return Status::Ok();
}

Status ParseGroups(const TomlField& field, std::vector<std::string>& out) {
  APPBAN_ASSIGN_OR_RETURN(out, field.Strings());
  for (const std::string& group : out) {
    if (Status valid = policy::ValidateIdentifier(group, "group"); !valid.ok()) return field.Error(valid.message());
  }
  return Status::Ok();
}

Status ParseIntuneTarget(const toml::table& table, const std::string& source, const std::string& prefix,
                         const TomlField& where, IntuneTarget& out) {
  for (const TomlField& field : TomlFields(table, source, prefix)) {
    const std::string key = field.path().substr(prefix.size() + 1);
    if (key == "entra_group_id") {
      APPBAN_ASSIGN_OR_RETURN(out.entra_group_id, field.String());
      if (!IsGuid(out.entra_group_id)) return field.Error("must be the group's object id (a GUID)");
    } else if (key == "groups") {
      APPBAN_RETURN_IF_ERROR(ParseGroups(field, out.groups));
    } else if (key == "ios_compliance_policy_id" || key == "ios_device_configuration_id") {
      std::string& value =
          key == "ios_compliance_policy_id" ? out.ios_compliance_policy_id : out.ios_device_configuration_id;
      APPBAN_ASSIGN_OR_RETURN(value, field.String());
      if (Status valid = ValidateIntuneId(value, key); !valid.ok()) return field.Error(valid.message());
    } else {
      return field.Unknown();
    }
  }
  if (out.entra_group_id.empty()) return where.Error("a target needs an entra_group_id");
  return Status::Ok();
}

Status ParseIntune(const toml::table& table, const std::string& source, const std::string& prefix,
                   const TomlField& where, IntuneConnectorConfig& out) {
  for (const TomlField& field : TomlFields(table, source, prefix)) {
    const std::string key = field.path().substr(prefix.size() + 1);
    if (key == "name") {
      APPBAN_ASSIGN_OR_RETURN(out.name, field.String());
      if (Status valid = policy::ValidateIdentifier(out.name, "connector name"); !valid.ok()) {
        return field.Error(valid.message());
      }
    } else if (key == "tenant_id") {
      APPBAN_ASSIGN_OR_RETURN(out.tenant_id, field.String());
      if (Status valid = ValidateTenant(out.tenant_id); !valid.ok()) return field.Error(valid.message());
    } else if (key == "client_id") {
      APPBAN_ASSIGN_OR_RETURN(out.client_id, field.String());
      if (!IsGuid(out.client_id)) return field.Error("must be the app registration's application id (a GUID)");
    } else if (key == "client_secret_file" || key == "certificate_file" || key == "private_key_file" ||
               key == "ca_file") {
      APPBAN_ASSIGN_OR_RETURN(std::string path, field.String());
      if (path.size() > kMaxPathLength) return field.Error("path too long");
      if (!path.empty() && path.front() != '/') return field.Error("must be an absolute path");
      (key == "client_secret_file" ? out.client_secret_file
       : key == "certificate_file" ? out.certificate_file
       : key == "private_key_file" ? out.private_key_file
                                   : out.ca_file) = std::move(path);
    } else if (key == "graph_base_url" || key == "login_base_url") {
      std::string& url = key == "graph_base_url" ? out.graph_base_url : out.login_base_url;
      APPBAN_ASSIGN_OR_RETURN(url, field.String());
      if (Result<SplitUrl> parsed = ParseServiceUrl(url); !parsed.ok()) return field.Error(parsed.status().message());
      while (!url.empty() && url.back() == '/') url.pop_back();
    } else if (key == "device_groups") {
      APPBAN_RETURN_IF_ERROR(ParseGroups(field, out.device_groups));
    } else if (key == "targets") {
      const toml::array* array = field.node().as_array();
      if (array == nullptr) return field.Error("must be an array of tables ([[" + field.path() + "]])");
      if (array->size() > kMaxPoliciesPerConnector) return field.Error("too many targets");
      std::set<std::string> seen;
      for (size_t i = 0; i < array->size(); ++i) {
        const toml::table* target_table = (*array)[i].as_table();
        if (target_table == nullptr) return field.Error("must be an array of tables ([[" + field.path() + "]])");
        IntuneTarget target;
        APPBAN_RETURN_IF_ERROR(
            ParseIntuneTarget(*target_table, source, field.path() + "[" + std::to_string(i) + "]", field, target));
        if (!seen.insert(target.entra_group_id).second) return field.Error(target.entra_group_id + " is listed twice");
        out.targets.push_back(std::move(target));
      }
    } else {
      return field.Unknown();
    }
  }
  if (out.name.empty()) return where.Error("name is required");
  if (out.tenant_id.empty()) return where.Error("tenant_id is required");
  if (out.client_id.empty()) return where.Error("client_id is required");
  const bool secret = !out.client_secret_file.empty();
  const bool certificate = !out.certificate_file.empty() || !out.private_key_file.empty();
  if (secret == certificate) {
    return where.Error(
        "set either client_secret_file or certificate_file + private_key_file (paths; credentials are never "
        "inline)");
  }
  if (certificate && (out.certificate_file.empty() || out.private_key_file.empty())) {
    return where.Error("certificate_file and private_key_file go together");
  }
  if (out.targets.empty())
    return where.Error("no [[" + prefix.substr(0, prefix.find('[')) + ".targets]] to enforce on");
  return Status::Ok();
}

// Runs `parse` on each table of the array of tables `inner` ([[mdm.KIND]]), refusing duplicate names.
template <typename Config, typename Parse>
Status ParseConnectors(const TomlField& inner, const std::string& source, std::vector<Config>& out, Parse parse) {
  const toml::array* array = inner.node().as_array();
  if (array == nullptr) return inner.Error("must be an array of tables ([[" + inner.path() + "]])");
  if (array->size() > kMaxConnectors) return inner.Error("too many connectors");
  std::set<std::string> names;
  for (size_t i = 0; i < array->size(); ++i) {
    const toml::table* table = (*array)[i].as_table();
    if (table == nullptr) return inner.Error("must be an array of tables ([[" + inner.path() + "]])");
    Config connector;
    APPBAN_RETURN_IF_ERROR(parse(*table, source, inner.path() + "[" + std::to_string(i) + "]", inner, connector));
    if (!names.insert(connector.name).second) return inner.Error("two connectors are named " + connector.name);
    out.push_back(std::move(connector));
  }
  return Status::Ok();
}

}  // namespace

Status ParseMdmSection(const TomlField& field, const std::string& source, MdmConfig& out) {
  APPBAN_ASSIGN_OR_RETURN(const toml::table* section, field.Table());
  for (const TomlField& inner : TomlFields(*section, source, field.path())) {
    if (inner.path() == field.path() + ".sync") {
      APPBAN_ASSIGN_OR_RETURN(const toml::table* sync, inner.Table());
      for (const TomlField& key : TomlFields(*sync, source, inner.path())) {
        const std::string name = key.path().substr(inner.path().size() + 1);
        if (name == "interval_seconds") {
          APPBAN_ASSIGN_OR_RETURN(out.sync.interval_seconds, key.Integer(10, 86'400));
        } else if (name == "request_attempts") {
          APPBAN_ASSIGN_OR_RETURN(out.sync.request_attempts, key.Integer(1, 10));
        } else if (name == "max_backoff_seconds") {
          APPBAN_ASSIGN_OR_RETURN(out.sync.max_backoff_seconds, key.Integer(1, 86'400));
        } else if (name == "enabled") {
          APPBAN_ASSIGN_OR_RETURN(out.sync.enabled, key.Bool());
        } else {
          return key.Unknown();
        }
      }
    } else if (inner.path() == field.path() + ".amapi") {
      APPBAN_RETURN_IF_ERROR(ParseConnectors(inner, source, out.amapi, ParseAmapi));
    } else if (inner.path() == field.path() + ".intune") {
      APPBAN_RETURN_IF_ERROR(ParseConnectors(inner, source, out.intune, ParseIntune));
    } else if (inner.path() == field.path() + ".apple") {
      APPBAN_RETURN_IF_ERROR(ParseConnectors(inner, source, out.apple, ParseApple));
    } else {
      return inner.Unknown();
    }
  }
  return Status::Ok();
}

std::vector<MdmConfig::Named> MdmConfig::Connectors() const {
  std::vector<Named> named;
  for (const auto& connector : amapi) named.push_back({connector.name, std::string(MdmSourceName(MdmSource::kAmapi))});
  for (const auto& connector : intune) {
    named.push_back({connector.name, std::string(MdmSourceName(MdmSource::kIntune))});
  }
  for (const auto& connector : apple) {
    named.push_back({connector.name, std::string(MdmSourceName(MdmSource::kAppleMdm))});
  }
  return named;
}

std::vector<std::string> KnownMdmKeys() {
  return {"mdm.amapi.name",
          "mdm.amapi.enterprise",
          "mdm.amapi.service_account_key_file",
          "mdm.amapi.base_url",
          "mdm.amapi.ca_file",
          "mdm.amapi.policies.name",
          "mdm.amapi.policies.groups",
          "mdm.intune.name",
          "mdm.intune.tenant_id",
          "mdm.intune.client_id",
          "mdm.intune.client_secret_file",
          "mdm.intune.certificate_file",
          "mdm.intune.private_key_file",
          "mdm.intune.graph_base_url",
          "mdm.intune.login_base_url",
          "mdm.intune.ca_file",
          "mdm.intune.device_groups",
          "mdm.intune.targets.entra_group_id",
          "mdm.intune.targets.groups",
          "mdm.intune.targets.ios_compliance_policy_id",
          "mdm.intune.targets.ios_device_configuration_id",
          "mdm.apple.name",
          "mdm.apple.server_url",
          "mdm.apple.api_key_file",
          "mdm.apple.devices_file",
          "mdm.apple.signing_certificate_file",
          "mdm.apple.signing_key_file",
          "mdm.apple.profile_identifier",
          "mdm.apple.organization",
          "mdm.apple.ca_file",
          "mdm.sync.enabled",
          "mdm.sync.interval_seconds",
          "mdm.sync.request_attempts",
          "mdm.sync.max_backoff_seconds"};
}

}  // namespace appban::mdm
