#include "appban/verify/rules_hash.h"

#include <string>

namespace appban::verify {

std::optional<store::RulesHashMismatch> CheckRulesHash(int64_t claimed_version, std::string_view reported_hash,
                                                       std::optional<std::string_view> issued_hash,
                                                       const std::optional<store::RulesHashMismatch>& before,
                                                       UnixSeconds now) {
  if (claimed_version == 0 && reported_hash.empty()) return std::nullopt;
  if (issued_hash && *issued_hash == reported_hash) return std::nullopt;
  store::RulesHashMismatch mismatch;
  mismatch.expected_hash = issued_hash ? std::string(*issued_hash) : std::string();
  mismatch.since = before ? before->since : now;
  return mismatch;
}

}  // namespace appban::verify
