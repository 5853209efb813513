// The agent's side of the device protocol (docs/protocol.md): enrolment, check-in and the
// long-poll, over net::HttpClient pinned to the server's CA, plus the verification every received
// bundle goes through before anything acts on it.
//
// Where the agent keeps what enrolment taught it: the credential, the CA and the policy keys live
// in AgentState (state.h); the server URL, device id, group and the server's timing hints, which
// AgentState has no slot for, in `<state dir>/agent.json` (written atomically).
//
// Not thread-safe: one AgentClient per thread (the daemon gives the long-poll its own).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "appban/agent/state.h"
#include "appban/common/status.h"
#include "appban/net/client.h"
#include "appban/policy/bundle.h"
#include "appban/protocol/messages.h"

namespace appban::agent {

inline constexpr std::string_view kAgentVersion = "0.1.0";
inline constexpr std::string_view kEnrollmentFile = "agent.json";

// What enrolment recorded besides AgentState's items.
struct Enrollment {
  std::string server_url;
  std::string device_id;
  std::string group;               // the group the enrolment token put the device in ("" none)
  int64_t checkin_interval = 300;  // seconds, as last told by the server
  int64_t longpoll_timeout = 60;
};
Status WriteEnrollment(const std::string& state_dir, const Enrollment& enrollment);
Result<Enrollment> ReadEnrollment(const std::string& state_dir);

// SHA-256 (lowercase hex) of the DER of the first certificate in `pem`: the fingerprint the server
// prints on first start, for an out-of-band check of the CA file.
Result<std::string> CertificateFingerprint(std::string_view pem);

// The 64 lowercase hex digits of a SHA-256 fingerprint typed in any of the printed forms: the
// server's first-start banner ("SHA256 93:55:…"), OpenSSL's ("sha256 Fingerprint=93:55:…"), or
// plain hex in any case with or without colons. Anything else is InvalidArgument naming the problem.
Result<std::string> NormalizeSha256Fingerprint(std::string_view printed);

struct EnrollOptions {
  std::string server_url;
  std::string ca_pem;              // required for https
  std::string expected_ca_sha256;  // optional: refuse a CA file with another fingerprint
  std::string token;
  std::string hostname;  // default: gethostname()
  std::chrono::milliseconds timeout{30'000};
  // A fleet booting from one image enrols at once: for this long, an answer that says the server
  // did not take the request (429 with its Retry-After, 502/503/504) or a connection that could
  // not be made is retried with a growing, jittered pause. 0: one attempt.
  std::chrono::seconds retry_for{0};
};
// The pause before enrolment attempt `attempt` (1-based) after a refusal that asked for
// `retry_after_seconds` (0: none): at least that, otherwise 1, 2, 4 … 60 s, jittered by up to a
// quarter so a thousand machines do not come back in step.
std::chrono::milliseconds EnrollRetryPause(int attempt, int64_t retry_after_seconds, uint32_t jitter_seed);
// Presents the token once and stores the credential, the pinned CA and policy keys and the
// Enrollment. Refuses to enrol a state directory that already holds a credential.
Result<protocol::EnrollResponse> Enroll(AgentState& state, const EnrollOptions& options);

// The pinned policy keys stored in the state (one PEM block each, concatenated).
Result<std::vector<policy::PublicKey>> PinnedPolicyKeys(const AgentState& state);

struct ClientTimeouts {
  std::chrono::milliseconds connect{10'000};
  std::chrono::milliseconds request{20'000};  // a check-in
  // Added to the server's longpoll_timeout for a poll's read timeout (the server adds jitter).
  std::chrono::milliseconds poll_slack{15'000};
};

// An HTTP error answer from the server, as a Status: 401/403 are kPermissionDenied (the device
// must be re-enrolled; retrying will not help), 5xx and 429 kUnavailable, other 4xx
// kInvalidArgument; the message carries the server's error code and message.
Status StatusFromHttpError(const net::HttpResponse& response, std::string_view what);

class AgentClient {
 public:
  // Reads the credential and CA from `state` and the URL from agent.json.
  static Result<AgentClient> FromState(const AgentState& state, const ClientTimeouts& timeouts = {});

  Result<protocol::CheckinResponse> Checkin(const protocol::CheckinRequest& request);
  // POST /v1/unenroll: the server revokes this device's credential (audited "device.unenroll").
  Status Unenroll();
  // nullopt: the server had nothing newer within its long-poll timeout (204).
  Result<std::optional<protocol::PollResponse>> Poll(int64_t held_version, std::chrono::seconds longpoll_timeout);

  const Enrollment& enrollment() const { return enrollment_; }

 private:
  AgentClient(Enrollment enrollment, std::string credential, net::Url url, net::ClientOptions options,
              ClientTimeouts timeouts);

  Enrollment enrollment_;
  std::string credential_;
  net::Url url_;
  net::ClientOptions options_;
  ClientTimeouts timeouts_;
  std::optional<net::HttpClient> checkin_client_;
  std::optional<net::HttpClient> poll_client_;
  std::chrono::seconds poll_client_timeout_{0};
};

// VerifyBundle against the pinned keys, the held version (no rollback, no jump) and now (expiry);
// with `held_payload_sha256`, a bundle of the held version must be the held bundle itself.
Result<policy::VerifiedBundle> VerifyReceivedBundle(std::string_view envelope,
                                                    const std::vector<policy::PublicKey>& keys, int64_t held_version,
                                                    UnixSeconds now,
                                                    std::optional<std::string> held_payload_sha256 = std::nullopt);

}  // namespace appban::agent
