// The device protocol's messages (docs/protocol.md): what an agent and the server send each other,
// their JSON forms, and the strict validation of what arrives from the network. Shared by the
// server, the agent and the fleet simulator so the three can never disagree on the wire format.
// Pure functions; thread-safe.
//
// Validation is strict on purpose: an unknown member, a wrong type or a value out of range is an
// error naming the member ("checkin: events[3].kind: unknown event kind \"removd\""), so a client
// bug is seen at once instead of being half-understood by the server.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/status.h"
#include "appban/common/time.h"
#include "appban/policy/evaluate.h"
#include "appban/policy/keys.h"

namespace appban::protocol {

inline constexpr std::string_view kEnrollPath = "/v1/enroll";
inline constexpr std::string_view kCheckinPath = "/v1/checkin";
inline constexpr std::string_view kPollPath = "/v1/poll";

// Named bounds on what a device may send. The server's body limits (config) come first; these
// bound the parsed content.
struct ProtocolLimits {
  size_t max_inventory_apps = 20000;     // a workstation has a few thousand packages
  size_t max_events_per_checkin = 1000;  // an agent sends its queue in batches of at most this
  size_t max_text = 256;                 // identifiers, versions, hostnames
  size_t max_detail = 2048;              // an event's free text (e.g. a tool's stderr, truncated)
  int max_json_depth = 8;                // our messages nest at most 4 levels
  // An event seq may lie at most this far above the highest one stored for the device. An agent
  // counts up by one, so a bigger jump is a bug or an attack: stored, it would make every later
  // (lower) seq look already stored and be dropped.
  int64_t max_event_seq_jump = 1'000'000;
};
inline constexpr ProtocolLimits kProtocolLimits{};

// What an agent reports having done. Wire names: removed, remove_failed, install_refused,
// waiver_applied, bundle_applied, bundle_refused, monitor_would_remove.
enum class EventKind {
  kRemoved,
  kRemoveFailed,
  kInstallRefused,
  kWaiverApplied,
  kBundleApplied,
  kBundleRefused,
  kMonitorWouldRemove,
};
std::string_view EventKindName(EventKind kind);
Result<EventKind> ParseEventKind(std::string_view name);

struct DeviceEvent {
  // The agent's own counter, strictly increasing per device: the server stores each (device, seq)
  // once, so an agent may resend its queue after a lost answer without duplicating anything.
  int64_t seq = 0;
  UnixSeconds at = 0;
  EventKind kind = EventKind::kRemoved;
  std::string platform;  // "deb", "flatpak", ... (empty for bundle events)
  std::string app;       // the app's identifier (empty for bundle events)
  std::string rule_id;   // the deciding rule, if any
  std::string detail;    // free text: a failure's reason, the refused bundle's error, ...
};
Json EventToJson(const DeviceEvent& event);
Result<DeviceEvent> EventFromJson(const Json& json, std::string_view where);

// POST /v1/enroll
struct EnrollRequest {
  std::string token;  // the enrolment token as issued ("e-….<secret>")
  std::string hostname;
  std::string platform;  // "linux", "android", ...
  std::string agent_version;
};
Json ToJson(const EnrollRequest& request);
Result<EnrollRequest> ParseEnrollRequest(std::string_view body);

struct EnrollResponse {
  std::string device_id;
  std::string credential;  // "d-….<secret>": shown once, sent as "Authorization: Bearer <credential>"
  std::vector<std::string> policy_keys_pem;  // the policy public keys the device pins
  std::string group;                         // group the enrolment token put the device in, if any
  int64_t checkin_interval = 0;              // seconds
  int64_t longpoll_timeout = 0;              // seconds
  UnixSeconds server_time = 0;
};
Json ToJson(const EnrollResponse& response);
Result<EnrollResponse> ParseEnrollResponse(std::string_view body);

// POST /v1/checkin
struct CheckinRequest {
  int64_t applied_version = 0;  // version of the bundle the agent enforces (0: none yet)
  std::string rules_hash;       // its rules_hash (empty when none)
  std::string inventory_hash;   // InventoryHash of the apps installed now
  // The full inventory, sent when it changed since the server last acknowledged one or when the
  // server asked for it.
  std::optional<std::vector<policy::InstalledApp>> inventory;
  // CanonicalInventory(*inventory) when known: filled by ParseCheckinRequest (which computes it
  // to check inventory_hash) and by senders that computed the hash anyway; CheckinRequestBody
  // sends it as is. ToJson ignores it.
  std::string canonical_inventory;
  std::vector<DeviceEvent> events;  // sorted by seq
  std::string agent_version;
  bool monitor = false;  // the agent runs in monitor mode (reports, never acts)
};
Json ToJson(const CheckinRequest& request);
// The request as the body of POST /v1/checkin: ToJson(request).dump() in meaning, with the
// inventory written as its canonical text (canonical_inventory when set, else computed), which
// is much cheaper for a large inventory. Agents and the simulator send this.
std::string CheckinRequestBody(const CheckinRequest& request);
Result<CheckinRequest> ParseCheckinRequest(std::string_view body);

struct CheckinResponse {
  UnixSeconds server_time = 0;
  int64_t latest_version = 0;         // newest bundle version issued (0: none)
  std::optional<std::string> bundle;  // the signed envelope, when latest_version > applied_version
                                      // or rules_hash_mismatch
  bool send_inventory = false;        // the server has no inventory matching inventory_hash
  // The reported rules_hash is not the hash the server issued applied_version with: the device is
  // counted "mismatch", not compliant, until it reports the right one (apply `bundle`).
  bool rules_hash_mismatch = false;
  int64_t events_acked = 0;      // highest event seq the server has stored for this device
  int64_t checkin_interval = 0;  // seconds until the next periodic check-in
  int64_t longpoll_timeout = 0;
  // With a bundle: the key rotation statements (policy/rotation.h) that lead from any earlier
  // policy key to the one that signed it, oldest first. Absent when the key was never rotated.
  std::vector<std::string> key_rotations;
};
Json ToJson(const CheckinResponse& response);
Result<CheckinResponse> ParseCheckinResponse(std::string_view body);

// GET /v1/poll?version=N -> 200 with this body as soon as a version > N exists, else 204 after the
// server's long-poll timeout.
struct PollResponse {
  int64_t latest_version = 0;
  std::optional<std::string> bundle;
  std::vector<std::string> key_rotations;  // as in CheckinResponse
};
Json ToJson(const PollResponse& response);
Result<PollResponse> ParsePollResponse(std::string_view body);

// The inventory hash: SHA-256 (lowercase hex) of the canonical JSON array of the apps, sorted by
// (platform, id, version, signer_sha256, team_id), each app an object with "platform", "id" and
// whichever of "version", "signer_sha256", "team_id" are non-empty. Order-independent, so an
// agent and the server agree whatever order the package database lists things in.
std::string InventoryHash(std::span<const policy::InstalledApp> apps);
// The canonical JSON array text the hash is taken over (what the server stores).
std::string CanonicalInventory(std::span<const policy::InstalledApp> apps);
Json InventoryToJson(std::span<const policy::InstalledApp> apps);
Result<std::vector<policy::InstalledApp>> InventoryFromJsonArray(const Json& json, std::string_view where);

// {"error":{"code":CODE,"message":MESSAGE}}: every 4xx/5xx body, so clients can branch on `code`
// and show `message` to a person.
std::string ErrorBody(std::string_view code, std::string_view message);

// "Authorization: Bearer <credential>" -> the credential, or empty when the header is not that.
std::string_view BearerCredential(std::string_view authorization_header);

}  // namespace appban::protocol
