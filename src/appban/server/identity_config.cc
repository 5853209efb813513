// Reading `[[identity.oidc]]` tables (config.h, docs/server-config.md): as strict as the rest of the
// configuration — an unknown key, a wrong type or an out-of-range value names file, line and key.
#include <sys/stat.h>

#include <set>

#include "appban/common/toml.h"
#include "appban/identity/client_auth.h"
#include "appban/server/config.h"
#include "appban/store/change.h"

namespace appban::server {
namespace {

constexpr size_t kMaxUrlBytes = 2048;
constexpr size_t kMaxClaimValueBytes = 256;

// An issuer or discovery URL: https, or http on a loopback address (identity::CheckProviderUrl).
Status CheckProviderUrl(const TomlField& field, const std::string& url) {
  Status checked = identity::CheckProviderUrl(url);  // identity/client_auth.h
  return checked.ok() ? checked : field.Error(checked.message());
}

Status ParseIssuer(const toml::table& table, const std::string& source, const std::string& prefix,
                   const TomlField& where, identity::OidcIssuerConfig& out) {
  for (const TomlField& field : TomlFields(table, source, prefix)) {
    const std::string key = field.path().substr(prefix.size() + 1);
    auto text = [&](std::string& target, size_t max_bytes, bool may_be_empty) -> Status {
      APPBAN_ASSIGN_OR_RETURN(target, field.String());
      if (!may_be_empty && target.empty()) return field.Error("must not be empty");
      if (target.size() > max_bytes) return field.Error("longer than " + std::to_string(max_bytes) + " bytes");
      for (char c : target)
        if (static_cast<unsigned char>(c) < 0x20) return field.Error("contains a control character");
      return Status::Ok();
    };
    auto path = [&](std::string& target) -> Status {
      APPBAN_RETURN_IF_ERROR(text(target, ConfigLimits::kMaxPathLength, false));
      if (target.front() != '/') return field.Error("must be an absolute path");
      return Status::Ok();
    };
    auto integer = [&](int64_t& target, int64_t min, int64_t max) -> Status {
      APPBAN_ASSIGN_OR_RETURN(target, field.Integer(min, max));
      return Status::Ok();
    };
    if (key == "name") {
      APPBAN_RETURN_IF_ERROR(text(out.name, 64, false));
    } else if (key == "issuer") {
      APPBAN_RETURN_IF_ERROR(text(out.issuer, kMaxUrlBytes, false));
      APPBAN_RETURN_IF_ERROR(CheckProviderUrl(field, out.issuer));
    } else if (key == "discovery_url") {
      APPBAN_RETURN_IF_ERROR(text(out.discovery_url, kMaxUrlBytes, false));
      APPBAN_RETURN_IF_ERROR(CheckProviderUrl(field, out.discovery_url));
    } else if (key == "client_id") {
      APPBAN_RETURN_IF_ERROR(text(out.client_id, kMaxClaimValueBytes, false));
    } else if (key == "client_secret_file") {
      APPBAN_RETURN_IF_ERROR(path(out.client_secret_file));
    } else if (key == "private_key_jwt_file") {
      APPBAN_RETURN_IF_ERROR(path(out.private_key_jwt_file));
    } else if (key == "ca_file") {
      APPBAN_RETURN_IF_ERROR(path(out.ca_file));
    } else if (key == "roles_claim") {
      APPBAN_RETURN_IF_ERROR(text(out.roles_claim, kMaxClaimValueBytes, true));
    } else if (key == "admin_value") {
      APPBAN_RETURN_IF_ERROR(text(out.admin_value, kMaxClaimValueBytes, false));
    } else if (key == "analyst_value") {
      APPBAN_RETURN_IF_ERROR(text(out.analyst_value, kMaxClaimValueBytes, false));
    } else if (key == "auditor_value") {
      APPBAN_RETURN_IF_ERROR(text(out.auditor_value, kMaxClaimValueBytes, false));
    } else if (key == "name_claim") {
      APPBAN_RETURN_IF_ERROR(text(out.name_claim, kMaxClaimValueBytes, false));
    } else if (key == "clock_skew_seconds") {
      APPBAN_RETURN_IF_ERROR(integer(out.clock_skew_seconds, 0, 600));
    } else if (key == "min_refresh_seconds") {
      APPBAN_RETURN_IF_ERROR(integer(out.min_refresh_seconds, 1, 3600));
    } else if (key == "refresh_interval_seconds") {
      APPBAN_RETURN_IF_ERROR(integer(out.refresh_interval_seconds, 60, 86400));
    } else if (key == "fetch_timeout_ms") {
      APPBAN_RETURN_IF_ERROR(integer(out.fetch_timeout_ms, 100, 60000));
    } else {
      return field.Unknown();
    }
  }
  if (out.name.empty()) return where.Error("name is required");
  if (out.issuer.empty()) return where.Error("issuer is required (the exact iss of the provider's tokens)");
  if (out.client_id.empty()) return where.Error("client_id is required (the aud appban's tokens carry)");
  if (!out.client_secret_file.empty() && !out.private_key_jwt_file.empty()) {
    return where.Error("give client_secret_file or private_key_jwt_file, not both");
  }
  if (out.min_refresh_seconds > out.refresh_interval_seconds) {
    return where.Error("min_refresh_seconds is above refresh_interval_seconds");
  }
  return Status::Ok();
}

Status ParseClientCertificates(const TomlField& field, const std::string& source, ClientCertificateConfig& out) {
  APPBAN_ASSIGN_OR_RETURN(const toml::table* table, field.Table());
  for (const TomlField& inner : TomlFields(*table, source, field.path())) {
    const std::string key = inner.path().substr(field.path().size() + 1);
    if (key == "ca_file" || key == "crl_file") {
      APPBAN_ASSIGN_OR_RETURN(std::string path, inner.String());
      if (!path.starts_with('/')) return inner.Error("must be an absolute path");
      if (path.size() > ConfigLimits::kMaxPathLength) return inner.Error("is too long");
      (key == "ca_file" ? out.ca_file : out.crl_file) = std::move(path);
    } else if (key == "crl_reload_seconds") {
      APPBAN_ASSIGN_OR_RETURN(int64_t seconds, inner.Integer(1, ClientCertificateConfig::kMaxCrlReloadSeconds));
      out.crl_reload_seconds = static_cast<uint32_t>(seconds);
    } else if (key == "user_from") {
      APPBAN_ASSIGN_OR_RETURN(std::string value, inner.String());
      if (value == "san-email") {
        out.user_from = ClientCertificateConfig::UserFrom::kSanEmail;
      } else if (value == "san-upn") {
        out.user_from = ClientCertificateConfig::UserFrom::kSanUpn;
      } else if (value == "subject-dn") {
        out.user_from = ClientCertificateConfig::UserFrom::kSubjectDn;
      } else {
        return inner.Error("must be one of san-email, san-upn or subject-dn, not \"" + value + "\"");
      }
    } else {
      return inner.Unknown();
    }
  }
  if (out.ca_file.empty()) return field.Error("ca_file is required (the CAs that issue staff certificates)");
  return Status::Ok();
}

}  // namespace

Status ParseIdentitySection(const TomlField& field, const std::string& source, IdentityConfig& out) {
  APPBAN_ASSIGN_OR_RETURN(const toml::table* section, field.Table());
  for (const TomlField& inner : TomlFields(*section, source, field.path())) {
    if (inner.path() == field.path() + ".quorum") {
      APPBAN_ASSIGN_OR_RETURN(out.quorum,
                              inner.Integer(store::ChangeLimits::kMinQuorum, store::ChangeLimits::kMaxQuorum));
      continue;
    }
    if (inner.path() == field.path() + ".key_rotation_quorum") {
      APPBAN_ASSIGN_OR_RETURN(out.key_rotation_quorum,
                              inner.Integer(store::ChangeLimits::kMinQuorum, store::ChangeLimits::kMaxQuorum));
      continue;
    }
    if (inner.path() == field.path() + ".client_certificates") {
      APPBAN_RETURN_IF_ERROR(ParseClientCertificates(inner, source, out.client_certificates));
      continue;
    }
    if (inner.path() != field.path() + ".oidc") return inner.Unknown();
    const toml::array* array = inner.node().as_array();
    if (array == nullptr) return inner.Error("must be an array of tables ([[" + inner.path() + "]])");
    if (array->size() > IdentityConfig::kMaxIssuers) {
      return inner.Error("more than " + std::to_string(IdentityConfig::kMaxIssuers) + " providers",
                         StatusCode::kLimitExceeded);
    }
    std::set<std::string> names, issuers;
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::table* table = array->get(i)->as_table();
      if (table == nullptr) return inner.Error("must be an array of tables ([[" + inner.path() + "]])");
      identity::OidcIssuerConfig issuer;
      APPBAN_RETURN_IF_ERROR(ParseIssuer(*table, source, inner.path() + "[" + std::to_string(i) + "]", inner, issuer));
      if (!names.insert(issuer.name).second) return inner.Error("two providers are named " + issuer.name);
      if (!issuers.insert(issuer.issuer).second) return inner.Error("issuer " + issuer.issuer + " is listed twice");
      out.oidc.push_back(std::move(issuer));
    }
  }
  return Status::Ok();
}

Status CheckIdentityFiles(const IdentityConfig& identity) {
  for (const auto& [key, path] :
       {std::pair<const char*, const std::string&>{"ca_file", identity.client_certificates.ca_file},
        {"crl_file", identity.client_certificates.crl_file}}) {
    if (path.empty()) continue;
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) {
      return Status::InvalidArgument(std::string("identity.client_certificates.") + key + ": " + path +
                                     ": not a readable regular file");
    }
  }
  for (size_t i = 0; i < identity.oidc.size(); ++i) {
    const auto& issuer = identity.oidc[i];
    for (const auto& [key, path] :
         {std::pair<const char*, const std::string&>{"client_secret_file", issuer.client_secret_file},
          {"private_key_jwt_file", issuer.private_key_jwt_file}}) {
      if (path.empty()) continue;
      std::string where = "identity.oidc[" + std::to_string(i) + "]." + key + ": " + path;
      struct stat info {};
      if (::stat(path.c_str(), &info) != 0) return Status::InvalidArgument(where + ": cannot be read");
      if (!S_ISREG(info.st_mode)) return Status::InvalidArgument(where + ": not a regular file");
      if ((info.st_mode & 077) != 0) {
        return Status::PermissionDenied(where + ": must be mode 0600 (readable by its owner only)");
      }
    }
    // The key or secret is read now, so a key appban cannot sign with stops the start, not a sign-in.
    if (auto credentials = identity::LoadClientCredentials(issuer); !credentials.ok()) {
      return Status::InvalidArgument("identity.oidc[" + std::to_string(i) + "]: " + credentials.status().message());
    }
  }
  return Status::Ok();
}

}  // namespace appban::server
