// What Apple devices answer to appban's commands, as an MDM with a command queue hands it on.
// NanoMDM (like MicroMDM) posts each result a device sends to its webhook URL as a JSON event —
// {"topic": "mdm.Connect", "event_id", "created_at", "acknowledge_event": {"udid" or
// "enrollment_id", "status", "command_uuid", "raw_payload": base64 of the device's plist}} — and
// stores nothing it could be asked for later. appban's receiver (`appban mdm apple-webhook`)
// feeds each event to RecordWebhookEvent, which keeps the latest of each kind of answer per device
// in DATA_DIR/mdm/apple-NAME-results.json; the connector reads that file.
//
// The file is a snapshot plus an append-only journal beside it (apple-NAME-results.json.journal):
// each recorded answer is one JSON line appended in one write and fsynced before the MDM is told
// 200, so an answer is never half-written nor the whole file rewritten per answer. A line a crash
// cut short (no newline) is skipped on reading. When the journal reaches
// kMaxResultsJournalBytes it is folded into the snapshot (written atomically) and
// emptied; folding is newest-answer-wins per field, so folding a record twice changes nothing.
//
// Everything here parses untrusted bytes: events, base64 and plists are bounded (mdm/limits.h),
// and a malformed answer is an error naming what is wrong, never a crash.
//
// Pure functions, plus Load/Save of the results file. Thread-safe; the results file has one
// writer (the receiver), which RecordWebhookEvent assumes; readers may read while it writes.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/status.h"
#include "appban/common/time.h"
#include "appban/mdm/limits.h"
#include "appban/plist/plist.h"

namespace appban::mdm {

// One command result as a device sent it.
struct CommandResult {
  std::string enrollment_id;  // the event's enrollment_id, else its udid
  std::string command_uuid;   // empty for "Idle" (the device has nothing more to do)
  std::string status;         // Acknowledged, Error, CommandFormatError, NotNow, Idle
  std::string error;          // ErrorChain summarised ("12025 MCProfileErrorDomain: …") when Error
  plist::Value payload;       // the whole plist the device sent
};

// Parses a webhook event body. Events other than command results (check-ins: mdm.Authenticate,
// mdm.TokenUpdate, …) give kNotFound, which a receiver acknowledges and ignores.
Result<CommandResult> ParseWebhookEvent(std::string_view body, const MdmLimits& limits = kMdmLimits);
// The result of a plist a device sent (the raw_payload), for callers that have it directly.
Result<CommandResult> ParseCommandResult(std::string_view plist_bytes, const MdmLimits& limits = kMdmLimits);

struct AppleApp {
  std::string identifier;  // bundle id
  std::string name;
  std::string version;  // ShortVersion when reported, else Version
};
// InstalledApplicationList's answer. Items without an Identifier (macOS may omit it) are skipped.
Result<std::vector<AppleApp>> ParseInstalledApplicationList(const plist::Value& payload,
                                                            const MdmLimits& limits = kMdmLimits);

struct AppleDeviceInfo {
  std::optional<bool> supervised;
  std::string os_version;    // "17.5.1"
  std::string product_name;  // "iPhone15,2", "iPad13,4"
  std::string model;
  std::string serial_number;
  std::string device_name;
};
// DeviceInformation's answer (QueryResponses).
Result<AppleDeviceInfo> ParseDeviceInformation(const plist::Value& payload);

// The receiver's record of what devices answered.
struct DeviceResults {
  std::optional<AppleDeviceInfo> info;
  UnixSeconds info_at = 0;
  std::optional<std::vector<AppleApp>> apps;
  UnixSeconds apps_at = 0;
  UnixSeconds last_seen = 0;
};
struct RecordedCommand {
  std::string device;
  std::string status;
  std::string error;
  UnixSeconds at = 0;
};
struct ResultsFile {
  std::map<std::string, DeviceResults, std::less<>> devices;
  std::map<std::string, RecordedCommand, std::less<>> commands;  // by CommandUUID
};

// The snapshot at `path` with its journal folded in; missing files are empty.
Result<ResultsFile> LoadResultsFile(const std::string& path);
// Replaces the snapshot atomically (the journal is left as it is).
Status SaveResultsFile(const std::string& path, const ResultsFile& results);
std::string ResultsJournalPath(const std::string& path);  // path + ".journal"

// Folds one result into `results`: the command's status; for an Acknowledged
// InstalledApplicationList or DeviceInformation, the device's apps or information. A payload that
// does not parse is an error and changes nothing.
Status RecordResult(ResultsFile& results, const CommandResult& result, UnixSeconds now,
                    const MdmLimits& limits = kMdmLimits);
// ParseWebhookEvent + RecordResult, appended to the journal of `path` (synced; compacted when it
// outgrows its limit). kNotFound for events that are not command results (nothing recorded).
inline constexpr uint64_t kMaxResultsJournalBytes = 16ull << 20;
Status RecordWebhookEvent(const std::string& path, std::string_view body, UnixSeconds now,
                          uint64_t max_journal_bytes = kMaxResultsJournalBytes);

// Standard base64 with padding (RFC 4648 §4), as Go's encoding/json writes a []byte and HTTP
// basic auth encodes credentials. Decoding refuses whitespace and bad lengths.
std::string Base64Encode(std::string_view bytes);
Result<std::string> Base64Decode(std::string_view text);

// "17.5.1" → {17, 5, 1}; fewer parts are zeros. nullopt when not dotted numbers.
std::optional<std::vector<int>> ParseOsVersion(std::string_view text);
// a < b, comparing dotted versions numerically.
bool OsVersionBefore(std::string_view a, std::string_view b);

}  // namespace appban::mdm
