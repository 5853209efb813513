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

TEST(PolicyCatalog, CoverageByRulesMatchesAnAppByAnyOfItsIdentifiers) {
  Catalog catalog = Builtin();
  const CatalogEntry* tiktok = catalog.Find("ca-tiktok-2023");
  const CatalogEntry* wechat = catalog.Find("ca-wechat-kaspersky-2023");
  ASSERT_NE(tiktok, nullptr);
  ASSERT_NE(wechat, nullptr);
  Rule published;
  published.id = "our-tiktok";
  published.state = RuleState::kPublished;
  // One of TikTok's identifiers is enough, whatever its kind here.
  published.targets = {{TargetKind::kIosBundle, "com.ss.android.ugc.trill"}, {TargetKind::kDebPackage, "unrelated"}};
  Rule draft = published;
  draft.id = "a-draft";
  draft.state = RuleState::kDraft;
  draft.targets = {{TargetKind::kAndroidPackage, "com.zhiliaoapp.musically"}};
  Rule revoked = draft;
  revoked.id = "revoked";
  revoked.state = RuleState::kRevoked;
  revoked.source = "ca-wechat-kaspersky-2023";
  Rule adopted;
  adopted.id = "adopted";
  adopted.state = RuleState::kApproved;
  adopted.source = "ca-wechat-kaspersky-2023";
  adopted.targets = {{TargetKind::kVendor, "Tencent"}};

  auto coverage = CoverageByRules({tiktok, wechat}, {published, draft, revoked, adopted});
  ASSERT_EQ(coverage.size(), 2u);
  EXPECT_EQ(coverage[0].entry, tiktok);
  ASSERT_EQ(coverage[0].apps.size(), 1u);
  EXPECT_EQ(coverage[0].apps[0],
            (std::vector<RuleMatch>{{"a-draft", RuleState::kDraft}, {"our-tiktok", RuleState::kPublished}}));
  EXPECT_TRUE(coverage[0].adopted_as.empty());
  ASSERT_EQ(coverage[1].apps.size(), wechat->apps.size());
  for (const auto& matches : coverage[1].apps) EXPECT_TRUE(matches.empty()) << "a vendor target is not expanded";
  EXPECT_EQ(coverage[1].adopted_as, (std::vector<RuleMatch>{{"adopted", RuleState::kApproved}}))
      << "the revoked rule adopted from it is left out";
}

TEST(PolicyCatalog, JurisdictionByCodeOrNamePrefix) {
  Catalog catalog = Builtin();
  EXPECT_EQ(EntriesFor(catalog, "CA").size(), 3u);
  EXPECT_EQ(EntriesFor(catalog, "canada").size(), 3u);
  EXPECT_EQ(EntriesFor(catalog, "GB").size(), EntriesFor(catalog, "uk").size());
  EXPECT_FALSE(EntriesFor(catalog, "GB").empty());
}

TEST(PolicyCatalog, OtherPlatformsNeedAKnownPlatformAStatusAndASource) {
  auto parse = [](const std::string& other) {
    return ParseCatalog(R"([{"id":"xx-test","jurisdiction":"X","apps":[{"name":"A","android_packages":["a.b"],
        "id_status":"V","other_platforms":[)" +
                        other + "]}]}]");
  };
  auto good = parse(R"({"platform":"flatpak","id":"org.example.App","status":"B","source":"https://example.org/a"})");
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  const CatalogIdentifier& other = good->entries[0].apps[0].identifiers.back();
  EXPECT_EQ(other.kind, TargetKind::kFlatpakApp);
  EXPECT_FALSE(other.verified);
  EXPECT_EQ(other.source, "https://example.org/a");
  EXPECT_TRUE(good->entries[0].apps[0].identifiers.front().verified) << "the app's own V still holds";
  auto windows = parse(R"({"platform":"windows","id":"Tencent.WeChat","status":"V","source":"https://example.org"})");
  EXPECT_NE(windows.status().message().find("not one appban enforces"), std::string::npos)
      << windows.status().ToString();
  auto no_source = parse(R"({"platform":"deb","id":"kesl","status":"V"})");
  EXPECT_NE(no_source.status().message().find("needs an https:// source"), std::string::npos);
  auto odd_status = parse(R"({"platform":"deb","id":"kesl","status":"maybe","source":"https://example.org"})");
  EXPECT_NE(odd_status.status().message().find("use V or B"), std::string::npos);
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
  // The decision's own source first, then the sources that name the Linux packages.
  ASSERT_EQ(rule.references.size(), 3u);
  EXPECT_EQ(rule.references[0], entry->source_url);
  EXPECT_EQ(rule.references[1], "https://mail-archive.com/aur-general@lists.archlinux.org/msg01489.html");
  EXPECT_EQ(rule.references[2], "https://support.kaspersky.ru/kes4linux/11.2.0/en-us/all-in-one.htm");
  ASSERT_TRUE(rule.effective_at.has_value());
  EXPECT_EQ(FormatTimestamp(*rule.effective_at), "2023-10-30T00:00:00Z");
  // 1 + 4 Android packages, 1 + 1 iOS bundle ids, and on Linux 2 WeChat and 3 Kaspersky packages:
  // the rule reaches Linux workstations too (compliance would otherwise call them not applicable).
  EXPECT_EQ(rule.targets.size(), 12u);
  size_t deb = 0;
  for (const auto& target : rule.targets) {
    if (target.kind == TargetKind::kDebPackage) ++deb;
    // The WeChat Linux package names come from a packager's account, not Tencent: unverified.
    bool believed = target.value == "com.kaspersky.security.cloud" || target.value == "com.tencent.wechat" ||
                    target.value == "com.tencent.weixin";
    EXPECT_EQ(target.unverified, believed) << target.value;
  }
  EXPECT_EQ(deb, 5u);
  ASSERT_EQ(adoption->vendors.size(), 2u);
  // A free-text effective date is kept as the source wrote it.
  auto au = AdoptEntry(*catalog.Find("au-tiktok-2023"), Action::kRemove);
  ASSERT_TRUE(au.ok());
  EXPECT_FALSE(au->rule.effective_at.has_value());
  EXPECT_EQ(au->rule.effective_note, "as soon as practicable");
}

}  // namespace
}  // namespace appban::policy
