#include "appban/mdm/apple_results.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>
#include <vector>

#include "appban/common/file.h"

namespace appban::mdm {
namespace {

constexpr std::string_view kResultsFormat = "appban.mdm-apple-results/1";
constexpr size_t kMaxErrorText = 500;

std::string StringMember(const plist::Value& dict, std::string_view key) {
  const std::string* value = dict.FindString(key);
  return value ? *value : std::string();
}

// "12025 MCProfileErrorDomain: The profile is not signed" for each ErrorChain entry, joined.
std::string SummariseErrorChain(const plist::Value& payload) {
  const plist::Value::Array* chain = payload.FindArray("ErrorChain");
  if (chain == nullptr) return "";
  std::string out;
  for (const plist::Value& entry : *chain) {
    if (!entry.is_dict()) continue;
    std::string part;
    if (const plist::Value* code = entry.Find("ErrorCode"); code && code->AsInteger()) {
      part += std::to_string(*code->AsInteger()) + " ";
    }
    part += StringMember(entry, "ErrorDomain");
    std::string description = StringMember(entry, "USEnglishDescription");
    if (description.empty()) description = StringMember(entry, "LocalizedDescription");
    if (!description.empty()) part += ": " + description;
    out += (out.empty() ? "" : "; ") + part;
  }
  return out.substr(0, kMaxErrorText);
}

Json InfoToJson(const AppleDeviceInfo& info) {
  Json out = {{"os_version", info.os_version},
              {"product_name", info.product_name},
              {"model", info.model},
              {"serial_number", info.serial_number},
              {"device_name", info.device_name}};
  out["supervised"] = info.supervised ? Json(*info.supervised) : Json();
  return out;
}

Result<AppleDeviceInfo> InfoFromJson(const Json& json) {
  if (!json.is_object()) return Status::Corruption("info is not an object");
  AppleDeviceInfo info;
  info.os_version = StringOr(json, "os_version");
  info.product_name = StringOr(json, "product_name");
  info.model = StringOr(json, "model");
  info.serial_number = StringOr(json, "serial_number");
  info.device_name = StringOr(json, "device_name");
  if (auto supervised = json.find("supervised"); supervised != json.end() && supervised->is_boolean()) {
    info.supervised = supervised->get<bool>();
  }
  return info;
}

Result<int64_t> IntMember(const Json& json, const char* key, std::string_view where) {
  auto it = json.find(key);
  if (it == json.end() || !it->is_number_integer()) {
    return Status::Corruption(std::string(where) + "." + key + " is missing");
  }
  return it->get<int64_t>();
}

}  // namespace

Result<CommandResult> ParseCommandResult(std::string_view plist_bytes, const MdmLimits& limits) {
  plist::Limits plist_limits;
  plist_limits.max_input_bytes = limits.max_webhook_event_bytes;
  plist_limits.max_depth = 32;
  Result<plist::Value> payload = plist::Parse(AsBytes(plist_bytes), plist_limits);
  if (!payload.ok()) return Status::Corruption("the device's answer is not a plist: " + payload.status().message());
  if (!payload->is_dict()) return Status::Corruption("the device's answer is not a plist dictionary");
  CommandResult result;
  result.status = StringMember(*payload, "Status");
  if (result.status.empty()) return Status::Corruption("the device's answer has no Status");
  result.command_uuid = StringMember(*payload, "CommandUUID");
  if (result.command_uuid.empty() && result.status != "Idle") {
    return Status::Corruption("the device's answer has no CommandUUID");
  }
  result.enrollment_id = StringMember(*payload, "UDID");
  if (result.enrollment_id.empty()) result.enrollment_id = StringMember(*payload, "EnrollmentID");
  if (result.status == "Error" || result.status == "CommandFormatError") result.error = SummariseErrorChain(*payload);
  result.payload = std::move(*payload);
  return result;
}

Result<CommandResult> ParseWebhookEvent(std::string_view body, const MdmLimits& limits) {
  APPBAN_ASSIGN_OR_RETURN(Json event, ParseJsonBounded(body, limits.max_webhook_event_bytes, 16, "webhook event"));
  if (!event.is_object()) return Status::Corruption("webhook event is not a JSON object");
  // A member of the wrong type is a malformed event, not an exception (Json::value throws on it).
  auto topic_member = event.find("topic");
  const std::string topic =
      topic_member != event.end() && topic_member->is_string() ? topic_member->get<std::string>() : "";
  auto acknowledge = event.find("acknowledge_event");
  if (topic != "mdm.Connect" || acknowledge == event.end() || !acknowledge->is_object()) {
    return Status::NotFound("webhook event \"" + topic.substr(0, 64) + "\" is not a command result");
  }
  auto raw = acknowledge->find("raw_payload");
  if (raw == acknowledge->end() || !raw->is_string()) return Status::Corruption("acknowledge_event has no raw_payload");
  APPBAN_ASSIGN_OR_RETURN(std::string plist_bytes, Base64Decode(raw->get_ref<const std::string&>()));
  APPBAN_ASSIGN_OR_RETURN(CommandResult result, ParseCommandResult(plist_bytes, limits));
  // The MDM's own view of who answered wins over the plist's (the MDM authenticated the device).
  auto id_member = acknowledge->find("enrollment_id");
  std::string id = id_member != acknowledge->end() && id_member->is_string() ? id_member->get<std::string>() : "";
  if (id.empty()) id = StringOr(*acknowledge, "udid");
  if (id.empty()) id = result.enrollment_id;
  if (id.empty()) return Status::Corruption("webhook event names no device (udid, enrollment_id)");
  if (id.size() > 256) return Status::Corruption("webhook event's device id is too long");
  result.enrollment_id = std::move(id);
  return result;
}

Result<std::vector<AppleApp>> ParseInstalledApplicationList(const plist::Value& payload, const MdmLimits& limits) {
  const plist::Value::Array* list = payload.FindArray("InstalledApplicationList");
  if (list == nullptr)
    return Status::Corruption("InstalledApplicationList answer has no InstalledApplicationList array");
  if (list->size() > limits.max_apps_per_device) {
    return Status::LimitExceeded("InstalledApplicationList answer lists more than " +
                                 std::to_string(limits.max_apps_per_device) + " apps");
  }
  std::vector<AppleApp> apps;
  for (const plist::Value& item : *list) {
    if (!item.is_dict()) return Status::Corruption("an InstalledApplicationList item is not a dictionary");
    AppleApp app;
    app.identifier = StringMember(item, "Identifier");
    if (app.identifier.empty()) continue;
    app.name = StringMember(item, "Name");
    app.version = StringMember(item, "ShortVersion");
    if (app.version.empty()) app.version = StringMember(item, "Version");
    apps.push_back(std::move(app));
  }
  return apps;
}

Result<AppleDeviceInfo> ParseDeviceInformation(const plist::Value& payload) {
  const plist::Value* responses = payload.Find("QueryResponses");
  if (responses == nullptr || !responses->is_dict()) {
    return Status::Corruption("DeviceInformation answer has no QueryResponses dictionary");
  }
  AppleDeviceInfo info;
  if (const plist::Value* supervised = responses->Find("IsSupervised"); supervised != nullptr) {
    if (!supervised->AsBoolean()) return Status::Corruption("DeviceInformation IsSupervised is not a boolean");
    info.supervised = *supervised->AsBoolean();
  }
  info.os_version = StringMember(*responses, "OSVersion");
  if (!info.os_version.empty() && !ParseOsVersion(info.os_version)) {
    return Status::Corruption("DeviceInformation OSVersion \"" + info.os_version.substr(0, 32) + "\" is not a version");
  }
  info.product_name = StringMember(*responses, "ProductName");
  info.model = StringMember(*responses, "Model");
  info.serial_number = StringMember(*responses, "SerialNumber");
  info.device_name = StringMember(*responses, "DeviceName");
  return info;
}

namespace {

Result<ResultsFile> ResultsFromJson(const Json& json, const std::string& where) {
  if (!json.is_object() || StringOr(json, "format") != kResultsFormat) {
    return Status::Corruption(where + ": not an " + std::string(kResultsFormat) + " document");
  }
  ResultsFile results;
  auto devices = json.find("devices");
  auto commands = json.find("commands");
  if (devices == json.end() || !devices->is_object() || commands == json.end() || !commands->is_object()) {
    return Status::Corruption(where + ": devices/commands missing");
  }
  for (const auto& [id, entry] : devices->items()) {
    if (!entry.is_object()) return Status::Corruption(where + ": devices." + id + " is not an object");
    DeviceResults device;
    APPBAN_ASSIGN_OR_RETURN(device.last_seen, IntMember(entry, "last_seen", "devices." + id));
    if (auto info = entry.find("info"); info != entry.end()) {
      APPBAN_ASSIGN_OR_RETURN(device.info, InfoFromJson(*info));
      APPBAN_ASSIGN_OR_RETURN(device.info_at, IntMember(entry, "info_at", "devices." + id));
    }
    if (auto apps = entry.find("apps"); apps != entry.end()) {
      if (!apps->is_array()) return Status::Corruption(where + ": devices." + id + ".apps is not an array");
      std::vector<AppleApp> list;
      for (const Json& app : *apps) {
        if (!app.is_object()) return Status::Corruption(where + ": devices." + id + ".apps has a non-object");
        list.push_back({StringOr(app, "id"), StringOr(app, "name"), StringOr(app, "version")});
      }
      device.apps = std::move(list);
      APPBAN_ASSIGN_OR_RETURN(device.apps_at, IntMember(entry, "apps_at", "devices." + id));
    }
    results.devices.emplace(id, std::move(device));
  }
  for (const auto& [uuid, entry] : commands->items()) {
    if (!entry.is_object()) return Status::Corruption(where + ": commands." + uuid + " is not an object");
    RecordedCommand command{StringOr(entry, "device"), StringOr(entry, "status"), StringOr(entry, "error"), 0};
    APPBAN_ASSIGN_OR_RETURN(command.at, IntMember(entry, "at", "commands." + uuid));
    results.commands.emplace(uuid, std::move(command));
  }
  return results;
}

Json ResultsToJson(const ResultsFile& results) {
  Json devices = Json::object();
  for (const auto& [id, device] : results.devices) {
    Json entry = {{"last_seen", device.last_seen}};
    if (device.info) {
      entry["info"] = InfoToJson(*device.info);
      entry["info_at"] = device.info_at;
    }
    if (device.apps) {
      Json apps = Json::array();
      for (const AppleApp& app : *device.apps) {
        apps.push_back({{"id", app.identifier}, {"name", app.name}, {"version", app.version}});
      }
      entry["apps"] = std::move(apps);
      entry["apps_at"] = device.apps_at;
    }
    devices[id] = std::move(entry);
  }
  Json commands = Json::object();
  for (const auto& [uuid, command] : results.commands) {
    Json entry = {{"device", command.device}, {"status", command.status}, {"at", command.at}};
    if (!command.error.empty()) entry["error"] = command.error;
    commands[uuid] = std::move(entry);
  }
  return {{"format", kResultsFormat}, {"devices", std::move(devices)}, {"commands", std::move(commands)}};
}

// The oldest command results go first (the connector needs only recent ones).
void BoundCommands(ResultsFile& results, size_t max_commands) {
  if (results.commands.size() <= max_commands) return;
  std::vector<std::pair<UnixSeconds, std::string>> by_age;
  for (const auto& [uuid, command] : results.commands) by_age.emplace_back(command.at, uuid);
  std::sort(by_age.begin(), by_age.end());
  for (size_t i = 0; results.commands.size() > max_commands; ++i) results.commands.erase(by_age[i].second);
}

// Folds `delta` (journal records) into `into`, the newer answer winning field by field, so that
// folding a record twice, or an older record after a newer one, changes nothing.
void MergeResults(ResultsFile& into, ResultsFile delta) {
  for (auto& [id, update] : delta.devices) {
    DeviceResults& device = into.devices[id];
    device.last_seen = std::max(device.last_seen, update.last_seen);
    if (update.info && (!device.info || update.info_at >= device.info_at)) {
      device.info = std::move(update.info);
      device.info_at = update.info_at;
    }
    if (update.apps && (!device.apps || update.apps_at >= device.apps_at)) {
      device.apps = std::move(update.apps);
      device.apps_at = update.apps_at;
    }
  }
  for (auto& [uuid, command] : delta.commands) {
    auto it = into.commands.find(uuid);
    if (it == into.commands.end()) {
      into.commands.emplace(uuid, std::move(command));
    } else if (command.at >= it->second.at) {
      it->second = std::move(command);
    }
  }
}

// Reads the journal's complete records (a last line without its newline is a record a crash cut
// short: it was never acknowledged, and is skipped).
Result<std::vector<ResultsFile>> ReadJournal(const std::string& path) {
  std::vector<ResultsFile> records;
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0 && errno == ENOENT) return records;
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kMdmLimits.max_results_file_bytes));
  size_t start = 0, line = 1;
  for (size_t end = text.find('\n'); end != std::string::npos; end = text.find('\n', start), ++line) {
    const std::string where = path + ":" + std::to_string(line);
    APPBAN_ASSIGN_OR_RETURN(Json json, ParseJsonBounded(std::string_view(text).substr(start, end - start),
                                                        kMdmLimits.max_webhook_event_bytes, 16, where));
    APPBAN_ASSIGN_OR_RETURN(ResultsFile record, ResultsFromJson(json, where));
    records.push_back(std::move(record));
    start = end + 1;
  }
  return records;
}

// Appends `line` to the journal in one write and syncs it to disk.
Status AppendToJournal(const std::string& path, const std::string& line) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::Unavailable(path + ": " + std::strerror(errno));
  size_t written = 0;
  while (written < line.size()) {
    ssize_t n = ::write(fd, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string reason = std::strerror(errno);
      ::close(fd);
      return Status::Unavailable(path + ": " + reason);
    }
    written += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced) return Status::Unavailable(path + ": fsync failed");
  return Status::Ok();
}

}  // namespace

std::string ResultsJournalPath(const std::string& path) { return path + ".journal"; }

Result<ResultsFile> LoadResultsFile(const std::string& path) {
  // The journal is read before the snapshot: a compaction in between leaves a snapshot that
  // already holds what the journal held, and folding it again changes nothing.
  APPBAN_ASSIGN_OR_RETURN(std::vector<ResultsFile> journal, ReadJournal(ResultsJournalPath(path)));
  ResultsFile results;
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0 || errno != ENOENT) {
    APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kMdmLimits.max_results_file_bytes));
    APPBAN_ASSIGN_OR_RETURN(Json json, ParseJsonBounded(text, kMdmLimits.max_results_file_bytes, 16, path));
    APPBAN_ASSIGN_OR_RETURN(results, ResultsFromJson(json, path));
  }
  for (ResultsFile& record : journal) MergeResults(results, std::move(record));
  BoundCommands(results, kMdmLimits.max_recorded_commands);
  return results;
}

Status SaveResultsFile(const std::string& path, const ResultsFile& results) {
  return WriteFileAtomically(path, ResultsToJson(results).dump(1, ' ', false, Json::error_handler_t::replace) + "\n",
                             0600);
}

Status RecordResult(ResultsFile& results, const CommandResult& result, UnixSeconds now, const MdmLimits& limits) {
  DeviceResults update = results.devices[result.enrollment_id];
  update.last_seen = now;
  if (result.status == "Acknowledged") {
    if (result.payload.Find("InstalledApplicationList") != nullptr) {
      APPBAN_ASSIGN_OR_RETURN(update.apps, ParseInstalledApplicationList(result.payload, limits));
      update.apps_at = now;
    }
    if (result.payload.Find("QueryResponses") != nullptr) {
      APPBAN_ASSIGN_OR_RETURN(update.info, ParseDeviceInformation(result.payload));
      update.info_at = now;
    }
  }
  results.devices[result.enrollment_id] = std::move(update);
  if (!result.command_uuid.empty()) {
    if (result.command_uuid.size() > 128) return Status::Corruption("CommandUUID is too long");
    results.commands[result.command_uuid] = {result.enrollment_id, result.status, result.error, now};
    BoundCommands(results, limits.max_recorded_commands);
  }
  return Status::Ok();
}

Status RecordWebhookEvent(const std::string& path, std::string_view body, UnixSeconds now, uint64_t max_journal_bytes) {
  APPBAN_ASSIGN_OR_RETURN(CommandResult result, ParseWebhookEvent(body));
  ResultsFile record;
  APPBAN_RETURN_IF_ERROR(RecordResult(record, result, now));
  const std::string journal = ResultsJournalPath(path);
  APPBAN_RETURN_IF_ERROR(
      AppendToJournal(journal, ResultsToJson(record).dump(-1, ' ', false, Json::error_handler_t::replace) + "\n"));
  struct stat info {};
  if (::stat(journal.c_str(), &info) != 0 || static_cast<uint64_t>(info.st_size) < max_journal_bytes) {
    return Status::Ok();
  }
  // Compaction: the snapshot with the journal folded in replaces the old one (atomically) before
  // the journal is emptied; a crash in between leaves records that fold in again harmlessly.
  APPBAN_ASSIGN_OR_RETURN(ResultsFile results, LoadResultsFile(path));
  APPBAN_RETURN_IF_ERROR(SaveResultsFile(path, results));
  if (::truncate(journal.c_str(), 0) != 0) return Status::Unavailable(journal + ": " + std::strerror(errno));
  return Status::Ok();
}

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                               reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(length));
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return Status::Corruption("raw_payload is not base64 (length)");
  std::string out(text.size() / 4 * 3, '\0');
  if (text.empty()) return out;
  int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                               reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (length < 0) return Status::Corruption("raw_payload is not base64");
  size_t padding = 0;
  if (text.back() == '=') ++padding;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++padding;
  out.resize(static_cast<size_t>(length) - padding);
  return out;
}

std::optional<std::vector<int>> ParseOsVersion(std::string_view text) {
  std::vector<int> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('.', start);
    if (end == std::string_view::npos) end = text.size();
    int value = 0;
    auto [ptr, error] = std::from_chars(text.data() + start, text.data() + end, value);
    if (error != std::errc() || ptr != text.data() + end || end == start || parts.size() >= 4) return std::nullopt;
    parts.push_back(value);
    start = end + 1;
  }
  return parts;
}

bool OsVersionBefore(std::string_view a, std::string_view b) {
  std::vector<int> x = ParseOsVersion(a).value_or(std::vector<int>{}),
                   y = ParseOsVersion(b).value_or(std::vector<int>{});
  x.resize(4, 0);
  y.resize(4, 0);
  return x < y;
}

}  // namespace appban::mdm
