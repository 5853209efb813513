#include "apple_emulator.h"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/evp.h>

#include <ctime>
#include <deque>
#include <thread>

#include "appban/common/json.h"
#include "appban/common/mutex.h"
#include "appban/common/thread_annotations.h"
#include "appban/net/client.h"
#include "appban/net/http.h"
#include "appban/net/server.h"
#include "emulator_util.h"

namespace appban::testing {
namespace {

constexpr size_t kMaxBody = 8 << 20;

std::string Base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

net::HttpResponse Text(int status, std::string body) {
  net::HttpResponse response;
  response.status = status;
  response.content_type = "text/plain";
  response.body = std::move(body);
  return response;
}

// The content of a CMS SignedData whose signature verifies (the signer's chain is not checked
// against a trust store: an MDM-installed profile need not chain to a trusted root).
std::optional<std::string> VerifiedCmsContent(const std::string& der) {
  BIO* in = BIO_new_mem_buf(der.data(), static_cast<int>(der.size()));
  CMS_ContentInfo* cms = d2i_CMS_bio(in, nullptr);
  BIO_free(in);
  if (cms == nullptr) return std::nullopt;
  BIO* out = BIO_new(BIO_s_mem());
  std::optional<std::string> content;
  if (CMS_verify(cms, nullptr, nullptr, nullptr, out, CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) == 1) {
    char* data = nullptr;
    long length = BIO_get_mem_data(out, &data);
    content = std::string(data, static_cast<size_t>(length));
  }
  BIO_free(out);
  CMS_ContentInfo_free(cms);
  return content;
}

plist::Value ErrorChain(int64_t code, const std::string& domain, const std::string& description) {
  plist::Value entry = plist::Value::MakeDict();
  entry.Set("ErrorCode", plist::Value::Integer(code));
  entry.Set("ErrorDomain", plist::Value::String(domain));
  entry.Set("LocalizedDescription", plist::Value::String(description));
  entry.Set("USEnglishDescription", plist::Value::String(description));
  return plist::Value::MakeArray({std::move(entry)});
}

struct QueuedCommand {
  std::string uuid;
  plist::Value command;  // the Command dict
};

}  // namespace

struct AppleEmulator::Server {
  const AppleEmulatorOptions& options;
  const AppleSchemas& schemas;

  LoopbackServer loop;  // stopped by the emulator's destructor, before the state it serves

  mutable Mutex mutex;
  std::string webhook_url GUARDED_BY(mutex);
  std::map<std::string, EmulatedAppleDevice> devices GUARDED_BY(mutex);
  std::map<std::string, std::deque<QueuedCommand>> queues GUARDED_BY(mutex);
  std::vector<std::string> log GUARDED_BY(mutex);
  int failures GUARDED_BY(mutex) = 0;
  int failure_status GUARDED_BY(mutex) = 503;
  int refused GUARDED_BY(mutex) = 0;

  Server(const AppleEmulatorOptions& o, const AppleSchemas& s) : options(o), schemas(s) {}

  net::HttpResponse Handle(const net::HttpRequest& request) {
    MutexLock lock(mutex);
    if (failures > 0) {
      --failures;
      return Text(failure_status, "injected failure");
    }
    const std::string expected = "Basic " + Base64("nanomdm:" + options.api_key);
    if (request.Header("authorization") != expected) {
      net::HttpResponse response = Text(401, "Unauthorized\n");
      response.headers.emplace_back("WWW-Authenticate", "Basic realm=\"nanomdm\"");
      return response;
    }
    constexpr std::string_view kPrefix = "/v1/enqueue/";
    if (request.method != "PUT" && request.method != "POST") return Text(405, "method not allowed");
    if (request.path.rfind(kPrefix, 0) != 0 || request.path.size() == kPrefix.size()) return Text(404, "not found");
    Result<plist::Value> document = plist::Parse(AsBytes(request.body));
    if (!document.ok()) {
      ++refused;
      log.push_back("REFUSED (not a plist)");
      return Text(400, "decoding command: " + document.status().message());
    }
    std::vector<std::string> errors = schemas.ValidateCommand(*document);
    if (!errors.empty()) {
      ++refused;
      std::string all;
      for (const std::string& error : errors) all += error + "\n";
      log.push_back("REFUSED " + all);
      return Text(400, "invalid command:\n" + all);
    }
    const std::string uuid = *document->FindString("CommandUUID");
    const plist::Value& command = *document->Find("Command");
    const std::string request_type = *command.FindString("RequestType");
    Json status = Json::object();
    int queued = 0;
    std::string ids = request.path.substr(kPrefix.size());
    size_t start = 0;
    while (start <= ids.size()) {
      size_t end = ids.find(',', start);
      if (end == std::string::npos) end = ids.size();
      const std::string id = ids.substr(start, end - start);
      start = end + 1;
      if (!devices.count(id)) {
        status[id] = {{"command_error", "enrollment not found: " + id}};
        continue;
      }
      bool duplicate = false;
      for (const QueuedCommand& waiting : queues[id]) duplicate = duplicate || waiting.uuid == uuid;
      if (duplicate) {
        status[id] = {{"command_error", "command UUID already queued: " + uuid}};
        continue;
      }
      queues[id].push_back({uuid, command});
      log.push_back(request_type + " → " + id);
      ++queued;
      if (request.QueryParam("nopush").value_or("") != "1") {
        status[id] = {{"push_result", "EMU-PUSH-" + uuid.substr(0, 8)}};
      }
    }
    net::HttpResponse response;
    Json body = {{"status", status}, {"command_uuid", uuid}, {"request_type", request_type}};
    if (queued == 0) body["command_error"] = "no enrollment took the command";
    response.status = queued == 0 ? 500 : (queued == static_cast<int>(status.size()) ? 200 : 207);
    response.body = body.dump();
    return response;
  }

  // Runs one command on the device; the result plist it sends back.
  plist::Value Run(EmulatedAppleDevice& device, const QueuedCommand& queued) REQUIRES(mutex) {
    const plist::Value& command = queued.command;
    const std::string request_type = *command.FindString("RequestType");
    plist::Value result = plist::Value::MakeDict();
    result.Set("CommandUUID", plist::Value::String(queued.uuid));
    result.Set("UDID", plist::Value::String(device.udid));
    auto fail = [&](int64_t code, const std::string& domain, const std::string& description) {
      result.Set("Status", plist::Value::String("Error"));
      result.Set("ErrorChain", ErrorChain(code, domain, description));
      return result;
    };
    const AppleTarget target{"iOS", device.os_version, device.supervised};
    if (auto why = NotSupported(schemas.Command(request_type)->supported(), target)) {
      return fail(12021, "MCMDMErrorDomain", request_type + " " + *why);
    }
    if (request_type == "InstallProfile") {
      const plist::Value* payload = command.Find("Payload");
      std::optional<std::string> content = VerifiedCmsContent(*payload->AsData());
      if (!content) return fail(4001, "MCProfileErrorDomain", "The profile's signature is not valid.");
      Result<plist::Value> profile = plist::Parse(AsBytes(*content));
      if (!profile.ok()) return fail(1000, "MCProfileErrorDomain", "The profile cannot be read.");
      std::vector<std::string> errors = schemas.ValidateProfile(*profile);
      if (!errors.empty()) return fail(1001, "MCProfileErrorDomain", "The profile is malformed: " + errors.front());
      const std::string identifier = *profile->FindString("PayloadIdentifier");
      device.profiles[identifier] = *profile->FindString("PayloadUUID");
      // The restrictions of the installed profile replace those of the profile it replaces.
      device.blocked.clear();
      const AppleSchema* access = schemas.Profile("com.apple.applicationaccess");
      for (const plist::Value& item : *profile->FindArray("PayloadContent")) {
        const std::string* type = item.FindString("PayloadType");
        if (!type || *type != "com.apple.applicationaccess") continue;
        if (access->KeyUnsupported("blockedAppBundleIDs", target)) continue;  // ignored by this device
        for (const std::string& id : item.FindStrings("blockedAppBundleIDs")) device.blocked.insert(id);
      }
    } else if (request_type == "RemoveProfile") {
      const std::string identifier = *command.FindString("Identifier");
      if (!device.profiles.erase(identifier)) {
        return fail(1001, "MCMDMErrorDomain", "The profile \"" + identifier + "\" is not installed.");
      }
      device.blocked.clear();
    } else if (request_type == "RemoveApplication") {
      const std::string identifier = *command.FindString("Identifier");
      auto app = std::find_if(device.apps.begin(), device.apps.end(),
                              [&](const EmulatedApp& a) { return a.bundle_id == identifier; });
      if (app == device.apps.end()) {
        return fail(12029, "MCInstallationErrorDomain", "The app \"" + identifier + "\" is not installed.");
      }
      const bool unmanaged_removable = device.supervised && !(VersionLess(device.os_version, "26.0"));
      if (!app->managed && !unmanaged_removable) {
        return fail(12026, "MCInstallationErrorDomain", "The app \"" + identifier + "\" is not managed.");
      }
      device.apps.erase(app);
    } else if (request_type == "InstalledApplicationList") {
      plist::Value::Array list;
      for (const EmulatedApp& app : device.apps) {
        plist::Value item = plist::Value::MakeDict();
        item.Set("Identifier", plist::Value::String(app.bundle_id));
        item.Set("Name", plist::Value::String(app.name));
        item.Set("ShortVersion", plist::Value::String(app.version));
        item.Set("Version", plist::Value::String(app.version));
        list.push_back(std::move(item));
      }
      result.Set("InstalledApplicationList", plist::Value::MakeArray(std::move(list)));
    } else if (request_type == "DeviceInformation") {
      plist::Value answers = plist::Value::MakeDict();
      for (const std::string& query : command.FindStrings("Queries")) {
        if (query == "IsSupervised") answers.Set(query, plist::Value::Boolean(device.supervised));
        if (query == "OSVersion") answers.Set(query, plist::Value::String(device.os_version));
        if (query == "ProductName") answers.Set(query, plist::Value::String(device.product_name));
        if (query == "Model") answers.Set(query, plist::Value::String("MQ9T3LL/A"));
        if (query == "SerialNumber") answers.Set(query, plist::Value::String(device.serial_number));
        if (query == "DeviceName") answers.Set(query, plist::Value::String(device.device_name));
        if (query == "UDID") answers.Set(query, plist::Value::String(device.udid));
      }
      result.Set("QueryResponses", std::move(answers));
    } else {
      return fail(12021, "MCMDMErrorDomain", "Unsupported command " + request_type);
    }
    result.Set("Status", plist::Value::String("Acknowledged"));
    return result;
  }

  static bool VersionLess(const std::string& a, const std::string& b) {
    AppleTarget target{"iOS", a, true};
    SupportedOs support{{"iOS", OsSupport{b, "", std::nullopt}}};
    return NotSupported(support, target).has_value();
  }
};

Result<std::unique_ptr<AppleEmulator>> AppleEmulator::Start(AppleEmulatorOptions options) {
  APPBAN_ASSIGN_OR_RETURN(AppleSchemas schemas, AppleSchemas::Load(options.spec_dir));
  std::unique_ptr<AppleEmulator> emulator(new AppleEmulator(std::move(options), std::move(schemas)));
  Server& server = *emulator->server_;
  {
    MutexLock lock(server.mutex);
    server.webhook_url = emulator->options_.webhook_url;
  }
  APPBAN_RETURN_IF_ERROR(server.loop.Start(
      net::ServerOptions{}, kMaxBody, [&server](const net::HttpRequest& request) { return server.Handle(request); }));
  return emulator;
}

AppleEmulator::AppleEmulator(AppleEmulatorOptions options, AppleSchemas schemas)
    : options_(std::move(options)), schemas_(std::move(schemas)) {
  server_ = std::make_unique<Server>(options_, schemas_);
}

AppleEmulator::~AppleEmulator() { server_->loop.Stop(); }

std::string AppleEmulator::base_url() const { return "http://127.0.0.1:" + std::to_string(server_->loop.port()); }

void AppleEmulator::set_webhook_url(const std::string& url) {
  MutexLock lock(server_->mutex);
  server_->webhook_url = url;
}

void AppleEmulator::PutDevice(EmulatedAppleDevice device) {
  MutexLock lock(server_->mutex);
  std::string udid = device.udid;
  server_->devices[udid] = std::move(device);
}

EmulatedAppleDevice AppleEmulator::GetDevice(const std::string& udid) const {
  MutexLock lock(server_->mutex);
  auto it = server_->devices.find(udid);
  return it == server_->devices.end() ? EmulatedAppleDevice{} : it->second;
}

Result<int> AppleEmulator::CheckIn(const std::string& udid) {
  std::vector<std::string> events;
  std::string url;
  {
    MutexLock lock(server_->mutex);
    url = server_->webhook_url;
    auto device = server_->devices.find(udid);
    if (device == server_->devices.end()) return Status::NotFound("no emulated device " + udid);
    std::deque<QueuedCommand>& queue = server_->queues[udid];
    while (!queue.empty()) {
      QueuedCommand queued = std::move(queue.front());
      queue.pop_front();
      const std::string request_type = *queued.command.FindString("RequestType");
      plist::Value result = server_->Run(device->second, queued);
      if (*result.FindString("Status") == "Acknowledged") {
        // The emulated device answers as Apple's schema says a device does.
        plist::Value answer = plist::Value::MakeDict();
        for (const auto& [key, value] : *result.AsDict()) {
          if (key != "CommandUUID" && key != "Status" && key != "UDID") answer.Set(key, value);
        }
        std::vector<std::string> errors = server_->schemas.Command(request_type)->ValidateResponse(answer);
        if (!errors.empty()) return Status::Internal("emulator answer to " + request_type + ": " + errors.front());
      }
      std::string raw = plist::WriteXml(result);
      for (const std::string& broken : device->second.corrupt_answers) {
        if (broken == request_type) raw = raw.substr(0, raw.size() / 2);  // cut mid-document
      }
      Json event = {{"topic", "mdm.Connect"},
                    {"event_id", queued.uuid},
                    {"created_at", "2026-12-05T05:00:00Z"},
                    {"acknowledge_event",
                     {{"udid", udid},
                      {"status", *result.FindString("Status")},
                      {"command_uuid", queued.uuid},
                      {"raw_payload", Base64(raw)}}}};
      events.push_back(event.dump());
    }
  }
  if (!url.empty()) {
    Result<net::Url> parsed = net::ParseUrl(url.substr(0, url.find('/', url.find("//") + 2)));
    if (!parsed.ok()) return parsed.status();
    const std::string path = url.substr(url.find('/', url.find("//") + 2));
    net::HttpClient client(*parsed, {});
    for (const std::string& event : events) {
      APPBAN_ASSIGN_OR_RETURN(net::HttpResponse response,
                              client.Request("POST", path, event, {{"content-type", "application/json"}}));
      if (response.status / 100 != 2) {
        return Status::Unavailable("webhook answered " + std::to_string(response.status) + ": " + response.body);
      }
    }
  }
  return static_cast<int>(events.size());
}

Result<int> AppleEmulator::CheckInAll() {
  std::vector<std::string> udids;
  {
    MutexLock lock(server_->mutex);
    for (const auto& [udid, device] : server_->devices) udids.push_back(udid);
  }
  int total = 0;
  for (const std::string& udid : udids) {
    APPBAN_ASSIGN_OR_RETURN(int ran, CheckIn(udid));
    total += ran;
  }
  return total;
}

void AppleEmulator::FailNext(int count, int status) {
  MutexLock lock(server_->mutex);
  server_->failures = count;
  server_->failure_status = status;
}

std::vector<std::string> AppleEmulator::queued_request_types(const std::string& udid) const {
  MutexLock lock(server_->mutex);
  std::vector<std::string> out;
  auto it = server_->queues.find(udid);
  if (it == server_->queues.end()) return out;
  for (const QueuedCommand& queued : it->second) out.push_back(*queued.command.FindString("RequestType"));
  return out;
}

std::vector<std::string> AppleEmulator::request_log() const {
  MutexLock lock(server_->mutex);
  return server_->log;
}

int AppleEmulator::refused() const {
  MutexLock lock(server_->mutex);
  return server_->refused;
}

}  // namespace appban::testing
