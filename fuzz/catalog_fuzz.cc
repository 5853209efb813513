// Fuzzes policy::ParseCatalog (the government-app-bans.json shape) and what users do with a parsed
// catalog: list by jurisdiction, diff two jurisdictions, and adopt every entry as a draft rule.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "appban/policy/catalog.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto catalog = appban::policy::ParseCatalog(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!catalog.ok()) return 0;
  size_t total = 0;
  for (std::string_view query : {"ca", "us", "gb", "Canada", "", "a"}) {
    total += appban::policy::EntriesFor(*catalog, query).size();
  }
  for (auto [ours, theirs] :
       {std::pair<std::string_view, std::string_view>{"ca", "us"}, {"Canada", "gb"}, {"", "ca"}}) {
    auto diff = appban::policy::DiffJurisdictions(*catalog, ours, theirs);
    if (diff.ok()) total += diff->both.size() + diff->ours_only.size() + diff->theirs_only.size();
  }
  for (const auto& entry : catalog->entries) {
    if (catalog->Find(entry.id) == nullptr) __builtin_trap();  // every parsed entry must be findable
    auto adoption = appban::policy::AdoptEntry(entry, appban::policy::Action::kRemove);
    if (adoption.ok()) {
      // An adopted rule must pass the same validation as a hand-written one.
      if (!appban::policy::ValidateRule(adoption->rule).ok()) __builtin_trap();
      total += adoption->vendors.size();
    }
  }
  return total == 0xdeadbeef;  // keep `total` observable
}
