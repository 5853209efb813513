// Match records: the part of a device's inventory that rule matching reads (platform, identifier,
// signer, team; not the version), stored beside the canonical inventory JSON so the server can
// re-evaluate a device against a new bundle without parsing that JSON. docs/architecture.md
// ("Compliance evaluation without the JSON") says why; docs/formats/match-records.md gives the
// layout:
//   record  = field(platform name) field(id) field(signer_sha256) field(team_id)
//   field   = decimal length ":" bytes        e.g. "3:deb6:wechat0:0:"
// Decoding is bounded (kMatchRecordLimits) and never reads past the text; anything malformed is
// kCorruption naming the offset, since the text comes from our own database. Pure; thread-safe.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "appban/common/status.h"
#include "appban/policy/evaluate.h"

namespace appban::store {

struct MatchRecordLimits {
  size_t max_records = 20000;     // the protocol's max_inventory_apps
  size_t max_field_bytes = 4096;  // identifiers are at most 256 bytes on the wire
  size_t max_text_bytes = 16 * 1024 * 1024;
};
inline constexpr MatchRecordLimits kMatchRecordLimits{};

// One decoded record; the views point into the text handed to ForEachMatchRecord.
struct MatchRecord {
  policy::Platform platform = policy::Platform::kAndroid;
  std::string_view id;
  std::string_view signer_sha256;
  std::string_view team_id;
};

std::string EncodeMatchRecords(std::span<const policy::InstalledApp> apps);

// Calls `visit` for each record in order. Stops at the first malformed byte with kCorruption
// (records before it were visited).
Status ForEachMatchRecord(std::string_view text, const std::function<void(const MatchRecord&)>& visit);

}  // namespace appban::store
