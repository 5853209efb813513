// Errors as values. A Status is OK or a kind plus a message; Result<T> is a T or a non-OK Status.
// Every module boundary in appban returns one of these; exceptions thrown by third-party
// libraries are caught at the edge and converted. Both types are cheap to move and not
// thread-safe to mutate concurrently (like any value).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace appban {

enum class StatusCode {
  kOk,
  kInvalidArgument,  // the caller passed something unusable
  kNotRecognized,    // bytes are not the format at all (no ZIP end record, no DEX magic)
  kCorruption,       // bytes do not follow the format they claim
  kTruncated,        // bytes end before the format says they should
  kLimitExceeded,    // a named safety limit was hit (zip bomb, huge count, ...)
  kNotFound,
  kAlreadyExists,
  kPermissionDenied,
  kBadSignature,  // a signature does not verify: the signed bytes were altered or signed by another key
  kFailedPrecondition,
  kUnavailable,  // a dependency (file system, network peer) is not reachable now
  kExpired,      // something time-limited is past its validity (a policy bundle, a token)
  kUnsupported,
  kInternal,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotRecognized(std::string m) { return {StatusCode::kNotRecognized, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status Truncated(std::string m) { return {StatusCode::kTruncated, std::move(m)}; }
  static Status LimitExceeded(std::string m) { return {StatusCode::kLimitExceeded, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status PermissionDenied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
  static Status BadSignature(std::string m) { return {StatusCode::kBadSignature, std::move(m)}; }
  static Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status Expired(std::string m) { return {StatusCode::kExpired, std::move(m)}; }
  static Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "truncated: central directory ends at 1234 but file has 1000 bytes"
  std::string ToString() const;

  // Returns a copy whose message is prefixed with context ("classes2.dex: ").
  Status WithContext(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : value_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(value_).ok()) value_ = Status::Internal("Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(value_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(value_);
  }
  // REQUIRES: ok()
  T& value() & { return std::get<T>(value_); }
  const T& value() const& { return std::get<T>(value_); }
  T&& value() && { return std::get<T>(std::move(value_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> value_;
};

}  // namespace appban

// Propagates a non-OK Status from an expression returning Status.
#define APPBAN_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::appban::Status appban_status_ = (expr);        \
    if (!appban_status_.ok()) return appban_status_; \
  } while (0)

#define APPBAN_CONCAT_INNER(a, b) a##b
#define APPBAN_CONCAT(a, b) APPBAN_CONCAT_INNER(a, b)
// APPBAN_ASSIGN_OR_RETURN(auto x, Compute()); declares x from a Result or returns its Status.
#define APPBAN_ASSIGN_OR_RETURN(lhs, expr) \
  APPBAN_ASSIGN_OR_RETURN_IMPL(APPBAN_CONCAT(appban_result_, __LINE__), lhs, expr)
#define APPBAN_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
