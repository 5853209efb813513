#include "appban/apk/network_security_config.h"

#include <algorithm>

namespace appban::apk {
namespace {

// Android's defaults (developer.android.com, "Network security configuration").
constexpr int kCleartextOffByDefaultSdk = 28;
constexpr int kUserCasDistrustedByDefaultSdk = 24;

// Attributes of this file have no android: namespace; values are booleans or strings.
std::optional<bool> PlainBool(const XmlElement& element, std::string_view name) {
  const XmlAttribute* attribute = element.FindPlainAttribute(name);
  if (attribute == nullptr) return std::nullopt;
  if (attribute->type == ValueType::kIntBoolean) return attribute->data != 0;
  if (attribute->string_value == "true") return true;
  if (attribute->string_value == "false") return false;
  return std::nullopt;
}

std::string ElementText(const XmlElement& element) {
  std::string text = element.text;
  auto space = [](unsigned char c) { return std::isspace(c) != 0; };
  text.erase(text.begin(), std::find_if_not(text.begin(), text.end(), space));
  text.erase(std::find_if_not(text.rbegin(), text.rend(), space).base(), text.end());
  return text;
}

// <trust-anchors><certificates src="user"/></trust-anchors>; nullopt when there is no
// <trust-anchors> (the inherited anchors apply).
std::optional<bool> TrustsUserCertificates(const XmlElement& config) {
  for (const XmlElement& child : config.children) {
    if (child.name != "trust-anchors") continue;
    for (const XmlElement& certificates : child.children) {
      if (certificates.name != "certificates") continue;
      const XmlAttribute* src = certificates.FindPlainAttribute("src");
      if (src != nullptr && src->string_value == "user") return true;
    }
    return false;
  }
  return std::nullopt;
}

void ReadDomainConfig(const XmlElement& element, bool inherited_cleartext, bool inherited_user_certificates,
                      std::vector<DomainSecurityConfig>* out, size_t depth) {
  // Nested domain-configs inherit from their parent; Android allows nesting, bound it anyway.
  if (depth > 16) return;
  DomainSecurityConfig config;
  config.cleartext_permitted = PlainBool(element, "cleartextTrafficPermitted").value_or(inherited_cleartext);
  config.trusts_user_certificates = TrustsUserCertificates(element).value_or(inherited_user_certificates);
  for (const XmlElement& child : element.children) {
    if (child.name == "domain") {
      std::string domain = ElementText(child);
      if (domain.empty()) continue;
      config.domains.push_back(PlainBool(child, "includeSubdomains").value_or(false) ? "*." + domain : domain);
    } else if (child.name == "pin-set") {
      config.pins = true;
    }
  }
  for (const XmlElement& child : element.children) {
    if (child.name == "domain-config") {
      ReadDomainConfig(child, config.cleartext_permitted, config.trusts_user_certificates, out, depth + 1);
    }
  }
  out->push_back(std::move(config));
}

}  // namespace

bool NetworkSecurityConfig::any_cleartext() const {
  return base_cleartext_permitted ||
         std::any_of(domains.begin(), domains.end(), [](const auto& d) { return d.cleartext_permitted; });
}

bool NetworkSecurityConfig::any_user_certificates() const {
  return base_trusts_user_certificates ||
         std::any_of(domains.begin(), domains.end(), [](const auto& d) { return d.trusts_user_certificates; });
}

NetworkSecurityConfig ReadNetworkSecurityConfig(const XmlDocument& document, std::string path, int target_sdk,
                                                Anomalies* anomalies) {
  NetworkSecurityConfig config;
  config.path = std::move(path);
  config.base_cleartext_permitted = target_sdk < kCleartextOffByDefaultSdk;
  config.base_trusts_user_certificates = target_sdk < kUserCasDistrustedByDefaultSdk;
  const XmlElement& root = document.root;
  if (root.name != "network-security-config") {
    AddAnomaly(anomalies, "nsc.unexpected_root", config.path,
               "the network security config's root element is <" + root.name +
                   ">, not <network-security-config>; Android's defaults were assumed");
    return config;
  }
  for (const XmlElement& child : root.children) {
    if (child.name == "base-config") {
      config.base_cleartext_permitted =
          PlainBool(child, "cleartextTrafficPermitted").value_or(config.base_cleartext_permitted);
      config.base_trusts_user_certificates =
          TrustsUserCertificates(child).value_or(config.base_trusts_user_certificates);
    }
  }
  for (const XmlElement& child : root.children) {
    if (child.name == "domain-config") {
      ReadDomainConfig(child, config.base_cleartext_permitted, config.base_trusts_user_certificates, &config.domains,
                       0);
    } else if (child.name == "debug-overrides") {
      config.debug_overrides_user_certificates = TrustsUserCertificates(child).value_or(false);
    }
  }
  return config;
}

}  // namespace appban::apk
