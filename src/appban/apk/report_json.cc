#include "appban/apk/report_json.h"

namespace appban::apk {
namespace {

using Json = nlohmann::ordered_json;

template <typename T>
Json OptionalJson(const std::optional<T>& value) {
  return value ? Json(*value) : Json(nullptr);
}

Json NonEmptyOrNull(const std::string& value) { return value.empty() ? Json(nullptr) : Json(value); }

Json IntentFilterJson(const IntentFilter& filter) {
  Json out;
  out["actions"] = filter.actions;
  out["categories"] = filter.categories;
  out["data"] = filter.data;
  out["priority"] = OptionalJson(filter.priority);
  out["auto_verify"] = filter.auto_verify;
  return out;
}

Json CertificateJson(const Certificate& cert) {
  Json out;
  out["sha256"] = cert.sha256;
  out["sha1"] = cert.sha1;
  out["subject"] = cert.subject;
  out["issuer"] = cert.issuer;
  out["organization"] = cert.subject_organization;
  out["country"] = cert.subject_country;
  out["serial"] = cert.serial_hex;
  out["not_before"] = cert.not_before;
  out["not_after"] = cert.not_after;
  out["key_algorithm"] = cert.key_algorithm;
  out["key_bits"] = cert.key_bits;
  out["self_signed"] = cert.self_signed;
  out["debug"] = cert.debug;
  return out;
}

}  // namespace

Json AnomaliesJson(const Anomalies& anomalies) {
  Json out = Json::array();
  for (const Anomaly& anomaly : anomalies) {
    out.push_back({{"code", anomaly.code}, {"where", anomaly.where}, {"detail", anomaly.detail}});
  }
  return out;
}

Json FileJson(const Apk& apk) {
  std::string_view rejection = apk.zip().android_rejection();
  return {{"path", apk.path()},
          {"size", apk.file_size()},
          {"sha256", apk.sha256()},
          {"zip_entries", apk.zip().entries().size()},
          // Current Android would refuse to open this container (we read it anyway): the reason.
          {"android_would_refuse", rejection.empty() ? Json(nullptr) : Json(std::string(rejection))}};
}

namespace {

Json ComponentsJson(const std::vector<Component>& components) {
  Json out = Json::array();
  for (const Component& c : components) {
    Json component;
    component["kind"] = ComponentKindName(c.kind);
    component["name"] = c.name;
    component["exported"] = c.exported;
    component["exported_reason"] = c.exported_reason;
    component["permission"] = c.permission;
    component["enabled"] = c.enabled;
    if (c.kind == ComponentKind::kProvider) component["authorities"] = c.authorities;
    Json filters = Json::array();
    for (const IntentFilter& f : c.intent_filters) filters.push_back(IntentFilterJson(f));
    component["intent_filters"] = std::move(filters);
    out.push_back(std::move(component));
  }
  return out;
}

// null when the app declares no network security config.
Json NetworkSecurityConfigJson(const Apk& apk) {
  const auto& nsc = apk.network_security_config();
  if (!nsc) return nullptr;
  Json domains = Json::array();
  for (const DomainSecurityConfig& domain : nsc->domains) {
    domains.push_back({{"domains", domain.domains},
                       {"cleartext_permitted", domain.cleartext_permitted},
                       {"trusts_user_certificates", domain.trusts_user_certificates},
                       {"pins", domain.pins}});
  }
  return {{"path", nsc->path},
          {"base_cleartext_permitted", nsc->base_cleartext_permitted},
          {"base_trusts_user_certificates", nsc->base_trusts_user_certificates},
          {"domain_configs", std::move(domains)},
          {"debug_overrides_user_certificates", nsc->debug_overrides_user_certificates}};
}

Json DexSummaryJson(const Apk& apk) {
  Json dex_files = Json::array();
  for (const DexFile& dex : apk.dex_files()) {
    dex_files.push_back({{"name", dex.name()},
                         {"version", dex.version()},
                         {"size", dex.size_bytes()},
                         {"strings", dex.string_count()},
                         {"types", dex.type_count()},
                         {"methods", dex.method_count()},
                         {"fields", dex.field_count()},
                         {"classes", dex.class_count()}});
  }
  return {{"files", std::move(dex_files)},
          {"classes", apk.total_dex_classes()},
          {"methods", apk.total_dex_methods()},
          {"strings", apk.total_dex_strings()}};
}

Json SignersJson(const SigningInfo& signing) {
  Json signers = Json::array();
  for (const Signer& signer : signing.signers) {
    Json s = CertificateJson(signer.certificate);
    s["schemes"] = signer.schemes;
    s["min_sdk"] = OptionalJson(signer.min_sdk);
    s["max_sdk"] = OptionalJson(signer.max_sdk);
    Json lineage = Json::array();
    for (const Certificate& cert : signer.lineage) lineage.push_back(CertificateJson(cert));
    s["lineage"] = std::move(lineage);
    s["signed_data_verified"] = signer.signed_data_verified;
    signers.push_back(std::move(s));
  }
  return signers;
}

Json SigningSchemesJson(const SigningInfo& signing) {
  Json out = {{"v1", signing.v1},
              {"v2", signing.v2},
              {"v3", signing.v3},
              {"v31", signing.v31},
              {"v1_only", signing.v1_only()},
              {"debug_certificate", signing.any_debug()},
              // Content digests are not yet checked: see docs/formats/inspect-json.md.
              {"verified", false}};
  Json block = Json::array();
  for (const SigningBlockEntry& entry : signing.block_entries) {
    block.push_back({{"id", entry.id}, {"size", entry.size}, {"kind", entry.kind}});
  }
  out["block_entries"] = std::move(block);
  return out;
}

}  // namespace

Json AppFactsJson(const Apk& apk) {
  const Manifest& m = apk.manifest();
  Json app;
  app["package"] = m.package;
  app["version_code"] = OptionalJson(m.version_code);
  app["version_name"] = OptionalJson(m.version_name);
  app["label"] = OptionalJson(m.label);
  app["min_sdk"] = OptionalJson(m.min_sdk);
  app["min_sdk_codename"] = NonEmptyOrNull(m.min_sdk_codename);
  app["target_sdk"] = OptionalJson(m.target_sdk);
  app["target_sdk_codename"] = NonEmptyOrNull(m.target_sdk_codename);
  app["max_sdk"] = OptionalJson(m.max_sdk);
  app["compile_sdk"] = OptionalJson(m.compile_sdk);
  app["compile_sdk_source"] = NonEmptyOrNull(m.compile_sdk_source);

  Json permissions = Json::array();
  for (const RequestedPermission& p : m.permissions) {
    permissions.push_back({{"name", p.name}, {"max_sdk", OptionalJson(p.max_sdk)}, {"sdk23_only", p.sdk23_only}});
  }
  app["permissions"] = std::move(permissions);
  Json implied = Json::array();
  for (const ImpliedPermission& p : m.implied_permissions) {
    implied.push_back({{"name", p.name},
                       {"reason", p.reason},
                       {"implied_by", NonEmptyOrNull(p.implied_by)},
                       {"max_sdk", OptionalJson(p.max_sdk)}});
  }
  app["implied_permissions"] = std::move(implied);
  Json declared = Json::array();
  for (const DeclaredPermission& p : m.declared_permissions) {
    declared.push_back({{"name", p.name}, {"protection_level", p.protection_level}});
  }
  app["declared_permissions"] = std::move(declared);

  app["components"] = ComponentsJson(m.components);

  app["flags"] = {{"debuggable", m.flags.debuggable},
                  {"allow_backup", m.flags.allow_backup},
                  {"uses_cleartext_traffic", OptionalJson(m.flags.uses_cleartext_traffic)},
                  {"network_security_config", m.flags.network_security_config},
                  {"test_only", m.flags.test_only}};
  Json query_intents = Json::array();
  for (const IntentFilter& f : m.queries.intents) query_intents.push_back(IntentFilterJson(f));
  app["queries"] = {
      {"packages", m.queries.packages}, {"intents", std::move(query_intents)}, {"providers", m.queries.providers}};
  app["network_security_config"] = NetworkSecurityConfigJson(apk);
  app["uses_features"] = m.uses_features;
  app["uses_libraries"] = m.uses_libraries;

  app["dex"] = DexSummaryJson(apk);

  app["signers"] = SignersJson(apk.signing());
  app["signing"] = SigningSchemesJson(apk.signing());

  Json abis = Json::array();
  Json libs = Json::object();
  for (const auto& [abi, files] : apk.native_libraries().by_abi) {
    abis.push_back(abi);
    libs[abi] = files;
  }
  app["native_abis"] = std::move(abis);
  app["native_libs"] = std::move(libs);
  return app;
}

Json InspectDocument(const Apk& apk) {
  Json doc;
  doc["schema"] = kInspectSchema;
  doc["file"] = FileJson(apk);
  doc["app"] = AppFactsJson(apk);
  doc["anomalies"] = AnomaliesJson(apk.anomalies());
  return doc;
}

}  // namespace appban::apk
