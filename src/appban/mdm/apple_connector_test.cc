#include "appban/mdm/apple_connector.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>

#include "appban/mdm/apple_test_support.h"

namespace appban::mdm {
namespace {

using appban::testing::EmulatedAppleDevice;
using testing::App;
using testing::AppleFixture;
using testing::Ios;
using testing::kTikTok;
using testing::kWeChat;
using testing::MakeBundle;
using testing::MakeRule;
using testing::Phone;

constexpr char kManaged[] = "A1000000000000000000000000000000000000A1";       // supervised 17.5, WeChat via the MDM
constexpr char kUnmanaged26[] = "B2000000000000000000000000000000000000B2";   // supervised 26.0, WeChat from the store
constexpr char kUnsupervised[] = "C3000000000000000000000000000000000000C3";  // unsupervised 17.5
constexpr char kIpad[] = "D4000000000000000000000000000000000000D4";          // supervised iPad, no WeChat
constexpr char kLiaison[] = "E5000000000000000000000000000000000000E5";       // liaison office (waiver)

std::vector<EmulatedAppleDevice> Fleet() {
  EmulatedAppleDevice ipad = Phone(kIpad, "18.1", true, {App("com.apple.Pages", false)});
  ipad.product_name = "iPad13,4";
  return {Phone(kManaged, "17.5", true, {App(kWeChat, true, "WeChat"), App(kTikTok, true, "TikTok")}),
          Phone(kUnmanaged26, "26.0", true, {App(kWeChat, false, "WeChat")}),
          Phone(kUnsupervised, "17.5", false, {App(kWeChat, false, "WeChat")}), ipad,
          Phone(kLiaison, "17.5", true, {App(kWeChat, true, "WeChat")})};
}

std::string DevicesFile() {
  return std::string("# enrollment id      groups\n") + kManaged + " health-staff\n" + kUnmanaged26 +
         " health-staff\n" + kUnsupervised + "\n" + kIpad + " health-staff,tablets\n" + kLiaison + "  liaison-office\n";
}

const MdmDevice& Find(const std::vector<MdmDevice>& devices, const std::string& id) {
  auto it = std::find_if(devices.begin(), devices.end(), [&](const MdmDevice& d) { return d.mdm_id == id; });
  EXPECT_NE(it, devices.end()) << id;
  return *it;
}

bool Lists(const MdmDevice& device, const std::string& bundle_id) {
  for (const auto& app : device.installed) {
    if (app.id == bundle_id) return true;
  }
  return false;
}

std::vector<std::string> Sorted(std::set<std::string> values) { return {values.begin(), values.end()}; }

policy::Bundle WeChatBan(int64_t version = 1, std::vector<policy::Waiver> waivers = {}) {
  return MakeBundle({MakeRule("wechat", {Ios(kWeChat)}), MakeRule("tiktok", {Ios(kTikTok)})}, version,
                    std::move(waivers));
}

TEST(AppleConnector, EndToEndBanQueuesProfileAndRemovalsAndDevicesReportTheAppGone) {
  AppleFixture fixture(Fleet(), DevicesFile());
  auto connector = fixture.Connector();
  ASSERT_NE(connector, nullptr);
  const policy::Bundle bundle = WeChatBan();

  auto plan = connector->Plan(bundle);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_FALSE(plan->empty);
  EXPECT_NE(plan->text.find("+ InstallProfile gov.example.appban.restrictions blockedAppBundleIDs [com.tencent.xin, "
                            "com.zhiliaoapp.musically]"),
            std::string::npos)
      << plan->text;
  EXPECT_NE(plan->text.find("+ RemoveApplication com.tencent.xin"), std::string::npos);
  EXPECT_TRUE(fixture.emulator->request_log().empty()) << "plan must not touch the MDM";

  auto applied = connector->Apply(bundle);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_FALSE(applied->failed) << applied->text;
  EXPECT_EQ(fixture.emulator->refused(), 0) << "every command conforms to Apple's schema";
  EXPECT_EQ(fixture.emulator->queued_request_types(kManaged),
            (std::vector<std::string>{"InstallProfile", "RemoveApplication", "RemoveApplication", "DeviceInformation",
                                      "InstalledApplicationList"}));

  // Idempotent: a plan right after the apply is empty, and a second apply queues nothing.
  auto again = connector->Plan(bundle);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty) << again->text;
  const size_t queued = fixture.emulator->request_log().size();
  auto second = connector->Apply(bundle);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(fixture.emulator->request_log().size(), queued);

  // The devices check in, act and answer; the answers reach the results file through the webhook.
  auto ran = fixture.emulator->CheckInAll();
  ASSERT_TRUE(ran.ok()) << ran.status().ToString();
  EXPECT_EQ(fixture.receiver->rejected(), 0);
  EXPECT_EQ(Sorted(fixture.emulator->GetDevice(kManaged).blocked), (std::vector<std::string>{kWeChat, kTikTok}));
  EXPECT_TRUE(fixture.emulator->GetDevice(kUnsupervised).blocked.empty()) << "unsupervised devices ignore the key";

  auto devices = connector->Inventory(bundle);
  ASSERT_TRUE(devices.ok()) << devices.status().ToString();
  ASSERT_EQ(devices->size(), 5u);
  const MdmDevice& managed = Find(*devices, kManaged);
  EXPECT_EQ(managed.source, MdmSource::kAppleMdm);
  EXPECT_EQ(managed.platform, "ios");
  EXPECT_EQ(managed.connector, "ios");
  EXPECT_TRUE(managed.reports_apps);
  EXPECT_FALSE(Lists(managed, kWeChat));
  EXPECT_EQ(managed.removed, (std::vector<std::string>{kWeChat, kTikTok}));
  EXPECT_EQ(managed.cannot_enforce_reason, "");
  EXPECT_EQ(managed.groups, (std::vector<std::string>{"health-staff"}));
  // iOS 26, supervised: the store-installed (unmanaged) copy is removed too.
  const MdmDevice& store_copy = Find(*devices, kUnmanaged26);
  EXPECT_FALSE(Lists(store_copy, kWeChat));
  EXPECT_EQ(store_copy.cannot_enforce_reason, "");
  // Unsupervised: WeChat stays and the device is marked as one the MDM cannot enforce on.
  const MdmDevice& unsupervised = Find(*devices, kUnsupervised);
  EXPECT_TRUE(Lists(unsupervised, kWeChat));
  EXPECT_NE(unsupervised.cannot_enforce_reason.find("unsupervised"), std::string::npos);
  const MdmDevice& ipad = Find(*devices, kIpad);
  EXPECT_EQ(ipad.platform, "ipados");
  EXPECT_EQ(ipad.cannot_enforce_reason, "");

  auto status = connector->Survey(bundle);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->json["violating_devices"], 1) << status->text;  // the unsupervised phone
  EXPECT_NE(status->text.find("CANNOT ENFORCE: unsupervised"), std::string::npos) << status->text;

  // Nothing more to do once the devices answered.
  auto settled = connector->Plan(bundle);
  ASSERT_TRUE(settled.ok());
  EXPECT_TRUE(settled->empty) << settled->text;
}

TEST(AppleConnector, SupervisedBeforeIos26CannotRemoveAStoreInstalledCopy) {
  AppleFixture fixture({Phone(kManaged, "18.1", true, {App(kWeChat, false, "WeChat")})}, std::string(kManaged) + "\n");
  auto connector = fixture.Connector();
  ASSERT_TRUE(connector->Apply(WeChatBan()).ok());
  ASSERT_TRUE(fixture.emulator->CheckInAll().ok());
  EXPECT_EQ(Sorted(fixture.emulator->GetDevice(kManaged).blocked), (std::vector<std::string>{kWeChat, kTikTok}));
  auto devices = connector->Inventory(WeChatBan());
  ASSERT_TRUE(devices.ok());
  const MdmDevice& device = devices->front();
  EXPECT_TRUE(Lists(device, kWeChat));
  EXPECT_NE(device.cannot_enforce_reason.find("com.tencent.xin could not be removed (Error: 12026"), std::string::npos)
      << device.cannot_enforce_reason;
  EXPECT_NE(device.cannot_enforce_reason.find("before iOS 26"), std::string::npos);
}

TEST(AppleConnector, RevokeRemovesTheEntryAndRepushesTheProfile) {
  AppleFixture fixture({Phone(kManaged, "17.5", true, {})}, std::string(kManaged) + " health-staff\n");
  auto connector = fixture.Connector();
  ASSERT_TRUE(connector->Apply(WeChatBan(1)).ok());
  ASSERT_TRUE(fixture.emulator->CheckInAll().ok());
  ASSERT_EQ(Sorted(fixture.emulator->GetDevice(kManaged).blocked), (std::vector<std::string>{kWeChat, kTikTok}));

  // WeChat's rule revoked: bundle 2 bans TikTok only.
  const policy::Bundle revoked = MakeBundle({MakeRule("tiktok", {Ios(kTikTok)})}, 2);
  auto plan = connector->Plan(revoked);
  ASSERT_TRUE(plan.ok());
  EXPECT_NE(plan->text.find("blockedAppBundleIDs [com.zhiliaoapp.musically]"), std::string::npos) << plan->text;
  EXPECT_NE(plan->text.find("com.tencent.xin: ban lifted"), std::string::npos) << plan->text;
  ASSERT_TRUE(connector->Apply(revoked).ok());
  ASSERT_TRUE(fixture.emulator->CheckInAll().ok());
  EXPECT_EQ(Sorted(fixture.emulator->GetDevice(kManaged).blocked), (std::vector<std::string>{kTikTok}));
  EXPECT_TRUE(connector->Plan(revoked)->empty);

  // Everything revoked: the profile is removed.
  const policy::Bundle nothing = MakeBundle({}, 3);
  ASSERT_TRUE(connector->Apply(nothing).ok());
  ASSERT_TRUE(fixture.emulator->CheckInAll().ok());
  EXPECT_TRUE(fixture.emulator->GetDevice(kManaged).profiles.empty());
  EXPECT_TRUE(fixture.emulator->GetDevice(kManaged).blocked.empty());
  EXPECT_TRUE(connector->Plan(nothing)->empty);
}

TEST(AppleConnector, WaivedDevicesAreLeftAlone) {
  AppleFixture fixture(Fleet(), DevicesFile());
  auto connector = fixture.Connector();
  const policy::Bundle bundle = MakeBundle({MakeRule("wechat", {Ios(kWeChat)})}, 1,
                                           {testing::GroupWaiver("w-liaison", "wechat", "liaison-office")});
  auto applied = connector->Apply(bundle);
  ASSERT_TRUE(applied.ok());
  // The liaison phone gets no restriction and no removal — only the inventory queries.
  EXPECT_EQ(fixture.emulator->queued_request_types(kLiaison),
            (std::vector<std::string>{"DeviceInformation", "InstalledApplicationList"}));
  ASSERT_TRUE(fixture.emulator->CheckInAll().ok());
  EXPECT_TRUE(fixture.emulator->GetDevice(kLiaison).blocked.empty());
  auto devices = connector->Inventory(bundle);
  ASSERT_TRUE(devices.ok());
  EXPECT_TRUE(Lists(Find(*devices, kLiaison), kWeChat));
  EXPECT_FALSE(Lists(Find(*devices, kManaged), kWeChat));
  auto status = connector->Survey(bundle);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->json["violating_devices"], 1) << status->text;  // the unsupervised phone only
}

TEST(AppleConnector, MalformedAnswersAreRefusedWithAClearError) {
  EmulatedAppleDevice phone = Phone(kManaged, "17.5", true, {App(kWeChat, true)});
  phone.corrupt_answers = {"InstalledApplicationList"};
  AppleFixture fixture({phone}, std::string(kManaged) + "\n");
  auto connector = fixture.Connector();
  ASSERT_TRUE(connector->Apply(WeChatBan()).ok());
  auto ran = fixture.emulator->CheckInAll();
  ASSERT_FALSE(ran.ok());
  EXPECT_NE(ran.status().message().find("webhook answered 400: the device's answer is not a plist"), std::string::npos)
      << ran.status().ToString();
  EXPECT_EQ(fixture.receiver->rejected(), 1);
  auto devices = connector->Inventory(WeChatBan());
  ASSERT_TRUE(devices.ok());
  EXPECT_FALSE(devices->front().reports_apps) << "no app list: never counted compliant";
}

TEST(AppleConnector, RetriesThrottlingAndRecordsNothingTheMdmDidNotConfirm) {
  AppleFixture fixture({Phone(kManaged, "17.5", true, {})}, std::string(kManaged) + "\n");
  auto connector = fixture.Connector();
  fixture.emulator->FailNext(2, 503);
  auto applied = connector->Apply(WeChatBan());
  ASSERT_TRUE(applied.ok());
  EXPECT_FALSE(applied->failed) << applied->text;
  EXPECT_EQ(fixture.sleeps.size(), 2u);
  EXPECT_EQ(applied->json["retries"], 2);

  // The MDM down for good: the apply fails, and what was not queued is planned again.
  AppleFixture down({Phone(kManaged, "17.5", true, {})}, std::string(kManaged) + "\n");
  auto failing = down.Connector();
  down.emulator->FailNext(1000, 503);
  auto failed = failing->Apply(WeChatBan());
  ASSERT_TRUE(failed.ok());
  EXPECT_TRUE(failed->failed);
  EXPECT_NE(failed->text.find("HTTP 503 (gave up after retrying)"), std::string::npos) << failed->text;
  down.emulator->FailNext(0, 503);
  auto plan = failing->Plan(WeChatBan());
  ASSERT_TRUE(plan.ok());
  EXPECT_NE(plan->text.find("+ InstallProfile"), std::string::npos) << plan->text;
}

TEST(AppleConnector, WrongApiKeyAndLooseCredentialFilesAreRefused) {
  AppleFixture fixture({Phone(kManaged, "17.5", true, {})}, std::string(kManaged) + "\n");
  ASSERT_TRUE(WriteFileAtomically(fixture.config.api_key_file, "wrong-key", 0600).ok());
  auto connector = fixture.Connector();
  auto applied = connector->Apply(WeChatBan());
  ASSERT_TRUE(applied.ok());
  EXPECT_TRUE(applied->failed);
  EXPECT_NE(applied->text.find("HTTP 401 (the MDM refused the API key)"), std::string::npos) << applied->text;
  EXPECT_EQ(applied->text.find("wrong-key"), std::string::npos) << "the key never appears";
  EXPECT_FALSE(connector->Plan(WeChatBan())->empty) << "nothing recorded";

  ASSERT_EQ(::chmod(fixture.config.api_key_file.c_str(), 0644), 0);
  auto refused = AppleConnector::Create(fixture.config, fixture.Options());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("must be mode 0600"), std::string::npos);
}

TEST(AppleConnector, StateFileIsPrivateAndRoundTrips) {
  AppleFixture fixture({Phone(kManaged, "17.5", true, {App(kWeChat, true)})}, std::string(kManaged) + "\n");
  auto connector = fixture.Connector();
  ASSERT_TRUE(connector->Apply(WeChatBan()).ok());
  struct stat info {};
  ASSERT_EQ(::stat(connector->state_path().c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  auto state = LoadAppleState(connector->state_path());
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(state->last_applied_bundle, 1);
  const AppleDeviceState& device = state->devices.at(kManaged);
  EXPECT_EQ(device.profile, (std::vector<std::string>{kWeChat, kTikTok}));
  EXPECT_EQ(device.removals.size(), 2u);  // no app list yet: every banned app may be there
  EXPECT_EQ(device.queries.size(), 2u);
  ASSERT_TRUE(WriteFileAtomically(connector->state_path(), "{\"format\": \"something else\"}", 0600).ok());
  EXPECT_EQ(connector->Plan(WeChatBan()).status().code(), StatusCode::kCorruption);
}

TEST(AppleDevicesFile, ParsesIdsAndGroupsStrictly) {
  auto devices = ParseDevicesFile("# comment\nUDID-1 a,b\n\n  UDID-2:user@example.gov   \nUDID-3 c # trailing\n");
  ASSERT_TRUE(devices.ok()) << devices.status().ToString();
  ASSERT_EQ(devices->size(), 3u);
  EXPECT_EQ((*devices)[0].groups, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ((*devices)[1].id, "UDID-2:user@example.gov");
  EXPECT_TRUE((*devices)[1].groups.empty());
  EXPECT_EQ((*devices)[2].groups, (std::vector<std::string>{"c"}));
  EXPECT_NE(ParseDevicesFile("A\nA\n").status().message().find("line 2: A is listed twice"), std::string::npos);
  EXPECT_NE(ParseDevicesFile("A,B x\n").status().message().find("line 1"), std::string::npos);
  EXPECT_NE(ParseDevicesFile("A/../x\n").status().message().find("only letters"), std::string::npos);
}

TEST(AppleConnector, TeamIdBansAreReportedAsNotEnforceable) {
  AppleFixture fixture({Phone(kManaged, "17.5", true, {})}, std::string(kManaged) + "\n");
  auto connector = fixture.Connector();
  const policy::Bundle bundle =
      MakeBundle({MakeRule("kaspersky", {*policy::MakeTarget(policy::TargetKind::kAppleTeam, "2Y8XE5CQ94")})});
  auto plan = connector->Plan(bundle);
  ASSERT_TRUE(plan.ok());
  EXPECT_NE(plan->text.find("not enforceable by an Apple MDM: apple-team:2Y8XE5CQ94"), std::string::npos) << plan->text;
}

}  // namespace
}  // namespace appban::mdm
