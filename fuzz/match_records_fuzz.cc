// Fuzzes the match-records decoder (store/match_records.h): any bytes are decoded or refused with
// a clear error, never a crash or a read past the text. Every decoded record must re-encode to
// exactly the bytes it was decoded from (the format has one spelling per record).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "appban/store/match_records.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string reencoded;
  auto status = appban::store::ForEachMatchRecord(text, [&](const appban::store::MatchRecord& record) {
    appban::policy::InstalledApp app{record.platform, std::string(record.id), "", std::string(record.signer_sha256),
                                     std::string(record.team_id)};
    reencoded += appban::store::EncodeMatchRecords({&app, 1});
  });
  if (!status.ok()) {
    if (status.message().empty()) __builtin_trap();
    if (!text.starts_with(reencoded)) __builtin_trap();
    return 0;
  }
  if (reencoded != text) __builtin_trap();
  return 0;
}
