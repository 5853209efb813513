#include "appban/ios/report_json.h"

#include <cmath>

#include "appban/common/crypto.h"
#include "appban/common/text.h"
#include "appban/common/time.h"

namespace appban::ios {

using Json = nlohmann::ordered_json;

namespace {

// Strings from the app are made valid UTF-8 so the document always serialises.
std::string Safe(const std::string& text) { return SanitizeUtf8(text); }
Json OrNull(const std::string& text) { return text.empty() ? Json(nullptr) : Json(Safe(text)); }
Json Strings(const std::vector<std::string>& items) {
  Json out = Json::array();
  for (const std::string& item : items) out.push_back(Safe(item));
  return out;
}

Json CertificateJson(const SignerCertificate& c) {
  return Json{{"subject", Safe(c.subject)},
              {"issuer", Safe(c.issuer)},
              {"common_name", OrNull(c.common_name)},
              {"organization", OrNull(c.organization)},
              {"organizational_unit", OrNull(c.organizational_unit)},
              {"sha256", c.sha256},
              {"not_before", c.not_before},
              {"not_after", c.not_after}};
}

Json SignatureJson(const Bundle& bundle) {
  if (!bundle.signature) return nullptr;
  const CodeSignature& s = *bundle.signature;
  Json directories = Json::array();
  for (const CodeDirectory& cd : s.code_directories) {
    Json pages = Json::array();
    for (uint32_t page : cd.mismatched_pages) pages.push_back(page);
    directories.push_back(Json{{"slot", cd.slot == 0 ? "primary" : "alternate " + std::to_string(cd.slot - 0x1000)},
                               {"version", HexNumber(cd.version)},
                               {"hash_type", cd.hash_type},
                               {"cdhash", cd.cdhash},
                               {"identifier", Safe(cd.identifier)},
                               {"team_id", OrNull(cd.team_id)},
                               {"flags", Strings(cd.flag_names)},
                               {"page_size", cd.page_size},
                               {"code_limit", cd.code_limit},
                               {"pages_checked", cd.pages_checked},
                               {"pages_match", cd.pages_match()},
                               {"mismatched_pages", pages}});
  }
  Json certificates = Json::array();
  for (const auto& c : s.certificates) certificates.push_back(CertificateJson(c));
  return Json{
      {"kind", s.has_cms ? "certificate" : "adhoc"},
      {"team_id", OrNull(s.team_id)},
      {"organization", OrNull(s.organization)},
      {"certificate_kind", OrNull(s.certificate_kind)},
      {"code_directories", directories},
      {"cms", s.has_cms ? Json{{"verifies_over_code_directory", s.cms_verifies},
                               {"error", OrNull(s.cms_error)},
                               {"chain_verified", s.chain_verified},
                               {"chain_anchor", OrNull(s.chain_anchor)},
                               {"chain_checked_at",
                                s.chain_checked ? Json(FormatTimestamp(static_cast<UnixSeconds>(s.chain_checked_at)))
                                                : Json(nullptr)},
                               {"chain_note", s.chain_note}}
                        : Json(nullptr)},
      {"certificates", certificates},
      {"entitlements", s.entitlements ? PlistJson(*s.entitlements) : Json(nullptr)},
      {"entitlements_source", OrNull(s.entitlements_source)},
      {"has_der_entitlements", s.has_der_entitlements},
      {"has_requirements", s.has_requirements}};
}

Json SliceJson(const MachOSlice& slice) {
  Json libraries = Json::array();
  for (const auto& library : slice.libraries)
    libraries.push_back(Json{{"path", Safe(library.path)}, {"kind", library.kind}});
  Json encryption = nullptr;
  if (slice.has_encryption_info) {
    encryption = Json{{"encrypted", slice.encrypted()},
                      {"cryptid", slice.crypt_id},
                      {"offset", slice.crypt_offset},
                      {"size", slice.crypt_size},
                      {"unreadable", Strings(slice.unreadable_sections)}};
  }
  return Json{{"arch", slice.arch},
              {"offset", slice.offset},
              {"size", slice.size},
              {"file_type", slice.file_type},
              {"archive_members", slice.archive_members},
              {"pie", slice.pie},
              {"platform", OrNull(slice.platform)},
              {"minimum_os", OrNull(slice.minimum_os)},
              {"sdk", OrNull(slice.sdk)},
              {"uuid", OrNull(slice.uuid)},
              {"install_name", OrNull(slice.install_name)},
              {"load_commands", Strings(slice.load_commands)},
              {"libraries", libraries},
              {"rpaths", Strings(slice.rpaths)},
              {"encryption", encryption},
              {"code_signature", slice.code_signature_offset.has_value()},
              {"imported_symbols", Strings(slice.imported_symbols)},
              {"imported_symbol_count", slice.imported_symbol_count},
              {"objc_classes", Strings(slice.objc_classes)},
              {"objc_selector_count", slice.objc_selectors.size()},
              {"swift_modules", Strings(slice.swift_modules)},
              {"string_count", slice.strings.size()}};
}

Json InfoJson(const InfoPlist& info) {
  Json usage = Json::object();
  for (const auto& [key, text] : info.usage_descriptions) usage[Safe(key)] = Safe(text);
  Json ats = nullptr;
  if (info.ats) {
    Json domains = Json::array();
    for (const auto& d : info.ats->exception_domains) {
      domains.push_back(Json{{"domain", Safe(d.domain)},
                             {"allows_insecure_http", d.allows_insecure_http},
                             {"includes_subdomains", d.includes_subdomains},
                             {"minimum_tls", OrNull(d.minimum_tls)}});
    }
    ats = Json{{"arbitrary_loads", info.ats->arbitrary_loads},
               {"arbitrary_loads_in_web_content", info.ats->arbitrary_loads_in_web_content},
               {"arbitrary_loads_for_media", info.ats->arbitrary_loads_for_media},
               {"local_networking", info.ats->local_networking},
               {"exception_domains", domains}};
  }
  return Json{{"format", info.format},
              {"bundle_id", OrNull(info.bundle_id)},
              {"name", OrNull(info.name)},
              {"display_name", OrNull(info.display_name)},
              {"short_version", OrNull(info.short_version)},
              {"version", OrNull(info.version)},
              {"executable", OrNull(info.executable)},
              {"package_type", OrNull(info.package_type)},
              {"minimum_os", OrNull(info.minimum_os)},
              {"device_families", Strings(info.device_families)},
              {"supported_platforms", Strings(info.supported_platforms)},
              {"url_schemes", Strings(info.url_schemes)},
              {"queried_schemes", Strings(info.queried_schemes)},
              {"background_modes", Strings(info.background_modes)},
              {"usage_descriptions", usage},
              {"app_transport_security", ats},
              {"extension_point", OrNull(info.extension_point)}};
}

Json ProfileJson(const ProvisioningProfile& p) {
  Json signers = Json::array();
  for (const auto& c : p.signers) signers.push_back(CertificateJson(c));
  return Json{{"name", OrNull(p.name)},
              {"uuid", OrNull(p.uuid)},
              {"type", p.type},
              {"team_id", OrNull(p.team_id)},
              {"team_name", OrNull(p.team_name)},
              {"app_id_name", OrNull(p.app_id_name)},
              {"application_identifier", OrNull(p.application_identifier)},
              {"creation_date", OrNull(p.creation_date)},
              {"expiration_date", OrNull(p.expiration_date)},
              {"expired", p.expired},
              {"provisioned_devices", p.provisioned_devices ? Json(*p.provisioned_devices) : Json(nullptr)},
              {"provisions_all_devices", p.provisions_all_devices},
              {"get_task_allow", p.get_task_allow},
              {"platforms", Strings(p.platforms)},
              {"developer_certificates", Strings(p.developer_certificates)},
              {"entitlements", p.entitlements ? PlistJson(*p.entitlements) : Json(nullptr)},
              {"signature_verifies", p.signature_verifies},
              {"signers", signers},
              {"signer", OrNull(p.signer_name)},
              {"signed_by_apple", p.signed_by_apple},
              {"chain_verified", p.chain.verified},
              {"chain_anchor", OrNull(p.chain.anchor)},
              {"chain_checked_at",
               p.chain.checked ? Json(FormatTimestamp(static_cast<UnixSeconds>(p.chain.checked_at))) : Json(nullptr)},
              {"chain_note", p.chain.note}};
}

Json PrivacyJson(const PrivacyManifest& m) {
  Json collected = Json::array();
  for (const auto& c : m.collected_data) {
    collected.push_back(Json{
        {"type", Safe(c.type)}, {"linked", c.linked}, {"tracking", c.tracking}, {"purposes", Strings(c.purposes)}});
  }
  Json apis = Json::array();
  for (const auto& a : m.accessed_apis)
    apis.push_back(Json{{"category", Safe(a.category)}, {"reasons", Strings(a.reasons)}});
  return Json{{"path", Safe(m.path)},
              {"tracking", m.tracking ? Json(*m.tracking) : Json(nullptr)},
              {"tracking_domains", Strings(m.tracking_domains)},
              {"collected_data", collected},
              {"accessed_apis", apis}};
}

Json BundleJson(const Bundle& b) {
  Json slices = Json::array();
  if (b.macho) {
    for (const auto& slice : b.macho->slices) slices.push_back(SliceJson(slice));
  }
  return Json{{"kind", b.kind},
              {"path", Safe(b.path)},
              {"info", b.info ? InfoJson(*b.info) : Json(nullptr)},
              {"executable", OrNull(b.executable_path)},
              {"executable_error", OrNull(b.macho_error)},
              {"universal", b.macho ? Json(b.macho->fat) : Json(nullptr)},
              {"slices", slices},
              {"signature", SignatureJson(b)},
              {"signature_detached", b.signature_detached},
              {"signature_error", OrNull(b.signature_error)},
              {"provisioning_profile", b.profile ? ProfileJson(*b.profile) : Json(nullptr)},
              {"privacy_manifest", b.privacy_manifest ? PrivacyJson(*b.privacy_manifest) : Json(nullptr)}};
}

}  // namespace

Json PlistJson(const plist::Value& value) {
  switch (value.type()) {
    case plist::Value::Type::kString:
      return Safe(*value.AsString());
    case plist::Value::Type::kInteger:
      return *value.AsInteger();
    case plist::Value::Type::kReal: {
      double number = *value.AsReal();
      return std::isfinite(number) ? Json(number) : Json(nullptr);
    }
    case plist::Value::Type::kBoolean:
      return *value.AsBoolean();
    case plist::Value::Type::kDate:
      return FormatTimestamp(static_cast<UnixSeconds>(*value.AsDate()));
    case plist::Value::Type::kData:
      return Json{{"data_sha256", Sha256Hex(AsBytes(*value.AsData()))}, {"size", value.AsData()->size()}};
    case plist::Value::Type::kUid:
      return Json{{"uid", *value.AsUid()}};
    case plist::Value::Type::kArray: {
      Json out = Json::array();
      for (const auto& item : *value.AsArray()) out.push_back(PlistJson(item));
      return out;
    }
    case plist::Value::Type::kDict: {
      Json out = Json::object();
      for (const auto& [key, item] : *value.AsDict()) out[Safe(key)] = PlistJson(item);
      return out;
    }
  }
  return nullptr;
}

Json FileJson(const IosApp& app) {
  return Json{{"path", Safe(app.path())},
              {"kind", app.input_kind()},
              {"size", app.file_size()},
              {"sha256", OrNull(app.sha256())},
              {"files", app.file_count()}};
}

Json AppJson(const IosApp& app) {
  const Bundle& main = app.main();
  Json out;
  out["platform"] = "ios";
  // The identifier rules target ("package" for the assessment's shared summary lines).
  std::string id = main.info ? main.info->bundle_id : "";
  if (id.empty() && main.signature && !main.signature->code_directories.empty()) {
    id = main.signature->code_directories.front().identifier;
  }
  out["bundle_id"] = OrNull(id);
  out["package"] = Safe(id);
  out["team_id"] = main.signature ? OrNull(main.signature->team_id) : Json(nullptr);
  Json bundles = Json::array();
  for (const Bundle& bundle : app.bundles()) bundles.push_back(BundleJson(bundle));
  out["bundles"] = bundles;
  return out;
}

Json AnomaliesJson(const IosApp& app) {
  Json out = Json::array();
  for (const auto& a : app.anomalies()) {
    out.push_back(Json{{"code", a.code}, {"where", Safe(a.where)}, {"detail", Safe(a.detail)}});
  }
  return out;
}

Json InspectDocument(const IosApp& app) {
  return Json{{"schema", kInspectIosSchema},
              {"platform", "ios"},
              {"file", FileJson(app)},
              {"app", AppJson(app)},
              {"anomalies", AnomaliesJson(app)}};
}

}  // namespace appban::ios
