#include "appban/policy/catalog.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace appban::policy {
namespace {

// The adopted reference file: every expectation below can be read off it by eye.
Catalog Builtin() {
  auto catalog = LoadCatalogFile(std::string(APPBAN_SOURCE_DIR) + "/data/catalog/government-app-bans.json");
  EXPECT_TRUE(catalog.ok()) << catalog.status().ToString();
  return catalog.ok() ? *catalog : Catalog{};
}

const CatalogApp* FindApp(const CatalogEntry& entry, const std::string& name) {
  for (const auto& app : entry.apps) {
    if (app.name == name) return &app;
  }
  return nullptr;
}

TEST(PolicyCatalog, LoadsTheBuiltInCatalog) {
  Catalog catalog = Builtin();
  EXPECT_EQ(catalog.entries.size(), 25u);
  const CatalogEntry* entry = catalog.Find("ca-wechat-kaspersky-2023");
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->jurisdiction, "Canada (federal)");
  EXPECT_EQ(entry->apps.size(), 2u);
}

TEST(PolicyCatalog, PerIdentifierVerificationStatus) {
  Catalog catalog = Builtin();
  const CatalogApp* kaspersky = FindApp(*catalog.Find("ca-wechat-kaspersky-2023"), "Kaspersky suite");
  ASSERT_NE(kaspersky, nullptr);
  for (const auto& id : kaspersky->identifiers) {
    EXPECT_EQ(id.verified, id.value != "com.kaspersky.security.cloud") << id.value;
  }
  const CatalogApp* deepseek = FindApp(*catalog.Find("ca-deepseek-2025"), "DeepSeek");
  ASSERT_NE(deepseek, nullptr);
  for (const auto& id : deepseek->identifiers) EXPECT_EQ(id.verified, id.kind != TargetKind::kIosBundle);
  const CatalogApp* douyin = FindApp(*catalog.Find("tw-tiktok-2022"), "Douyin");
  ASSERT_NE(douyin, nullptr);
  for (const auto& id : douyin->identifiers) EXPECT_FALSE(id.verified);
}

TEST(PolicyCatalog, UnknownStatusWordingMarksEverythingUnverified) {
  auto catalog = ParseCatalog(R"([{"id":"xx-a","jurisdiction":"X","apps":[{"name":"A","android_packages":["a.b"],
      "ios_bundle_ids":["a.c"],"id_status":"mostly V"}]}])");
  ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
  for (const auto& id : catalog->entries[0].apps[0].identifiers) EXPECT_FALSE(id.verified);
}

TEST(PolicyCatalog, MalformedCatalogsAreRefusedWithTheReason) {
  EXPECT_FALSE(ParseCatalog("{}").ok());
  EXPECT_FALSE(ParseCatalog(R"([{"id":"a","apps":[{"name":"x","android_packages":[1]}]}])").ok());
  EXPECT_FALSE(ParseCatalog(R"([{"id":"a","apps":[]},{"id":"a","apps":[]}])").ok());
  EXPECT_FALSE(ParseCatalog(std::string(10000, '[')).ok());
}

TEST(PolicyCatalog, DiffCanadaAgainstAustraliaByApp) {
  // CA: TikTok, WeChat + Kaspersky, DeepSeek. AU: TikTok, DeepSeek, Kaspersky.
  auto diff = DiffJurisdictions(Builtin(), "CA", "AU");
  ASSERT_TRUE(diff.ok()) << diff.status().ToString();
  EXPECT_TRUE(diff->theirs_only.empty());
  ASSERT_EQ(diff->ours_only.size(), 1u);
  EXPECT_EQ(diff->ours_only[0].name, "WeChat");
  EXPECT_EQ(diff->both.size(), 3u);
  // Against France, France bans apps Canada does not (Instagram, Snapchat, ...).
  auto france = DiffJurisdictions(Builtin(), "ca", "France");
  ASSERT_TRUE(france.ok());
  auto has = [](const std::vector<DiffApp>& apps, const std::string& name) {
    return std::any_of(apps.begin(), apps.end(), [&](const DiffApp& a) { return a.name == name; });
  };
  EXPECT_TRUE(has(france->theirs_only, "Instagram"));
  EXPECT_TRUE(has(france->ours_only, "DeepSeek"));
  EXPECT_EQ(DiffJurisdictions(Builtin(), "CA", "ZZ").status().code(), StatusCode::kNotFound);
}

TEST(PolicyCatalog, JurisdictionByCodeOrNamePrefix) {
  Catalog catalog = Builtin();
  EXPECT_EQ(EntriesFor(catalog, "CA").size(), 3u);
  EXPECT_EQ(EntriesFor(catalog, "canada").size(), 3u);
  EXPECT_EQ(EntriesFor(catalog, "GB").size(), EntriesFor(catalog, "uk").size());
  EXPECT_FALSE(EntriesFor(catalog, "GB").empty());
}

TEST(PolicyCatalog, AdoptFillsRationaleAuthorityInstrumentAndKeepsUnverifiedMarks) {
  Catalog catalog = Builtin();
  const CatalogEntry* entry = catalog.Find("ca-wechat-kaspersky-2023");
  auto adoption = AdoptEntry(*entry, Action::kRemove);
  ASSERT_TRUE(adoption.ok()) << adoption.status().ToString();
  const Rule& rule = adoption->rule;
  EXPECT_EQ(rule.id, "ca-wechat-kaspersky-2023");
  EXPECT_EQ(rule.state, RuleState::kDraft);
  EXPECT_EQ(rule.rationale, entry->rationale);
  EXPECT_EQ(rule.authority, entry->authority);
  EXPECT_EQ(rule.instrument, entry->instrument);
  EXPECT_EQ(rule.references, std::vector<std::string>{entry->source_url});
  ASSERT_TRUE(rule.effective_at.has_value());
  EXPECT_EQ(FormatTimestamp(*rule.effective_at), "2023-10-30T00:00:00Z");
  // 1 + 4 Android packages, 1 + 1 iOS bundle ids.
  EXPECT_EQ(rule.targets.size(), 7u);
  for (const auto& target : rule.targets) {
    EXPECT_EQ(target.unverified, target.value == "com.kaspersky.security.cloud") << target.value;
  }
  ASSERT_EQ(adoption->vendors.size(), 2u);
  // A free-text effective date is kept as the source wrote it.
  auto au = AdoptEntry(*catalog.Find("au-tiktok-2023"), Action::kRemove);
  ASSERT_TRUE(au.ok());
  EXPECT_FALSE(au->rule.effective_at.has_value());
  EXPECT_EQ(au->rule.effective_note, "as soon as practicable");
}

}  // namespace
}  // namespace appban::policy
