#include "appban/agent/agent_client.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <ctime>
#include <functional>
#include <memory>
#include <thread>

#include "appban/common/crypto.h"
#include "appban/common/file.h"
#include "appban/common/text.h"
#include "appban/net/retry_after.h"

namespace appban::agent {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr uint64_t kMaxEnrollmentFileBytes = 64 * 1024;

std::string EnrollmentPath(const std::string& state_dir) { return state_dir + "/" + std::string(kEnrollmentFile); }

std::string LocalHostname() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

Result<net::ClientOptions> ClientOptionsFor(const net::Url& url, const std::string& ca_pem,
                                            std::chrono::milliseconds connect, std::chrono::milliseconds read) {
  net::ClientOptions options;
  if (url.tls) {
    if (ca_pem.empty()) return Status::InvalidArgument("an https server needs the CA to pin (--ca FILE)");
    options.pinned_ca_pem = ca_pem;
  }
  options.connect_timeout = connect;
  options.read_timeout = read;
  // A bundle is at most policy::kPolicyLimits.max_bundle_bytes; a check-in answer carries one.
  options.max_response_bytes = 80ull << 20;
  return options;
}

// True when the server cannot have enrolled anyone: no connection was made, or it answered that
// it did not take the request. A timeout waiting for an answer is not retried: the enrolment may
// have happened, and a retry would enrol the machine twice (or find a single-use token used).
bool EnrollmentNotTaken(const Result<net::HttpResponse>& response) {
  if (!response.ok()) {
    const std::string& message = response.status().message();
    // Name resolution (the network is not up yet at boot), connecting, or a TLS handshake that
    // timed out: nothing was sent. A certificate that fails verification is not retried.
    return response.status().code() == StatusCode::kUnavailable &&
           (message.starts_with("cannot resolve") || message.starts_with("connection refused") ||
            message.starts_with("cannot connect") || message.starts_with("timed out connecting") ||
            message.starts_with("timed out in the TLS handshake"));
  }
  return response->status == 429 || response->status == 502 || response->status == 503 || response->status == 504;
}

int64_t RetryAfterSeconds(const net::HttpResponse& response) {
  constexpr int64_t kLongestRetryAfter = 3600;
  for (const auto& [name, value] : response.headers) {
    if (name != "retry-after") continue;
    if (auto wait = net::ParseRetryAfter(value, std::time(nullptr))) {
      return std::min<int64_t>(wait->count(), kLongestRetryAfter);
    }
  }
  return 0;
}

Result<net::HttpResponse> PresentEnrollment(const net::Url& url, const net::ClientOptions& client_options,
                                            const protocol::EnrollRequest& request, const EnrollOptions& options) {
  const auto deadline = std::chrono::steady_clock::now() + options.retry_for;
  const std::string body = protocol::ToJson(request).dump();
  const uint32_t jitter_seed =
      static_cast<uint32_t>(::getpid()) ^ static_cast<uint32_t>(std::hash<std::string>{}(request.hostname));
  for (int attempt = 1;; ++attempt) {
    net::HttpClient client(url, client_options);
    Result<net::HttpResponse> response =
        client.Request("POST", protocol::kEnrollPath, body, {{"content-type", "application/json"}});
    if (!EnrollmentNotTaken(response)) return response;
    auto pause = EnrollRetryPause(attempt, response.ok() ? RetryAfterSeconds(*response) : 0, jitter_seed);
    if (std::chrono::steady_clock::now() + pause > deadline) return response;
    std::this_thread::sleep_for(pause);
  }
}

}  // namespace

std::chrono::milliseconds EnrollRetryPause(int attempt, int64_t retry_after_seconds, uint32_t jitter_seed) {
  constexpr int64_t kLongestBackoffMs = 60'000;
  int64_t backoff_ms = 1000LL << std::min(attempt - 1, 6);
  backoff_ms = std::min(backoff_ms, kLongestBackoffMs);
  int64_t base_ms = std::max(backoff_ms, retry_after_seconds * 1000);
  // A cheap mix of the seed and the attempt: spread, not secrecy.
  uint32_t mixed = (jitter_seed ^ static_cast<uint32_t>(attempt)) * 2654435761u;
  int64_t jitter_ms = static_cast<int64_t>(mixed % static_cast<uint32_t>(base_ms / 4 + 1));
  return std::chrono::milliseconds(base_ms + jitter_ms);
}

Status WriteEnrollment(const std::string& state_dir, const Enrollment& enrollment) {
  Json json = {{"server", enrollment.server_url},
               {"device_id", enrollment.device_id},
               {"group", enrollment.group},
               {"checkin_interval", enrollment.checkin_interval},
               {"longpoll_timeout", enrollment.longpoll_timeout}};
  return WriteFileAtomically(EnrollmentPath(state_dir), json.dump(2) + "\n", 0600);
}

Result<Enrollment> ReadEnrollment(const std::string& state_dir) {
  std::string path = EnrollmentPath(state_dir);
  auto text = ReadFileToString(path, kMaxEnrollmentFileBytes);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) {
      return Status::NotFound("this device is not enrolled: " + state_dir +
                              " holds no enrolment record (agent.json); enrol it with `appban agent enroll --server "
                              "URL --token TOKEN`");
    }
    // The file's own error already names its path.
    return Status(text.status().code(), text.status().message() + " (the enrolment record)");
  }
  Json json = Json::parse(*text, nullptr, false);
  if (!json.is_object() || !json.contains("server") || !json["server"].is_string() || !json.contains("device_id") ||
      !json["device_id"].is_string()) {
    return Status::Corruption(path + ": not an enrolment record (needs \"server\" and \"device_id\")");
  }
  Enrollment enrollment;
  enrollment.server_url = json["server"].get<std::string>();
  enrollment.device_id = json["device_id"].get<std::string>();
  if (json.contains("group") && json["group"].is_string()) enrollment.group = json["group"].get<std::string>();
  if (json.contains("checkin_interval") && json["checkin_interval"].is_number_integer()) {
    enrollment.checkin_interval = json["checkin_interval"].get<int64_t>();
  }
  if (json.contains("longpoll_timeout") && json["longpoll_timeout"].is_number_integer()) {
    enrollment.longpoll_timeout = json["longpoll_timeout"].get<int64_t>();
  }
  return enrollment;
}

Result<std::string> CertificateFingerprint(std::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  if (!bio) return Status::Internal("BIO_new_mem_buf failed");
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (!cert) return Status::InvalidArgument("the CA file holds no PEM certificate");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (X509_digest(cert.get(), EVP_sha256(), digest, &length) != 1) return Status::Internal("X509_digest failed");
  return HexLower(Bytes(digest, length));
}

Status StatusFromHttpError(const net::HttpResponse& response, std::string_view what) {
  std::string detail = std::to_string(response.status);
  Json body = Json::parse(response.body, nullptr, false);
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    detail += " " + StringOr(body["error"], "code") + ": " + StringOr(body["error"], "message");
  }
  std::string message = std::string(what) + ": server answered " + detail;
  if (response.status == 401 || response.status == 403) return Status::PermissionDenied(message);
  if (response.status >= 500 || response.status == 429) return Status::Unavailable(message);
  return Status::InvalidArgument(message);
}

Result<std::string> NormalizeSha256Fingerprint(std::string_view printed) {
  // Accept the fingerprint the way people copy it: the server's banner ("SHA256 93:55:…"),
  // OpenSSL's ("sha256 Fingerprint=93:55:…"), or plain hex in either case, with or without colons.
  std::string text = AsciiLower(printed);
  for (std::string_view prefix :
       {"sha256 fingerprint=", "sha-256 fingerprint=", "sha256:", "sha-256:", "sha256", "sha-256"}) {
    std::string_view view = text;
    while (!view.empty() && (view.front() == ' ' || view.front() == '\t')) view.remove_prefix(1);
    if (view.starts_with(prefix)) {
      text = std::string(view.substr(prefix.size()));
      break;
    }
  }
  std::string hex;
  for (char c : text) {
    if (c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return Status::InvalidArgument("--ca-sha256: '" + std::string(printed) +
                                     "' is not a SHA-256 fingerprint (64 hex digits, colons optional)");
    }
    hex.push_back(c);
  }
  if (hex.size() != 64) {
    return Status::InvalidArgument("--ca-sha256: a SHA-256 fingerprint has 64 hex digits, '" + std::string(printed) +
                                   "' has " + std::to_string(hex.size()));
  }
  return hex;
}

Result<protocol::EnrollResponse> Enroll(AgentState& state, const EnrollOptions& options) {
  APPBAN_ASSIGN_OR_RETURN(auto existing, state.Read(StateItem::kCredential));
  if (existing.has_value()) {
    return Status::AlreadyExists("agent state " + state.directory() +
                                 " already holds a device credential; use a new state directory to enrol again");
  }
  APPBAN_ASSIGN_OR_RETURN(net::Url url, net::ParseUrl(options.server_url));
  if (!options.expected_ca_sha256.empty()) {
    APPBAN_ASSIGN_OR_RETURN(std::string fingerprint, CertificateFingerprint(options.ca_pem));
    APPBAN_ASSIGN_OR_RETURN(std::string expected, NormalizeSha256Fingerprint(options.expected_ca_sha256));
    if (fingerprint != expected) {
      return Status::PermissionDenied("the CA file's SHA-256 fingerprint is " + fingerprint + ", not the expected " +
                                      expected);
    }
  }
  APPBAN_ASSIGN_OR_RETURN(net::ClientOptions client_options,
                          ClientOptionsFor(url, options.ca_pem, options.timeout, options.timeout));
  protocol::EnrollRequest request{options.token, options.hostname.empty() ? LocalHostname() : options.hostname, "linux",
                                  std::string(kAgentVersion)};
  APPBAN_ASSIGN_OR_RETURN(net::HttpResponse response, PresentEnrollment(url, client_options, request, options));
  if (response.status != 201 && response.status != 200) return StatusFromHttpError(response, "enrol");
  APPBAN_ASSIGN_OR_RETURN(protocol::EnrollResponse enrolled, protocol::ParseEnrollResponse(response.body));
  if (enrolled.policy_keys_pem.empty()) return Status::Corruption("enrol: the server named no policy key to pin");
  std::string keys;
  for (const auto& pem : enrolled.policy_keys_pem) {
    APPBAN_RETURN_IF_ERROR(policy::ParsePublicKeyPem(pem).status());
    keys += pem;
    if (!keys.empty() && keys.back() != '\n') keys += '\n';
  }
  // Keys and CA first, the credential last: a directory with a credential is a complete enrolment.
  APPBAN_RETURN_IF_ERROR(state.Write(StateItem::kPolicyKeys, keys));
  if (url.tls) APPBAN_RETURN_IF_ERROR(state.Write(StateItem::kServerCa, options.ca_pem));
  Enrollment enrollment{options.server_url, enrolled.device_id, enrolled.group, enrolled.checkin_interval,
                        enrolled.longpoll_timeout};
  APPBAN_RETURN_IF_ERROR(WriteEnrollment(state.directory(), enrollment));
  APPBAN_RETURN_IF_ERROR(state.Write(StateItem::kCredential, enrolled.credential));
  return enrolled;
}

Result<std::vector<policy::PublicKey>> PinnedPolicyKeys(const AgentState& state) {
  APPBAN_ASSIGN_OR_RETURN(auto text, state.Read(StateItem::kPolicyKeys));
  if (!text.has_value()) return Status::FailedPrecondition("no pinned policy keys (the agent is not enrolled)");
  std::vector<policy::PublicKey> keys;
  constexpr std::string_view kEnd = "-----END PUBLIC KEY-----";
  size_t start = 0;
  while (true) {
    size_t end = text->find(kEnd, start);
    if (end == std::string::npos) break;
    end += kEnd.size();
    APPBAN_ASSIGN_OR_RETURN(policy::PublicKey key,
                            policy::ParsePublicKeyPem(std::string_view(*text).substr(start, end - start)));
    keys.push_back(std::move(key));
    start = end;
  }
  if (keys.empty()) return Status::Corruption("the pinned policy key file holds no public key");
  return keys;
}

AgentClient::AgentClient(Enrollment enrollment, std::string credential, net::Url url, net::ClientOptions options,
                         ClientTimeouts timeouts)
    : enrollment_(std::move(enrollment)),
      credential_(std::move(credential)),
      url_(std::move(url)),
      options_(std::move(options)),
      timeouts_(timeouts) {}

Result<AgentClient> AgentClient::FromState(const AgentState& state, const ClientTimeouts& timeouts) {
  APPBAN_ASSIGN_OR_RETURN(Enrollment enrollment, ReadEnrollment(state.directory()));
  APPBAN_ASSIGN_OR_RETURN(auto credential, state.Read(StateItem::kCredential));
  if (!credential.has_value()) return Status::FailedPrecondition("the agent is not enrolled (no credential)");
  APPBAN_ASSIGN_OR_RETURN(auto ca, state.Read(StateItem::kServerCa));
  APPBAN_ASSIGN_OR_RETURN(net::Url url, net::ParseUrl(enrollment.server_url));
  APPBAN_ASSIGN_OR_RETURN(net::ClientOptions options,
                          ClientOptionsFor(url, ca.value_or(""), timeouts.connect, timeouts.request));
  while (!credential->empty() && (credential->back() == '\n' || credential->back() == '\r')) credential->pop_back();
  return AgentClient(std::move(enrollment), std::move(*credential), std::move(url), std::move(options), timeouts);
}

Result<protocol::CheckinResponse> AgentClient::Checkin(const protocol::CheckinRequest& request) {
  if (!checkin_client_) checkin_client_.emplace(url_, options_);
  Headers headers = {{"authorization", "Bearer " + credential_}, {"content-type", "application/json"}};
  auto response =
      checkin_client_->Request("POST", protocol::kCheckinPath, protocol::CheckinRequestBody(request), headers);
  if (!response.ok()) {
    checkin_client_.reset();  // a fresh connection next time
    return Status(response.status().code(), "check-in: " + response.status().message());
  }
  if (response->status != 200) return StatusFromHttpError(*response, "check-in");
  auto parsed = protocol::ParseCheckinResponse(response->body);
  if (!parsed.ok()) return Status::Corruption("check-in answer: " + parsed.status().message());
  if (parsed->checkin_interval > 0) enrollment_.checkin_interval = parsed->checkin_interval;
  if (parsed->longpoll_timeout > 0) enrollment_.longpoll_timeout = parsed->longpoll_timeout;
  return parsed;
}

Status AgentClient::Unenroll() {
  if (!checkin_client_) checkin_client_.emplace(url_, options_);
  Headers headers = {{"authorization", "Bearer " + credential_}, {"content-type", "application/json"}};
  auto response = checkin_client_->Request("POST", "/v1/unenroll", "{}", headers);
  if (!response.ok()) return Status(response.status().code(), "unenrol: " + response.status().message());
  if (response->status != 200) return StatusFromHttpError(*response, "unenrol");
  return Status::Ok();
}

Result<std::optional<protocol::PollResponse>> AgentClient::Poll(int64_t held_version,
                                                                std::chrono::seconds longpoll_timeout) {
  if (!poll_client_ || poll_client_timeout_ != longpoll_timeout) {
    net::ClientOptions options = options_;
    options.read_timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(longpoll_timeout) + timeouts_.poll_slack;
    poll_client_.emplace(url_, options);
    poll_client_timeout_ = longpoll_timeout;
  }
  Headers headers = {{"authorization", "Bearer " + credential_}};
  auto response = poll_client_->Request(
      "GET", std::string(protocol::kPollPath) + "?version=" + std::to_string(held_version), {}, headers);
  if (!response.ok()) {
    poll_client_.reset();
    return Status(response.status().code(), "poll: " + response.status().message());
  }
  if (response->status == 204) return std::optional<protocol::PollResponse>();
  if (response->status != 200) return StatusFromHttpError(*response, "poll");
  auto parsed = protocol::ParsePollResponse(response->body);
  if (!parsed.ok()) return Status::Corruption("poll answer: " + parsed.status().message());
  return std::optional<protocol::PollResponse>(std::move(*parsed));
}

Result<policy::VerifiedBundle> VerifyReceivedBundle(std::string_view envelope,
                                                    const std::vector<policy::PublicKey>& keys, int64_t held_version,
                                                    UnixSeconds now, std::optional<std::string> held_payload_sha256) {
  policy::VerifyOptions options;
  options.trusted_keys = keys;
  if (held_version > 0) options.held_version = held_version;
  options.now = now;
  options.held_payload_sha256 = std::move(held_payload_sha256);
  return policy::VerifyBundle(envelope, options);
}

}  // namespace appban::agent
