#include "appban/ios/app.h"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <system_error>

#include "appban/apk/zip.h"
#include "appban/common/crypto.h"
#include "appban/common/file.h"
#include "appban/common/time.h"

namespace appban::ios {

namespace fs = std::filesystem;

InfoPlist ReadInfoPlist(const plist::Value& root, std::string format) {
  InfoPlist info;
  info.format = std::move(format);
  auto text = [&](std::string_view key) {
    const std::string* value = root.FindString(key);
    return value ? *value : std::string();
  };
  info.bundle_id = text("CFBundleIdentifier");
  info.name = text("CFBundleName");
  info.display_name = text("CFBundleDisplayName");
  info.short_version = text("CFBundleShortVersionString");
  info.version = text("CFBundleVersion");
  info.executable = text("CFBundleExecutable");
  info.package_type = text("CFBundlePackageType");
  info.minimum_os = text("MinimumOSVersion");
  if (info.minimum_os.empty()) info.minimum_os = text("LSMinimumSystemVersion");
  if (const auto* families = root.FindArray("UIDeviceFamily")) {
    for (const plist::Value& family : *families) {
      std::optional<int64_t> number = family.AsInteger();
      if (!number && family.AsString()) number = std::atoll(family.AsString()->c_str());
      if (!number) continue;
      switch (*number) {
        case 1:
          info.device_families.push_back("iphone");
          break;
        case 2:
          info.device_families.push_back("ipad");
          break;
        case 3:
          info.device_families.push_back("tv");
          break;
        case 4:
          info.device_families.push_back("watch");
          break;
        case 6:
          info.device_families.push_back("mac-catalyst");
          break;
        case 7:
          info.device_families.push_back("vision");
          break;
        default:
          info.device_families.push_back("family " + std::to_string(*number));
      }
    }
  }
  if (const auto* types = root.FindArray("CFBundleURLTypes")) {
    for (const plist::Value& type : *types) {
      for (const std::string& scheme : type.FindStrings("CFBundleURLSchemes")) info.url_schemes.push_back(scheme);
    }
  }
  info.queried_schemes = root.FindStrings("LSApplicationQueriesSchemes");
  info.background_modes = root.FindStrings("UIBackgroundModes");
  info.supported_platforms = root.FindStrings("CFBundleSupportedPlatforms");
  if (const auto* dict = root.AsDict()) {
    for (const auto& [key, value] : *dict) {
      if (key.size() > 18 && key.starts_with("NS") && key.ends_with("UsageDescription")) {
        info.usage_descriptions.emplace_back(key, value.AsString() ? *value.AsString() : std::string());
      }
    }
  }
  if (const plist::Value* ats = root.Find("NSAppTransportSecurity"); ats && ats->is_dict()) {
    AppTransportSecurity out;
    out.arbitrary_loads = ats->FindBoolean("NSAllowsArbitraryLoads").value_or(false);
    out.arbitrary_loads_in_web_content = ats->FindBoolean("NSAllowsArbitraryLoadsInWebContent").value_or(false);
    out.arbitrary_loads_for_media = ats->FindBoolean("NSAllowsArbitraryLoadsForMedia").value_or(false);
    out.local_networking = ats->FindBoolean("NSAllowsLocalNetworking").value_or(false);
    if (const auto* domains = ats->FindDict("NSExceptionDomains")) {
      for (const auto& [domain, settings] : *domains) {
        AtsExceptionDomain entry;
        entry.domain = domain;
        entry.allows_insecure_http =
            settings.FindBoolean("NSExceptionAllowsInsecureHTTPLoads").value_or(false) ||
            settings.FindBoolean("NSThirdPartyExceptionAllowsInsecureHTTPLoads").value_or(false) ||
            settings.FindBoolean("NSTemporaryExceptionAllowsInsecureHTTPLoads").value_or(false);
        entry.includes_subdomains = settings.FindBoolean("NSIncludesSubdomains").value_or(false);
        if (const std::string* tls = settings.FindString("NSExceptionMinimumTLSVersion")) entry.minimum_tls = *tls;
        out.exception_domains.push_back(std::move(entry));
      }
    }
    info.ats = std::move(out);
  }
  if (const plist::Value* extension = root.Find("NSExtension")) {
    if (const std::string* point = extension->FindString("NSExtensionPointIdentifier")) info.extension_point = *point;
  }
  return info;
}

PrivacyManifest ReadPrivacyManifest(const plist::Value& root, std::string path) {
  PrivacyManifest out;
  out.path = std::move(path);
  out.tracking = root.FindBoolean("NSPrivacyTracking");
  out.tracking_domains = root.FindStrings("NSPrivacyTrackingDomains");
  if (const auto* types = root.FindArray("NSPrivacyCollectedDataTypes")) {
    for (const plist::Value& item : *types) {
      CollectedDataType type;
      if (const std::string* name = item.FindString("NSPrivacyCollectedDataType")) type.type = *name;
      type.linked = item.FindBoolean("NSPrivacyCollectedDataTypeLinked").value_or(false);
      type.tracking = item.FindBoolean("NSPrivacyCollectedDataTypeTracking").value_or(false);
      type.purposes = item.FindStrings("NSPrivacyCollectedDataTypePurposes");
      out.collected_data.push_back(std::move(type));
    }
  }
  if (const auto* apis = root.FindArray("NSPrivacyAccessedAPITypes")) {
    for (const plist::Value& item : *apis) {
      AccessedApi api;
      if (const std::string* name = item.FindString("NSPrivacyAccessedAPIType")) api.category = *name;
      api.reasons = item.FindStrings("NSPrivacyAccessedAPITypeReasons");
      out.accessed_apis.push_back(std::move(api));
    }
  }
  return out;
}

Result<ProvisioningProfile> ReadProvisioningProfile(Bytes der, const Limits& limits, int64_t now_unix,
                                                    const TrustAnchors* anchors) {
  APPBAN_ASSIGN_OR_RETURN(SignedContent signed_content, ReadCmsSignedData(der, limits));
  auto root = plist::Parse(AsBytes(signed_content.content), limits.plist);
  if (!root.ok()) return root.status().WithContext("provisioning profile payload");
  if (!root->is_dict()) return Status::Corruption("provisioning profile payload is not a dict");
  ProvisioningProfile out;
  auto text = [&](std::string_view key) {
    const std::string* value = root->FindString(key);
    return value ? *value : std::string();
  };
  out.name = text("Name");
  out.uuid = text("UUID");
  out.team_name = text("TeamName");
  out.app_id_name = text("AppIDName");
  std::vector<std::string> teams = root->FindStrings("TeamIdentifier");
  if (!teams.empty()) out.team_id = teams.front();
  out.platforms = root->FindStrings("Platform");
  if (const plist::Value* entitlements = root->Find("Entitlements"); entitlements && entitlements->is_dict()) {
    out.entitlements = *entitlements;
    if (const std::string* id = entitlements->FindString("application-identifier")) out.application_identifier = *id;
    out.get_task_allow = entitlements->FindBoolean("get-task-allow").value_or(false);
  }
  std::optional<int64_t> created;  // also the time the signer's chain is checked at, without a signing time
  if (auto at = root->Find("CreationDate"); at && at->AsDate()) {
    created = static_cast<int64_t>(*at->AsDate());
    out.creation_date = FormatTimestamp(static_cast<UnixSeconds>(*created));
  }
  if (auto at = root->Find("ExpirationDate"); at && at->AsDate()) {
    out.expiration_date = FormatTimestamp(static_cast<UnixSeconds>(*at->AsDate()));
    out.expired = *at->AsDate() < static_cast<double>(now_unix);
  }
  if (const auto* devices = root->FindArray("ProvisionedDevices")) out.provisioned_devices = devices->size();
  out.provisions_all_devices = root->FindBoolean("ProvisionsAllDevices").value_or(false);
  if (out.provisions_all_devices) {
    out.type = "enterprise";
  } else if (out.provisioned_devices) {
    out.type = out.get_task_allow ? "development" : "ad-hoc";
  } else {
    out.type = "app-store";
  }
  if (const auto* certificates = root->FindArray("DeveloperCertificates")) {
    for (const plist::Value& certificate : *certificates) {
      if (const std::string* bytes = certificate.AsData())
        out.developer_certificates.push_back(Sha256Hex(AsBytes(*bytes)));
    }
  }
  out.signers = std::move(signed_content.certificates);
  out.signature_verifies = signed_content.verified;
  for (const SignerCertificate& certificate : out.signers) {
    if (certificate.der == signed_content.signer_der) out.signer_name = certificate.common_name;
  }
  if (!out.signature_verifies || signed_content.signer_der.empty()) {
    out.chain.note = "not checked: the profile's CMS signature does not verify";
  } else if (anchors == nullptr || anchors->der().empty()) {
    out.chain.note = "not verified: no trust anchor loaded (data/apple-roots.pem)";
  } else {
    // The signing certificate must have been valid when the profile was made; the profile's own
    // expiry is reported apart.
    const int64_t at = signed_content.signing_time.value_or(created.value_or(now_unix));
    out.chain = CheckCertificateChain(anchors->der(), signed_content.signer_der, out.signers, at,
                                      signed_content.signing_time ? "the signing time"
                                      : created                   ? "the profile's creation date"
                                                                  : "the current time");
  }
  out.signed_by_apple = out.chain.verified && out.signer_name == kAppleProfileSigner;
  return out;
}

namespace {

// The files of the input: a ZIP (IPA) or a directory, read the same way.
class FileTree {
 public:
  virtual ~FileTree() = default;
  // Every regular file, as a path relative to the input with '/' separators, sorted.
  virtual const std::vector<std::string>& files() const = 0;
  // The bytes of one file, at most `max_bytes`.
  virtual Result<Buffer> Read(const std::string& path, uint64_t max_bytes) = 0;
  bool Has(const std::string& path) const { return std::binary_search(files().begin(), files().end(), path); }
};

class ZipTree : public FileTree {
 public:
  ZipTree(apk::ZipArchive zip, const Limits& limits, apk::Anomalies* anomalies)
      : zip_(std::move(zip)), budget_(limits.zip.max_total_inflated_bytes), anomalies_(anomalies) {
    for (const apk::ZipEntry& entry : zip_.entries()) {
      if (!entry.name.empty() && entry.name.back() != '/') files_.push_back(entry.name);
    }
    std::sort(files_.begin(), files_.end());
    files_.erase(std::unique(files_.begin(), files_.end()), files_.end());
  }
  const std::vector<std::string>& files() const override { return files_; }
  Result<Buffer> Read(const std::string& path, uint64_t max_bytes) override {
    const apk::ZipEntry* entry = zip_.Find(path);
    if (entry == nullptr) return Status::NotFound(path + ": no such entry");
    if (entry->uncompressed_size > max_bytes) {
      return Status::LimitExceeded(path + ": " + std::to_string(entry->uncompressed_size) + " bytes, more than " +
                                   std::to_string(max_bytes));
    }
    return zip_.Read(*entry, &budget_, anomalies_);
  }

 private:
  apk::ZipArchive zip_;
  std::vector<std::string> files_;
  uint64_t budget_;
  apk::Anomalies* anomalies_;
};

class DirectoryTree : public FileTree {
 public:
  static Result<std::unique_ptr<DirectoryTree>> Open(const std::string& root, const Limits& limits) {
    auto tree = std::unique_ptr<DirectoryTree>(new DirectoryTree(root));
    std::error_code error;
    fs::recursive_directory_iterator it(root, fs::directory_options::none, error), end;
    if (error) return Status::Unavailable(root + ": " + error.message());
    for (; it != end; it.increment(error)) {
      if (error) return Status::Unavailable(root + ": " + error.message());
      if (!it->is_regular_file(error) || it->is_symlink(error)) continue;
      if (tree->files_.size() >= limits.max_bundle_files) {
        return Status::LimitExceeded(root + ": more than " + std::to_string(limits.max_bundle_files) +
                                     " files (Limits::max_bundle_files)");
      }
      tree->files_.push_back(fs::relative(it->path(), root, error).generic_string());
    }
    std::sort(tree->files_.begin(), tree->files_.end());
    return tree;
  }
  const std::vector<std::string>& files() const override { return files_; }
  Result<Buffer> Read(const std::string& path, uint64_t max_bytes) override {
    std::string full = (fs::path(root_) / path).string();
    APPBAN_ASSIGN_OR_RETURN(MappedFile mapped, MappedFile::Open(full));
    if (mapped.bytes().size() > max_bytes) {
      return Status::LimitExceeded(path + ": " + std::to_string(mapped.bytes().size()) + " bytes, more than " +
                                   std::to_string(max_bytes));
    }
    return Buffer::CopyOf(mapped.bytes());
  }

 private:
  explicit DirectoryTree(std::string root) : root_(std::move(root)) {}
  std::string root_;
  std::vector<std::string> files_;
};

std::string KindOf(std::string_view root) {
  std::string_view name = root;
  if (name.ends_with("/")) name.remove_suffix(1);
  if (name.ends_with(".app")) return "app";
  if (name.ends_with(".framework")) return "framework";
  if (name.ends_with(".xcframework")) return "xcframework";
  if (name.ends_with(".appex")) return "appex";
  return "bundle";
}

std::string StemOf(std::string_view root) {
  std::string_view name = root;
  if (name.ends_with("/")) name.remove_suffix(1);
  name = name.substr(name.rfind('/') == std::string_view::npos ? 0 : name.rfind('/') + 1);
  return std::string(name.substr(0, name.rfind('.')));
}

// Reads the Mach-O facts and code signature of `bytes` into `bundle`.
void ReadExecutable(Bytes bytes, const std::optional<Bytes>& info_plist, const Limits& limits,
                    const TrustAnchors* anchors, Bundle* bundle, apk::Anomalies* anomalies) {
  auto macho = ParseMachO(bytes, limits);
  if (!macho.ok()) {
    bundle->macho_error = macho.status().ToString();
    AddAnomaly(anomalies, "ios.executable_unreadable", bundle->executable_path, bundle->macho_error);
    return;
  }
  for (auto& anomaly : macho->anomalies) {
    anomaly.where = bundle->executable_path + " " + anomaly.where;
    anomalies->push_back(anomaly);
  }
  for (const MachOSlice& slice : macho->slices) {
    if (!slice.code_signature_offset) continue;
    Bytes slice_bytes = bytes.subspan(slice.offset, slice.size);
    auto blob = SubSpan(slice_bytes, *slice.code_signature_offset, slice.code_signature_size);
    std::string where = bundle->executable_path + " (" + slice.arch + ")";
    if (!blob) {
      bundle->signature_error = "LC_CODE_SIGNATURE runs past the end of the " + slice.arch + " slice";
      AddAnomaly(anomalies, "codesign.out_of_bounds", where, bundle->signature_error);
      break;
    }
    // Page hashes cover the slice up to the signature.
    auto signature = ParseCodeSignature(*blob, slice_bytes, info_plist, limits, anomalies, where);
    if (signature.ok()) {
      VerifyChain(anchors, &*signature);
      bundle->signature = std::move(*signature);
    } else {
      bundle->signature_error = signature.status().ToString();
      AddAnomaly(anomalies, "codesign.unreadable", where, bundle->signature_error);
    }
    break;
  }
  bundle->macho = std::move(*macho);
}

// Whether `bundle_id` is one the profile's application identifier ("TEAMID.com.x.y", or a wildcard
// "TEAMID.*" / "TEAMID.com.x.*") covers.
bool AppIdCovers(const std::string& application_identifier, const std::string& bundle_id) {
  size_t dot = application_identifier.find('.');
  if (dot == std::string::npos) return false;
  std::string_view pattern = std::string_view(application_identifier).substr(dot + 1);
  if (pattern == "*") return true;
  if (pattern.ends_with(".*")) return bundle_id.starts_with(pattern.substr(0, pattern.size() - 1));
  return pattern == bundle_id;
}

// What iOS checks before it installs an app with its profile, said as anomalies when it fails: a
// profile Apple did not sign, an executable signed with a certificate the profile does not list, a
// signature of another team, a bundle id the profile does not cover. Each means the package was
// made or altered outside Apple's provisioning (re-signed, repackaged), and iOS would refuse it.
void CheckProfileMatchesBundle(const Bundle& bundle, const std::string& path, apk::Anomalies* anomalies) {
  const ProvisioningProfile& profile = *bundle.profile;
  if (profile.chain.checked && !profile.signed_by_apple) {
    AddAnomaly(anomalies, "ios.profile_not_signed_by_apple", path,
               "the provisioning profile is signed by \"" + profile.signer_name + "\" (chain " + profile.chain.note +
                   "), not by Apple's provisioning service (\"" + kAppleProfileSigner +
                   "\" under an Apple root): iOS refuses such a profile");
  }
  const CodeSignature* signature = bundle.signature ? &*bundle.signature : nullptr;
  if (signature && signature->cms_verifies && !signature->signer_der.empty() &&
      !profile.developer_certificates.empty()) {
    const std::string signer = Sha256Hex(AsBytes(signature->signer_der));
    if (std::find(profile.developer_certificates.begin(), profile.developer_certificates.end(), signer) ==
        profile.developer_certificates.end()) {
      AddAnomaly(anomalies, "ios.profile_certificate_mismatch", path,
                 "the executable is signed with certificate " + signer + ", which is not among the profile's " +
                     std::to_string(profile.developer_certificates.size()) +
                     " developer certificate(s): it was re-signed after it was provisioned");
    }
  }
  if (signature && !signature->team_id.empty() && !profile.team_id.empty() && signature->team_id != profile.team_id) {
    AddAnomaly(anomalies, "ios.profile_team_mismatch", path,
               "the profile belongs to team " + profile.team_id + " but the executable is signed by team " +
                   signature->team_id);
  }
  if (bundle.info && !bundle.info->bundle_id.empty() && !profile.application_identifier.empty() &&
      !AppIdCovers(profile.application_identifier, bundle.info->bundle_id)) {
    AddAnomaly(anomalies, "ios.profile_app_id_mismatch", path,
               "the profile is for " + profile.application_identifier + ", which does not cover the bundle id " +
                   bundle.info->bundle_id);
  }
}

// codesign signs a bundle whose main file is not a signed Mach-O (an .xcframework, a framework
// around a static library) in detached form, one blob per file of _CodeSignature/: CodeDirectory
// (slot 0), CodeRequirements (2), CodeEntitlements (5), CodeRequirements-1.. (the alternate
// directories, 0x1000..), CodeSignature (the CMS, empty when ad hoc). Put back into the superblob
// LC_CODE_SIGNATURE would point at, they are read the same way. nullopt when there is none.
std::optional<std::string> DetachedSuperblob(FileTree& tree, const std::string& root, const Limits& limits,
                                             apk::Anomalies* anomalies) {
  const std::string dir = root + "_CodeSignature/";
  if (!tree.Has(dir + "CodeDirectory")) return std::nullopt;
  const std::pair<const char*, uint32_t> files[] = {{"CodeDirectory", 0},           {"CodeRequirements", 2},
                                                    {"CodeEntitlements", 5},        {"CodeRequirements-1", 0x1000},
                                                    {"CodeRequirements-2", 0x1001}, {"CodeSignature", 0x10000}};
  auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                       static_cast<char>(v)};
  };
  std::vector<std::pair<uint32_t, std::string>> blobs;
  for (const auto& [name, slot] : files) {
    if (!tree.Has(dir + name)) continue;
    auto bytes = tree.Read(dir + name, limits.max_code_signature_bytes);
    if (!bytes.ok()) {
      AddAnomaly(anomalies, "codesign.unreadable", dir + name, bytes.status().ToString());
      continue;
    }
    std::string blob(AsStringView(bytes->bytes()));
    // The CMS file is bare DER: wrap it as the superblob's blob wrapper (0xfade0b01).
    if (slot == 0x10000) blob = be32(0xfade0b01) + be32(static_cast<uint32_t>(blob.size() + 8)) + blob;
    blobs.emplace_back(slot, std::move(blob));
  }
  const uint32_t header = 12 + 8 * static_cast<uint32_t>(blobs.size());
  std::string index, body;
  for (const auto& [slot, blob] : blobs) {
    index += be32(slot) + be32(static_cast<uint32_t>(header + body.size()));
    body += blob;
  }
  if (header + body.size() > limits.max_code_signature_bytes) {
    AddAnomaly(anomalies, "codesign.unreadable", dir,
               "detached signature larger than Limits::max_code_signature_bytes");
    return std::nullopt;
  }
  return be32(0xfade0cc0) + be32(static_cast<uint32_t>(header + body.size())) +
         be32(static_cast<uint32_t>(blobs.size())) + index + body;
}

Bundle ReadBundle(FileTree& tree, const std::string& root, const Limits& limits, const TrustAnchors* anchors,
                  apk::Anomalies* anomalies) {
  Bundle bundle;
  bundle.kind = KindOf(root);
  bundle.path = root.empty() ? "." : root.substr(0, root.size() - 1);
  std::optional<Buffer> info_bytes;
  for (const char* candidate : {"Info.plist", "Resources/Info.plist"}) {
    std::string path = root + candidate;
    if (!tree.Has(path)) continue;
    auto bytes = tree.Read(path, limits.max_plist_bytes);
    if (!bytes.ok()) {
      AddAnomaly(anomalies, "ios.info_plist_unreadable", path, bytes.status().ToString());
      break;
    }
    auto value = plist::Parse(*bytes, limits.plist);
    if (!value.ok() || !value->is_dict()) {
      AddAnomaly(anomalies, "ios.info_plist_unreadable", path,
                 value.ok() ? "Info.plist is not a dict" : value.status().ToString());
    } else {
      bundle.info = ReadInfoPlist(*value, AsStringView(bytes->bytes()).starts_with("bplist") ? "binary" : "xml");
    }
    info_bytes = std::move(*bytes);
    break;
  }
  if (!bundle.info && bundle.kind != "xcframework") {
    AddAnomaly(anomalies, "ios.no_info_plist", bundle.path, "bundle has no readable Info.plist");
  }
  std::optional<Buffer> executable_bytes;
  std::string executable = bundle.info && !bundle.info->executable.empty() ? bundle.info->executable : StemOf(root);
  if (bundle.kind != "xcframework" && !executable.empty() && executable.find("..") == std::string::npos) {
    std::string path = root + executable;
    if (tree.Has(path)) {
      bundle.executable_path = path;
      auto bytes = tree.Read(path, limits.max_macho_bytes);
      if (bytes.ok()) {
        std::optional<Bytes> info_view;
        if (info_bytes) info_view = info_bytes->bytes();
        ReadExecutable(*bytes, info_view, limits, anchors, &bundle, anomalies);
        executable_bytes = std::move(*bytes);
      } else {
        bundle.macho_error = bytes.status().ToString();
        AddAnomaly(anomalies, "ios.executable_unreadable", path, bundle.macho_error);
      }
    } else {
      AddAnomaly(anomalies, "ios.executable_missing", bundle.path,
                 "the bundle's executable \"" + executable + "\" is not in it");
    }
  }
  if (!bundle.signature) {
    if (auto blob = DetachedSuperblob(tree, root, limits, anomalies)) {
      // Its code hashes cover the main file: the executable, else (an xcframework) the Info.plist.
      Bytes code = executable_bytes ? executable_bytes->bytes() : info_bytes ? info_bytes->bytes() : Bytes{};
      std::optional<Bytes> info_view;
      if (info_bytes) info_view = info_bytes->bytes();
      const std::string where = root + "_CodeSignature";
      auto signature = ParseCodeSignature(AsBytes(*blob), code, info_view, limits, anomalies, where);
      if (signature.ok()) {
        VerifyChain(anchors, &*signature);
        bundle.signature = std::move(*signature);
        bundle.signature_detached = true;
      } else {
        bundle.signature_error = signature.status().ToString();
        AddAnomaly(anomalies, "codesign.unreadable", where, bundle.signature_error);
      }
    }
  }
  for (const char* candidate : {"PrivacyInfo.xcprivacy", "Resources/PrivacyInfo.xcprivacy"}) {
    std::string path = root + candidate;
    if (!tree.Has(path)) continue;
    auto bytes = tree.Read(path, limits.max_plist_bytes);
    auto value = bytes.ok() ? plist::Parse(*bytes, limits.plist) : Result<plist::Value>(bytes.status());
    if (value.ok() && value->is_dict()) {
      bundle.privacy_manifest = ReadPrivacyManifest(*value, path);
    } else {
      AddAnomaly(anomalies, "ios.privacy_manifest_unreadable", path,
                 value.ok() ? "privacy manifest is not a dict" : value.status().ToString());
    }
    break;
  }
  if (std::string path = root + "embedded.mobileprovision"; tree.Has(path)) {
    auto bytes = tree.Read(path, limits.max_cms_bytes);
    auto profile = bytes.ok() ? ReadProvisioningProfile(*bytes, limits, std::time(nullptr), anchors)
                              : Result<ProvisioningProfile>(bytes.status());
    if (profile.ok()) {
      bundle.profile = std::move(*profile);
      if (!bundle.profile->signature_verifies) {
        AddAnomaly(anomalies, "ios.profile_signature_invalid", path,
                   "the provisioning profile's CMS signature does not verify");
      }
      CheckProfileMatchesBundle(bundle, path, anomalies);
    } else {
      AddAnomaly(anomalies, "ios.profile_unreadable", path, profile.status().ToString());
    }
  }
  return bundle;
}

// Roots of nested bundles under `root`: every directory whose name ends in .framework, .appex
// or .app, found from the file list, in path order.
std::vector<std::string> NestedRoots(const std::vector<std::string>& files, const std::string& root) {
  std::set<std::string> roots;
  for (const std::string& file : files) {
    if (!file.starts_with(root)) continue;
    size_t pos = root.size();
    while (true) {
      size_t slash = file.find('/', pos);
      if (slash == std::string::npos) break;
      std::string_view component(file.data() + pos, slash - pos);
      if (component.ends_with(".framework") || component.ends_with(".appex") || component.ends_with(".app")) {
        roots.insert(file.substr(0, slash + 1));
      }
      pos = slash + 1;
    }
  }
  return {roots.begin(), roots.end()};
}

Status ReadBundles(FileTree& tree, const std::string& root, const Limits& limits, const TrustAnchors* anchors,
                   std::vector<Bundle>* out, apk::Anomalies* anomalies) {
  out->push_back(ReadBundle(tree, root, limits, anchors, anomalies));
  std::vector<std::string> nested = NestedRoots(tree.files(), root);
  if (nested.size() > limits.max_nested_bundles) {
    return Status::LimitExceeded(std::to_string(nested.size()) + " nested bundles, more than " +
                                 std::to_string(limits.max_nested_bundles) + " (Limits::max_nested_bundles)");
  }
  for (const std::string& path : nested) out->push_back(ReadBundle(tree, path, limits, anchors, anomalies));
  return Status::Ok();
}

// The Payload/<name>.app/ root of an IPA: the shortest such prefix; several apps are an anomaly.
std::optional<std::string> IpaRoot(const std::vector<std::string>& files, apk::Anomalies* anomalies) {
  std::set<std::string> roots;
  for (const std::string& file : files) {
    if (!file.starts_with("Payload/")) continue;
    size_t slash = file.find('/', 8);
    if (slash == std::string::npos) continue;
    std::string_view name(file.data() + 8, slash - 8);
    if (name.ends_with(".app") && name.size() > 4) roots.insert(file.substr(0, slash + 1));
  }
  if (roots.empty()) return std::nullopt;
  if (roots.size() > 1 && anomalies != nullptr) {
    AddAnomaly(anomalies, "ipa.several_apps", "Payload/",
               std::to_string(roots.size()) + " apps under Payload/; the first is read");
  }
  return *roots.begin();
}

}  // namespace

bool LooksLikeIpa(Bytes bytes) {
  if (bytes.size() < 4 || AsStringView(bytes.first(2)) != "PK") return false;
  apk::Limits limits;
  auto zip = apk::ZipArchive::Open(bytes, limits);
  if (!zip.ok()) return false;
  for (const apk::ZipEntry& entry : zip->entries()) {
    if (entry.name.starts_with("Payload/") && entry.name.find(".app/") != std::string::npos) return true;
  }
  return false;
}

bool IsIosBundleDirectory(const std::string& path) {
  std::error_code error;
  if (!fs::is_directory(path, error)) return false;
  if (fs::is_regular_file(fs::path(path) / "Info.plist", error)) {
    auto text = ReadFileToString((fs::path(path) / "Info.plist").string(), 8u << 20);
    return text.ok() && plist::LooksLikePlist(AsBytes(*text));
  }
  return fs::is_regular_file(fs::path(path) / "Resources" / "Info.plist", error);
}

Result<IosApp> IosApp::FromBytes(Bytes bytes, std::string display_name, const Limits& limits,
                                 const TrustAnchors* anchors) {
  IosApp app;
  app.path_ = std::move(display_name);
  app.file_size_ = bytes.size();
  app.sha256_ = Sha256Hex(bytes);
  if (LooksLikeMachO(bytes)) {
    app.input_kind_ = "macho";
    app.file_count_ = 1;
    Bundle bundle;
    bundle.kind = "executable";
    bundle.path = ".";
    bundle.executable_path = fs::path(app.path_).filename().string();
    ReadExecutable(bytes, std::nullopt, limits, anchors, &bundle, &app.anomalies_);
    if (!bundle.macho) return Status::Corruption(bundle.macho_error);
    app.bundles_.push_back(std::move(bundle));
    return app;
  }
  auto zip = apk::ZipArchive::Open(bytes, limits.zip);
  if (!zip.ok()) return Status::NotRecognized("not an IPA or a Mach-O file: " + zip.status().message());
  app.anomalies_ = zip->anomalies();
  app.file_count_ = zip->entries().size();
  ZipTree tree(std::move(*zip), limits, &app.anomalies_);
  auto root = IpaRoot(tree.files(), &app.anomalies_);
  if (!root) return Status::NotRecognized("ZIP without a Payload/<name>.app/ folder: not an IPA");
  app.input_kind_ = "ipa";
  APPBAN_RETURN_IF_ERROR(ReadBundles(tree, *root, limits, anchors, &app.bundles_, &app.anomalies_));
  return app;
}

Result<IosApp> IosApp::Open(const std::string& path, const Limits& limits, const TrustAnchors* anchors) {
  std::error_code error;
  if (fs::is_directory(path, error)) {
    APPBAN_ASSIGN_OR_RETURN(auto tree, DirectoryTree::Open(path, limits));
    IosApp app;
    app.path_ = path;
    app.file_count_ = tree->files().size();
    std::string name = fs::path(path).lexically_normal().filename().string();
    if (name.empty()) name = fs::path(path).lexically_normal().parent_path().filename().string();
    app.input_kind_ = KindOf(name);
    if (app.input_kind_ == "bundle") app.input_kind_ = "app";
    // A directory's own name decides the main bundle's kind; its files are read relative to it.
    std::vector<Bundle> bundles;
    APPBAN_RETURN_IF_ERROR(ReadBundles(*tree, "", limits, anchors, &bundles, &app.anomalies_));
    bundles.front().kind = app.input_kind_;
    bundles.front().path = name;
    if (!bundles.front().info && bundles.size() == 1) {
      return Status::NotRecognized(path + ": a directory without an Info.plist or a framework: not an iOS bundle");
    }
    app.bundles_ = std::move(bundles);
    return app;
  }
  APPBAN_ASSIGN_OR_RETURN(MappedFile mapped, MappedFile::Open(path));
  return FromBytes(mapped.bytes(), path, limits, anchors);
}

}  // namespace appban::ios
