#include "appban/policy/evaluate.h"

#include <gtest/gtest.h>

#include "appban/policy/bundle.h"

namespace appban::policy {
namespace {

constexpr UnixSeconds kNow = 1700000000;  // 2023-11-14
const std::string kVendorKey(64, 'a');
const std::string kOtherKey(64, 'b');

Target T(TargetKind kind, const std::string& value) { return *MakeTarget(kind, value); }

Rule MakeRule(const std::string& id, Action action, std::vector<Target> targets) {
  Rule rule;
  rule.id = id;
  rule.title = "ban " + id;
  rule.action = action;
  rule.targets = std::move(targets);
  rule.state = RuleState::kPublished;
  return rule;
}

Waiver MakeWaiver(const std::string& id, const std::string& rule, WaiverSubject kind, const std::string& subject,
                  UnixSeconds expires) {
  Waiver waiver;
  waiver.id = id;
  waiver.rule_id = rule;
  waiver.subject_kind = kind;
  waiver.subject = subject;
  waiver.justification = "needed for liaison work";
  waiver.approved_by = "ciso";
  waiver.created_at = kNow - 1000;
  waiver.expires_at = expires;
  return waiver;
}

PolicyIndex Index(std::vector<Rule> rules, std::vector<Waiver> waivers = {}, std::vector<Vendor> vendors = {}) {
  BundleInputs inputs{std::move(rules), std::move(waivers), std::move(vendors), 1, kNow - 100, kNow + 86400};
  auto bundle = CompileBundle(inputs);
  EXPECT_TRUE(bundle.ok()) << bundle.status().ToString();
  auto index = PolicyIndex::Build(*bundle);
  EXPECT_TRUE(index.ok()) << index.status().ToString();
  return std::move(*index);
}

InstalledApp Android(const std::string& package, const std::string& signer = "") {
  return InstalledApp{Platform::kAndroid, package, "1.0", signer, ""};
}

const DeviceContext kDevice{"phone-1", {"ministers", "ottawa"}};

TEST(PolicyEvaluate, BansByPackageName) {
  auto index = Index({MakeRule("wechat", Action::kRemove, {T(TargetKind::kAndroidPackage, "com.tencent.mm")})});
  AppDecision d = index.Evaluate(Android("com.tencent.mm"), kDevice, kNow);
  EXPECT_EQ(d.verdict, Verdict::kRemove);
  EXPECT_EQ(d.rule_id, "wechat");
  EXPECT_NE(d.matched_by.find("com.tencent.mm"), std::string::npos);
  EXPECT_EQ(index.Evaluate(Android("com.tencent.mmx"), kDevice, kNow).verdict, Verdict::kAllowed);
  // The same identifier on another platform is another app.
  EXPECT_EQ(index.Evaluate(InstalledApp{Platform::kIos, "com.tencent.mm", "", "", ""}, kDevice, kNow).verdict,
            Verdict::kAllowed);
}

TEST(PolicyEvaluate, EachPlatformIdentifierMatchesOnlyItsPlatform) {
  auto index = Index({MakeRule("r", Action::kBlock,
                               {T(TargetKind::kIosBundle, "com.tencent.xin"), T(TargetKind::kDebPackage, "kesl"),
                                T(TargetKind::kFlatpakApp, "com.example.App"), T(TargetKind::kSnapName, "tiktok")})});
  EXPECT_EQ(index.Evaluate({Platform::kIos, "com.tencent.xin", "", "", ""}, kDevice, kNow).verdict,
            Verdict::kBlockInstall);
  EXPECT_EQ(index.Evaluate({Platform::kDeb, "kesl", "", "", ""}, kDevice, kNow).verdict, Verdict::kBlockInstall);
  EXPECT_EQ(index.Evaluate({Platform::kFlatpak, "com.example.App", "", "", ""}, kDevice, kNow).verdict,
            Verdict::kBlockInstall);
  EXPECT_EQ(index.Evaluate({Platform::kSnap, "tiktok", "", "", ""}, kDevice, kNow).verdict, Verdict::kBlockInstall);
  EXPECT_EQ(index.Evaluate({Platform::kSnap, "kesl", "", "", ""}, kDevice, kNow).verdict, Verdict::kAllowed);
}

TEST(PolicyEvaluate, BansEveryAppSignedByAPublisherKey) {
  auto index = Index({MakeRule("kaspersky-key", Action::kRemove, {T(TargetKind::kAndroidSigner, kVendorKey)})});
  AppDecision d = index.Evaluate(Android("com.kaspersky.new.product", kVendorKey), kDevice, kNow);
  EXPECT_EQ(d.verdict, Verdict::kRemove);
  EXPECT_NE(d.matched_by.find("android signer"), std::string::npos);
  EXPECT_EQ(index.Evaluate(Android("com.kaspersky.new.product", kOtherKey), kDevice, kNow).verdict, Verdict::kAllowed);
  auto team = Index({MakeRule("team", Action::kBlock, {T(TargetKind::kAppleTeam, "ABCDE12345")})});
  EXPECT_EQ(team.Evaluate({Platform::kIos, "com.any.app", "", "", "ABCDE12345"}, kDevice, kNow).verdict,
            Verdict::kBlockInstall);
}

TEST(PolicyEvaluate, VendorTargetBansAllItsIdentifiersAndKeys) {
  Vendor kaspersky{
      "AO Kaspersky Lab",
      "RU",
      {T(TargetKind::kAndroidPackage, "com.kms.free"), T(TargetKind::kIosBundle, "com.kaspersky.securityadvisor"),
       T(TargetKind::kAndroidSigner, kVendorKey)},
      0};
  auto index =
      Index({MakeRule("kaspersky", Action::kRemove, {T(TargetKind::kVendor, "AO Kaspersky Lab")})}, {}, {kaspersky});
  EXPECT_EQ(index.Evaluate(Android("com.kms.free", kVendorKey), kDevice, kNow).verdict, Verdict::kRemove);
  EXPECT_EQ(index.Evaluate({Platform::kIos, "com.kaspersky.securityadvisor", "", "", ""}, kDevice, kNow).verdict,
            Verdict::kRemove);
  AppDecision by_key = index.Evaluate(Android("com.unlisted.kaspersky.tool", kVendorKey), kDevice, kNow);
  EXPECT_EQ(by_key.verdict, Verdict::kRemove);
  EXPECT_NE(by_key.matched_by.find("vendor AO Kaspersky Lab"), std::string::npos);
  EXPECT_EQ(index.Evaluate(Android("org.mozilla.firefox", kOtherKey), kDevice, kNow).verdict, Verdict::kAllowed);
}

TEST(PolicyEvaluate, RepackagedAppSignedByUnknownKeyStillMatchesAndIsFlagged) {
  Vendor tencent{"Tencent",
                 "CN",
                 {T(TargetKind::kAndroidPackage, "com.tencent.mm"), T(TargetKind::kAndroidSigner, kVendorKey)},
                 0};
  auto index = Index({MakeRule("wechat", Action::kRemove, {T(TargetKind::kVendor, "Tencent")})}, {}, {tencent});
  AppDecision repack = index.Evaluate(Android("com.tencent.mm", kOtherKey), kDevice, kNow);
  EXPECT_EQ(repack.verdict, Verdict::kRemove);
  EXPECT_NE(repack.matched_by.find("possible repackage"), std::string::npos) << repack.matched_by;
  AppDecision genuine = index.Evaluate(Android("com.tencent.mm", kVendorKey), kDevice, kNow);
  EXPECT_EQ(genuine.verdict, Verdict::kRemove);
  EXPECT_EQ(genuine.matched_by.find("repackage"), std::string::npos);
}

TEST(PolicyEvaluate, StrongestActionWinsAndTiesGoToSmallestRuleId) {
  auto pkg = T(TargetKind::kAndroidPackage, "com.zhiliaoapp.musically");
  auto index = Index({MakeRule("c-report", Action::kReport, {pkg}), MakeRule("b-block", Action::kBlock, {pkg}),
                      MakeRule("z-remove", Action::kRemove, {pkg}), MakeRule("a-remove", Action::kRemove, {pkg})});
  AppDecision d = index.Evaluate(Android("com.zhiliaoapp.musically"), kDevice, kNow);
  EXPECT_EQ(d.verdict, Verdict::kRemove);
  EXPECT_EQ(d.rule_id, "a-remove");
  EXPECT_EQ(d.other_rules, (std::vector<std::string>{"b-block", "c-report", "z-remove"}));
  // Order of the rules in the bundle does not matter.
  auto reversed = Index({MakeRule("a-remove", Action::kRemove, {pkg}), MakeRule("z-remove", Action::kRemove, {pkg}),
                         MakeRule("b-block", Action::kBlock, {pkg})});
  EXPECT_EQ(reversed.Evaluate(Android("com.zhiliaoapp.musically"), kDevice, kNow).rule_id, "a-remove");
}

TEST(PolicyEvaluate, ScopeAndEffectiveDateLimitWhereAndWhenARuleApplies) {
  auto pkg = T(TargetKind::kAndroidPackage, "com.deepseek.chat");
  Rule scoped = MakeRule("scoped", Action::kRemove, {pkg});
  scoped.scope_groups = {"defence"};
  Rule future = MakeRule("future", Action::kBlock, {pkg});
  future.effective_at = kNow + 3600;
  auto index = Index({scoped, future});
  EXPECT_EQ(index.Evaluate(Android("com.deepseek.chat"), kDevice, kNow).verdict, Verdict::kAllowed);
  EXPECT_EQ(index.Evaluate(Android("com.deepseek.chat"), DeviceContext{"p2", {"defence"}}, kNow).verdict,
            Verdict::kRemove);
  EXPECT_EQ(index.Evaluate(Android("com.deepseek.chat"), kDevice, kNow + 3600).verdict, Verdict::kBlockInstall);
}

TEST(PolicyEvaluate, WaiverForDeviceOrGroupAppliesUntilItExpires) {
  auto pkg = T(TargetKind::kAndroidPackage, "com.tencent.mm");
  UnixSeconds expiry = kNow + 7 * 86400;
  auto index = Index({MakeRule("wechat", Action::kRemove, {pkg})},
                     {MakeWaiver("w-dev", "wechat", WaiverSubject::kDevice, "phone-1", expiry),
                      MakeWaiver("w-grp", "wechat", WaiverSubject::kGroup, "liaison", expiry + 100)});
  AppDecision waived = index.Evaluate(Android("com.tencent.mm"), kDevice, kNow);
  EXPECT_EQ(waived.verdict, Verdict::kWaived);
  EXPECT_EQ(waived.rule_id, "wechat");
  ASSERT_TRUE(waived.waived_until.has_value());
  EXPECT_EQ(*waived.waived_until, expiry);
  EXPECT_EQ(waived.waiver_id, "w-dev");
  // Another device is not covered; a device in the waived group is.
  EXPECT_EQ(index.Evaluate(Android("com.tencent.mm"), DeviceContext{"phone-2", {}}, kNow).verdict, Verdict::kRemove);
  EXPECT_EQ(index.Evaluate(Android("com.tencent.mm"), DeviceContext{"phone-3", {"liaison"}}, kNow).waiver_id, "w-grp");
  // At the expiry instant the rule applies again, with no one acting.
  EXPECT_EQ(index.Evaluate(Android("com.tencent.mm"), kDevice, expiry).verdict, Verdict::kRemove);
  EXPECT_EQ(index.Evaluate(Android("com.tencent.mm"), kDevice, expiry - 1).verdict, Verdict::kWaived);
}

TEST(PolicyEvaluate, WaiverOnOneRuleDoesNotExemptFromAnother) {
  auto pkg = T(TargetKind::kAndroidPackage, "com.tencent.mm");
  auto index =
      Index({MakeRule("wechat-remove", Action::kRemove, {pkg}), MakeRule("wechat-report", Action::kReport, {pkg})},
            {MakeWaiver("w", "wechat-remove", WaiverSubject::kDevice, "phone-1", kNow + 100)});
  AppDecision d = index.Evaluate(Android("com.tencent.mm"), kDevice, kNow);
  EXPECT_EQ(d.verdict, Verdict::kReport);
  EXPECT_EQ(d.rule_id, "wechat-report");
}

TEST(PolicyEvaluate, OnlyPublishedRulesEnterTheBundle) {
  Rule draft = MakeRule("draft", Action::kRemove, {T(TargetKind::kAndroidPackage, "com.tencent.mm")});
  draft.state = RuleState::kApproved;
  auto index = Index({draft});
  EXPECT_EQ(index.Evaluate(Android("com.tencent.mm"), kDevice, kNow).verdict, Verdict::kAllowed);
}

TEST(PolicyEvaluate, MentionsIsTrueForEveryAppSomeRuleCouldDecide) {
  const std::string long_package = "com.example." + std::string(200, 'x');  // past the stack key buffer
  Rule scoped = MakeRule("scoped", Action::kRemove, {T(TargetKind::kAndroidPackage, "com.tencent.mm")});
  scoped.scope_groups = {"elsewhere"};
  Rule later = MakeRule("later", Action::kBlock, {T(TargetKind::kIosBundle, "com.later.app")});
  later.effective_at = kNow + 3600;
  auto index = Index({scoped, later, MakeRule("signer", Action::kReport, {T(TargetKind::kAndroidSigner, kVendorKey)}),
                      MakeRule("team", Action::kRemove, {T(TargetKind::kAppleTeam, "ABCDE12345")}),
                      MakeRule("long", Action::kRemove, {T(TargetKind::kAndroidPackage, long_package)})});
  // Out of scope or not yet effective here, but mentioned: another device or a later time may be
  // decided by these rules, so the prefilter must keep them.
  EXPECT_TRUE(index.Mentions(Platform::kAndroid, "com.tencent.mm", "", ""));
  EXPECT_EQ(index.Evaluate(Android("com.tencent.mm"), kDevice, kNow).verdict, Verdict::kAllowed);
  EXPECT_TRUE(index.Mentions(Platform::kIos, "com.later.app", "", ""));
  EXPECT_TRUE(index.Mentions(Platform::kAndroid, "any.package", kVendorKey, ""));
  EXPECT_TRUE(index.Mentions(Platform::kIos, "any.bundle", "", "ABCDE12345"));
  EXPECT_TRUE(index.Mentions(Platform::kAndroid, long_package, "", ""));
  EXPECT_EQ(index.Evaluate(Android(long_package), kDevice, kNow).rule_id, "long");
  // Not mentioned: another platform, a near miss, an unknown signer or team.
  EXPECT_FALSE(index.Mentions(Platform::kIos, "com.tencent.mm", "", ""));
  EXPECT_FALSE(index.Mentions(Platform::kAndroid, "com.tencent.m", "", ""));
  EXPECT_FALSE(index.Mentions(Platform::kAndroid, long_package + "y", kOtherKey, "OTHERTEAM1"));
}

}  // namespace
}  // namespace appban::policy
