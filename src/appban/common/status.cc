#include "appban/common/status.h"

namespace appban {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kInvalidArgument:
      return "invalid argument";
    case StatusCode::kNotRecognized:
      return "not recognised";
    case StatusCode::kCorruption:
      return "corrupt";
    case StatusCode::kTruncated:
      return "truncated";
    case StatusCode::kLimitExceeded:
      return "limit exceeded";
    case StatusCode::kNotFound:
      return "not found";
    case StatusCode::kAlreadyExists:
      return "already exists";
    case StatusCode::kPermissionDenied:
      return "permission denied";
    case StatusCode::kBadSignature:
      return "signature check failed";
    case StatusCode::kFailedPrecondition:
      return "failed precondition";
    case StatusCode::kUnavailable:
      return "unavailable";
    case StatusCode::kExpired:
      return "expired";
    case StatusCode::kUnsupported:
      return "unsupported";
    case StatusCode::kInternal:
      return "internal error";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out(StatusCodeName(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string prefixed(context);
  prefixed += ": ";
  prefixed += message_;
  return Status(code_, std::move(prefixed));
}

}  // namespace appban
