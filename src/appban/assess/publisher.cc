// Publisher identity: who signed the package (subject O and C of the signer certificate), how
// (v1-only, debug certificate, unsigned) and whether a registry vendor is behind it. The registry
// is matched strongest-first: signer fingerprint, then certificate organisation, then package name.
#include <algorithm>
#include <cctype>

#include "appban/assess/detectors.h"
#include "appban/common/text.h"

namespace appban::assess {
namespace {

bool PackageUnder(std::string_view package, std::string_view prefix) {
  if (!prefix.empty() && prefix.back() == '.') prefix.remove_suffix(1);
  return package == prefix || (package.size() > prefix.size() && package.substr(0, prefix.size()) == prefix &&
                               package[prefix.size()] == '.');
}

std::string Slug(std::string_view text) {
  std::string out;
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    out.push_back(std::isalnum(u) ? static_cast<char>(std::tolower(u)) : '_');
  }
  return out;
}

const Vendor* FindVendor(const std::vector<Vendor>& vendors, const std::string& name) {
  for (const Vendor& vendor : vendors) {
    if (vendor.name == name) return &vendor;
  }
  return nullptr;
}

}  // namespace

Publisher DetectPublisher(const apk::SigningInfo& signing, std::string_view package,
                          const std::vector<Vendor>& vendors) {
  Publisher publisher;
  if (!signing.signers.empty()) {
    const apk::Certificate& certificate = signing.signers.front().certificate;
    publisher.organization = certificate.subject_organization;
    publisher.country = certificate.subject_country;
    publisher.signer_sha256 = certificate.sha256;
    publisher.v1_only = signing.v1_only();
    publisher.debug_certificate = std::any_of(signing.signers.begin(), signing.signers.end(),
                                              [](const apk::Signer& s) { return s.certificate.debug; });
  }
  publisher.package = std::string(package);
  auto take = [&](const Vendor& vendor, const char* how, const std::string& value) {
    publisher.vendor = vendor.name;
    publisher.vendor_country = vendor.country;
    publisher.matched_by = how;
    publisher.matched_value = value;
    publisher.matched_unverified =
        std::find(vendor.unverified_package_prefixes.begin(), vendor.unverified_package_prefixes.end(), value) !=
        vendor.unverified_package_prefixes.end();
  };
  for (const Vendor& vendor : vendors) {
    for (const apk::Signer& signer : signing.signers) {
      if (std::find(vendor.signer_sha256.begin(), vendor.signer_sha256.end(), signer.certificate.sha256) !=
          vendor.signer_sha256.end()) {
        take(vendor, "signer", signer.certificate.sha256);
        return publisher;
      }
    }
  }
  if (!publisher.organization.empty()) {
    for (const Vendor& vendor : vendors) {
      for (const std::string& organization : vendor.certificate_organizations) {
        if (EqualsIgnoreCase(organization, publisher.organization)) {
          take(vendor, "certificate_organization", organization);
          return publisher;
        }
      }
    }
  }
  // The longest matching prefix wins, so a specific product entry beats a vendor-wide one.
  const Vendor* best = nullptr;
  const std::string* best_prefix = nullptr;
  size_t best_length = 0;
  for (const Vendor& vendor : vendors) {
    for (const std::string& prefix : vendor.package_prefixes) {
      if (PackageUnder(package, prefix) && prefix.size() > best_length) {
        best = &vendor;
        best_prefix = &prefix;
        best_length = prefix.size();
      }
    }
  }
  if (best != nullptr) take(*best, "package_prefix", *best_prefix);
  return publisher;
}

std::vector<Finding> PublisherFindings(const Publisher& publisher, const apk::SigningInfo& signing,
                                       const std::vector<Vendor>& vendors) {
  std::vector<Finding> out;
  constexpr const char* kCategory = "publisher";
  if (signing.signers.empty()) {
    out.push_back({"publisher.unsigned",
                   kCategory,
                   Severity::kHigh,
                   "The package is not signed",
                   "No v1 signature files and no APK Signing Block with a signer: Android refuses to install it, and "
                   "nothing ties it to a publisher.",
                   {}});
  } else {
    const apk::Certificate& certificate = signing.signers.front().certificate;
    std::vector<Evidence> signer_evidence = {{"certificate", certificate.subject, "", "SHA-256 " + certificate.sha256}};
    out.push_back({"publisher.signer", kCategory, Severity::kInfo,
                   "Signed by " + (publisher.organization.empty() ? certificate.subject : publisher.organization) +
                       (publisher.country.empty() ? "" : " (" + publisher.country + ")"),
                   "The subject of the signing certificate. It is chosen by whoever made the key and not verified by "
                   "any authority; the fingerprint is what identifies the key.",
                   signer_evidence});
    if (publisher.debug_certificate) {
      out.push_back({"publisher.debug_certificate", kCategory, Severity::kHigh,
                     "Signed with the Android debug certificate",
                     "The Android SDK's debug key signs development builds; a release signed with it has no "
                     "accountable publisher, and anyone can sign an update with the same kind of key.",
                     signer_evidence});
    }
    if (publisher.v1_only) {
      out.push_back({"publisher.v1_only_signature", kCategory, Severity::kMedium, "Only a v1 (JAR) signature",
                     "JAR signing does not protect the whole file: on Android 7.0 and older the package can be altered "
                     "without breaking the signature (the \"Janus\" class of attacks), and newer Android prefers v2+.",
                     signer_evidence});
    }
  }
  if (publisher.vendor) {
    const Vendor* vendor = FindVendor(vendors, *publisher.vendor);
    Finding finding;
    finding.id =
        "publisher.vendor." + (vendor != nullptr && !vendor->id.empty() ? vendor->id : Slug(*publisher.vendor));
    finding.category = kCategory;
    finding.severity = Severity::kMedium;
    finding.title = "Publisher in the vendor registry: " + *publisher.vendor +
                    (publisher.vendor_country.empty() ? "" : " (" + publisher.vendor_country + ")");
    std::string how = publisher.matched_by == "signer"                     ? "its signing certificate fingerprint"
                      : publisher.matched_by == "certificate_organization" ? "the organisation on its certificate"
                                                                           : "its package name only";
    finding.description = "Matched by " + how + ". Jurisdiction: " + publisher.vendor_country + "." +
                          (vendor != nullptr && !vendor->note.empty() ? " " + vendor->note : "");
    if (publisher.matched_by == "package_prefix") {
      finding.evidence.push_back({"manifest", "/manifest[@package=" + publisher.package + "]", "AndroidManifest.xml",
                                  "registry prefix " + publisher.matched_value +
                                      (publisher.matched_unverified ? " (attribution believed, unverified)" : "")});
    } else {
      finding.evidence.push_back(
          {"certificate", publisher.signer_sha256, "",
           publisher.matched_by == "signer" ? "registry fingerprint" : "O=" + publisher.organization});
    }
    out.push_back(std::move(finding));
    if (!publisher.vendor_country.empty()) {
      out.push_back({"publisher.jurisdiction." + Slug(publisher.vendor_country),
                     kCategory,
                     Severity::kInfo,
                     "Publisher jurisdiction: " + publisher.vendor_country,
                     "Country whose law governs the registry vendor " + *publisher.vendor +
                         "; an organisation's risk model may weigh particular jurisdictions.",
                     {}});
    }
  }
  return out;
}

}  // namespace appban::assess
