// Whether a device enforces the bundle version it claims. A check-in names the version the device
// applied and that bundle's rules_hash; the server issued each version with one rules_hash (the
// hash of its policy content, signed inside the bundle), so a different hash means the device
// enforces something else under that version number — a tampered or forged agent, a damaged
// state directory, a bundle from another server — and nothing it reports about the rules can be
// trusted until it reports the right hash (docs/protocol.md, "Compliance"). Pure functions;
// thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "appban/common/time.h"
#include "appban/store/fleet.h"

namespace appban::verify {

// The verdict on one check-in's claim. `issued_hash`: the rules_hash of `claimed_version` as this
// server issued it, nullopt when it issued no such version. Version 0 with an empty hash (nothing
// applied yet) matches. A mismatch keeps `before`'s `since` while the device goes on mismatching,
// so the record says when the trouble began; nullopt: the hash matches.
std::optional<store::RulesHashMismatch> CheckRulesHash(int64_t claimed_version, std::string_view reported_hash,
                                                       std::optional<std::string_view> issued_hash,
                                                       const std::optional<store::RulesHashMismatch>& before,
                                                       UnixSeconds now);

}  // namespace appban::verify
