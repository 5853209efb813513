// The app's network security configuration (res/xml/…, named by the manifest's
// android:networkSecurityConfig): whether cleartext HTTP is permitted, for which domains, and
// whether user-installed CA certificates are trusted (which lets anyone who can install a CA on
// the device read the app's TLS traffic). Extracted from the parsed binary XML with Android's
// defaults applied for the app's target SDK. Pure; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "appban/apk/anomaly.h"
#include "appban/apk/axml.h"

namespace appban::apk {

struct DomainSecurityConfig {
  std::vector<std::string> domains;  // "example.com" or "*.example.com" when includeSubdomains
  bool cleartext_permitted = false;  // after inheritance from the base config
  bool trusts_user_certificates = false;
  bool pins = false;  // has a <pin-set>
};

struct NetworkSecurityConfig {
  std::string path;                       // ZIP entry it was read from
  bool base_cleartext_permitted = false;  // <base-config>, or the platform default for the target SDK
  bool base_trusts_user_certificates = false;
  std::vector<DomainSecurityConfig> domains;
  bool debug_overrides_user_certificates = false;  // only applies to debuggable builds

  // Domains for which cleartext is permitted (all of them when the base permits it).
  bool any_cleartext() const;
  bool any_user_certificates() const;
};

// Reads a parsed network-security-config document. `target_sdk` selects Android's defaults:
// cleartext is permitted by default below SDK 28, user CAs are trusted by default below SDK 24.
NetworkSecurityConfig ReadNetworkSecurityConfig(const XmlDocument& document, std::string path, int target_sdk,
                                                Anomalies* anomalies);

}  // namespace appban::apk
