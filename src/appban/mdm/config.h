// The MDM connectors' configuration: the `[mdm]` part of the server's TOML file
// (docs/server-config.md, docs/mdm.md). The server's loader hands the `mdm` table to
// ParseMdmSection (config_toml.h), which is as strict as the rest of that file: an unknown key, a
// wrong type or a malformed name is an error naming the file, the line and the key. This header
// holds only the values, so the server's configuration header stays light.
//
//   [[mdm.amapi]]
//   name = "health"                                   # the connector's id (state file, reports)
//   enterprise = "enterprises/LC00abc123"
//   service_account_key_file = "/etc/appban/amapi-health.json"   # mode 0600; never inline
//   base_url = "https://androidmanagement.googleapis.com"       # optional
//   ca_file = ""                                      # optional: pin a CA instead of the system store
//     [[mdm.amapi.policies]]
//     name = "default"                                # or "enterprises/LC00abc123/policies/default"
//     groups = ["health-staff"]                       # appban groups of the policy's devices
//
//   [[mdm.apple]]                                     # an Apple MDM with a NanoMDM-style command queue
//   name = "ios"
//   server_url = "https://nanomdm.example.gov"        # the MDM's API (PUT /v1/enqueue/{id})
//   api_key_file = "/etc/appban/nanomdm-api-key"      # mode 0600; HTTP basic auth "nanomdm:KEY"
//   devices_file = "/etc/appban/ios-devices.txt"      # enrollment ids and their appban groups
//   signing_certificate_file = "/etc/appban/profile-signing.pem"  # certificate (+ chain), PEM
//   signing_key_file = "/etc/appban/profile-signing.key"          # its private key, mode 0600
//   profile_identifier = "gov.example.appban.restrictions"        # optional: PayloadIdentifier
//   organization = "Example Government CIO Office"   # optional: PayloadOrganization
//   ca_file = ""                                      # optional
//
// Credentials are named by path only; the key file's mode is checked when it is read.
// Plain values; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace appban::mdm {

inline constexpr std::string_view kAmapiBaseUrl = "https://androidmanagement.googleapis.com";

// One policy the connector manages.
struct ManagedPolicy {
  std::string name;                 // enterprises/E/policies/P
  std::vector<std::string> groups;  // appban groups its devices count as members of (scopes, waivers)
};

struct AmapiConnectorConfig {
  std::string name;
  std::string enterprise;
  std::string service_account_key_file;
  std::string base_url = std::string(kAmapiBaseUrl);
  std::string ca_file;
  std::vector<ManagedPolicy> policies;  // names normalised to enterprises/E/policies/P
};

// How `appban server` runs the connectors (docs/server-config.md, [mdm.sync]).
struct MdmSyncConfig {
  bool enabled = true;                // false: only `appban mdm apply` pushes (the CLI ignores this)
  int64_t interval_seconds = 300;     // a sync also runs at once on every publish
  int64_t request_attempts = 6;       // per MDM request, throttling and 5xx included (retry.h)
  int64_t max_backoff_seconds = 600;  // a failing connector is retried no slower than this
};

inline constexpr std::string_view kDefaultProfileIdentifier = "gov.appban.restrictions";

// An Apple MDM reached through a command queue (docs/mdm.md, "Apple MDM").
struct AppleConnectorConfig {
  std::string name;
  std::string server_url;
  std::string api_key_file;
  std::string devices_file;
  std::string signing_certificate_file;
  std::string signing_key_file;
  std::string profile_identifier = std::string(kDefaultProfileIdentifier);
  std::string organization;
  std::string ca_file;
};

inline constexpr std::string_view kGraphBaseUrl = "https://graph.microsoft.com";
inline constexpr std::string_view kMicrosoftLoginBaseUrl = "https://login.microsoftonline.com";

// One Entra ID group the Intune connector enforces on (docs/mdm.md, "Intune").
struct IntuneTarget {
  std::string entra_group_id;       // the group's object id (a GUID)
  std::vector<std::string> groups;  // appban groups its members count in (scopes, waivers)
  // Optional: an iOS compliance policy (beta restrictedApps) and an iOS device-restrictions
  // profile (appsVisibilityList) assigned to this group, whose app lists appban maintains.
  std::string ios_compliance_policy_id;
  std::string ios_device_configuration_id;
};

//   [[mdm.intune]]
//   name = "ministry"
//   tenant_id = "0b5e3c1a-…"                       # GUID or verified domain
//   client_id = "7d1c…"                            # the app registration's application id
//   client_secret_file = "/etc/appban/intune.secret"    # mode 0600; or, instead:
//   certificate_file = "/etc/appban/intune.crt"         # PEM certificate uploaded to the app
//   private_key_file = "/etc/appban/intune.key"         # its RSA key, mode 0600
//   graph_base_url = "https://graph.microsoft.com"      # optional
//   login_base_url = "https://login.microsoftonline.com" # optional
//   ca_file = ""                                        # optional
//   device_groups = ["phones"]                          # appban groups of every device listed
//     [[mdm.intune.targets]]
//     entra_group_id = "5f0c…"
//     groups = ["health-staff"]
//     ios_compliance_policy_id = "…"                    # optional
//     ios_device_configuration_id = "…"                 # optional
struct IntuneConnectorConfig {
  std::string name;
  std::string tenant_id;
  std::string client_id;
  std::string client_secret_file;  // either this …
  std::string certificate_file;    // … or these two
  std::string private_key_file;
  std::string graph_base_url = std::string(kGraphBaseUrl);
  std::string login_base_url = std::string(kMicrosoftLoginBaseUrl);
  std::string ca_file;
  std::vector<std::string> device_groups;
  std::vector<IntuneTarget> targets;
};

struct MdmConfig {
  std::vector<AmapiConnectorConfig> amapi;
  std::vector<IntuneConnectorConfig> intune;
  std::vector<AppleConnectorConfig> apple;
  MdmSyncConfig sync;

  struct Named {
    std::string name;
    std::string source;  // "amapi", "apple-mdm": MdmSourceName
  };
  // Every configured connector, in the order CreateConnectors builds them.
  std::vector<Named> Connectors() const;
  bool HasConnectors() const { return !amapi.empty() || !intune.empty() || !apple.empty(); }
};

// Every key an [mdm] section may hold, as the docs name them ("mdm.amapi.enterprise", …).
std::vector<std::string> KnownMdmKeys();

}  // namespace appban::mdm
