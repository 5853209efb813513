#include "appban/mdm/intune_connector.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>

#include "appban/mdm/intune_test_support.h"
#include "emulator_util.h"

namespace appban::mdm {
namespace {

using namespace testing;
using appban::testing::IntuneEmulatedApp;
using appban::testing::IntuneEmulatorOptions;

constexpr char kWeChatIos[] = "com.tencent.xin";
constexpr char kWeChatAndroid[] = "com.tencent.mm";

// A tenant as a ministry has it: WeChat in the app catalogue for iOS and Android, an app an
// administrator assigns as required, an iOS compliance policy and restrictions profile with
// settings of their own, and phones in the staff group with WeChat installed.
struct Tenant {
  std::string wechat_ios, wechat_android, outlook;
};

Tenant Populate(appban::testing::IntuneEmulator& emulator) {
  Tenant tenant;
  tenant.wechat_ios = emulator.AddMobileApp(IosStoreApp("WeChat", kWeChatIos));
  tenant.wechat_android = emulator.AddMobileApp(AndroidStoreApp("WeChat", kWeChatAndroid));
  tenant.outlook = emulator.AddMobileApp(IosStoreApp("Microsoft Outlook", "com.microsoft.Office.Outlook"));
  emulator.AddAssignment(tenant.outlook,
                         Json{{"@odata.type", "#microsoft.graph.mobileAppAssignment"},
                              {"intent", "required"},
                              {"target", {{"@odata.type", kGroupTargetType}, {"groupId", kStaffGroup}}}});
  emulator.PutCompliancePolicy("c0mp1",
                               Json{{"@odata.type", kIosCompliancePolicyType},
                                    {"displayName", "iOS baseline"},
                                    {"passcodeRequired", true},
                                    {"passcodeRequiredType", "alphanumeric"},
                                    {"restrictedApps", {{{"name", "Cydia"}, {"appId", "com.saurik.Cydia"}}}}},
                               {kStaffGroup});
  emulator.PutConfiguration("c0nf1",
                            Json{{"@odata.type", kIosGeneralConfigurationType},
                                 {"displayName", "iOS restrictions"},
                                 {"cameraBlocked", true},
                                 {"appsVisibilityListType", "none"},
                                 {"appsVisibilityList", Json::array()}},
                            {kStaffGroup});
  emulator.PutDevice(ManagedDevice("d1", "iOS", true), {kStaffGroup},
                     {IntuneEmulatedApp{"WeChat", kWeChatIos, "8.0.40", "ios", true},
                      IntuneEmulatedApp{"Microsoft Outlook", "com.microsoft.Office.Outlook", "4.2", "ios", true}});
  emulator.PutDevice(ManagedDevice("d2", "Android", false), {kStaffGroup},
                     {IntuneEmulatedApp{"WeChat", kWeChatAndroid, "8.0.40", "androidWorkProfile", true}});
  emulator.PutDevice(ManagedDevice("d3", "iOS", false), {kOtherGroup},
                     {IntuneEmulatedApp{"WeChat", kWeChatIos, "8.0.40", "ios", false}});
  return tenant;
}

policy::Bundle WeChatBan(int64_t version = 1, std::vector<policy::Waiver> waivers = {}) {
  return MakeBundle({MakeRule("wechat", {Ios(kWeChatIos), Android(kWeChatAndroid)})}, version, std::move(waivers));
}

bool HasUninstallFor(const std::vector<Json>& assignments, const std::string& group) {
  return std::any_of(assignments.begin(), assignments.end(), [&](const Json& a) {
    return a.value("intent", "") == "uninstall" && a["target"].value("groupId", "") == group;
  });
}

std::vector<std::string> AppIds(const Json& list) {
  std::vector<std::string> out;
  for (const Json& item : list) out.push_back(item.value("appId", ""));
  return out;
}

const MdmDevice* FindDevice(const std::vector<MdmDevice>& devices, const std::string& id) {
  for (const MdmDevice& device : devices) {
    if (device.mdm_id == id) return &device;
  }
  return nullptr;
}

bool Has(const MdmDevice& device, const std::string& app) {
  return std::any_of(device.installed.begin(), device.installed.end(),
                     [&](const policy::InstalledApp& a) { return a.id == app; });
}

TEST(IntuneConnector, PlanTouchesNothingApplyEnforcesAndAPlanAfterIsEmpty) {
  IntuneFixture fixture;
  Tenant tenant = Populate(*fixture.emulator);
  auto connector = fixture.Connector();
  const policy::Bundle bundle = WeChatBan();

  auto plan = connector->Plan(bundle);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_FALSE(plan->empty);
  EXPECT_EQ(plan->json["operations"].size(), 4u) << plan->text;
  EXPECT_NE(plan->text.find("intent: uninstall, group " + std::string(kStaffGroup)), std::string::npos) << plan->text;
  EXPECT_NE(plan->text.find("restrictedApps +[com.tencent.xin]"), std::string::npos) << plan->text;
  EXPECT_EQ(fixture.emulator->writes(), 0);
  struct stat info {};
  EXPECT_NE(::stat(connector->state_path().c_str(), &info), 0) << "plan wrote the state file";

  auto applied = connector->Apply(bundle);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_FALSE(applied->failed) << applied->text;
  EXPECT_TRUE(HasUninstallFor(fixture.emulator->Assignments(tenant.wechat_ios), kStaffGroup));
  EXPECT_TRUE(HasUninstallFor(fixture.emulator->Assignments(tenant.wechat_android), kStaffGroup));
  // The administrator's assignment and settings are untouched.
  ASSERT_EQ(fixture.emulator->Assignments(tenant.outlook).size(), 1u);
  EXPECT_EQ(fixture.emulator->Assignments(tenant.outlook)[0]["intent"], "required");
  Json compliance = fixture.emulator->CompliancePolicy("c0mp1");
  EXPECT_EQ(AppIds(compliance["restrictedApps"]), (std::vector<std::string>{"com.saurik.Cydia", kWeChatIos}));
  EXPECT_EQ(compliance["passcodeRequiredType"], "alphanumeric");
  Json configuration = fixture.emulator->Configuration("c0nf1");
  EXPECT_EQ(AppIds(configuration["appsVisibilityList"]), (std::vector<std::string>{kWeChatIos}));
  EXPECT_EQ(configuration["appsVisibilityListType"], "appsNotInListCompliant");
  EXPECT_EQ(configuration["cameraBlocked"], true);
  ASSERT_EQ(::stat(connector->state_path().c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);

  auto again = connector->Plan(bundle);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty) << again->text;
  EXPECT_NE(again->text.find("plan: nothing to change"), std::string::npos);
  const int writes = fixture.emulator->writes();
  auto reapplied = connector->Apply(bundle);
  ASSERT_TRUE(reapplied.ok());
  EXPECT_EQ(fixture.emulator->writes(), writes) << "a second apply changed something";

  // The phones: WeChat gone from the staff phones, the unmanaged phone still has it and says why.
  auto inventory = connector->Inventory(bundle);
  ASSERT_TRUE(inventory.ok()) << inventory.status().ToString();
  ASSERT_EQ(inventory->size(), 3u);
  const MdmDevice* d1 = FindDevice(*inventory, "d1");
  const MdmDevice* d2 = FindDevice(*inventory, "d2");
  const MdmDevice* d3 = FindDevice(*inventory, "d3");
  ASSERT_TRUE(d1 && d2 && d3);
  EXPECT_EQ(d1->source, MdmSource::kIntune);
  EXPECT_EQ(d1->platform, "ios");
  EXPECT_EQ(d2->platform, "android");
  EXPECT_FALSE(Has(*d1, kWeChatIos));
  EXPECT_TRUE(Has(*d1, "com.microsoft.Office.Outlook")) << "catalogue names map to bundle ids";
  EXPECT_FALSE(Has(*d2, kWeChatAndroid));
  EXPECT_TRUE(Has(*d3, kWeChatIos));
  EXPECT_EQ(d1->mdm_compliant, std::optional<bool>(true));
  EXPECT_EQ(d1->last_mdm_sync, std::optional<UnixSeconds>(*ParseTimestamp("2026-12-05T04:00:00Z")));
  EXPECT_TRUE(d1->cannot_enforce_reason.empty());
  EXPECT_NE(d3->cannot_enforce_reason.find("unsupervised"), std::string::npos);
  EXPECT_EQ(d1->user, "user-d1@ministry.example");
  EXPECT_EQ(d1->groups, std::vector<std::string>{"staff"});

  auto survey = connector->Survey(bundle);
  ASSERT_TRUE(survey.ok());
  EXPECT_EQ(survey->json["violating_devices"], 1) << survey->text;
  EXPECT_NE(survey->text.find("d3"), std::string::npos);
}

TEST(IntuneConnector, RevokingTheBanRemovesOnlyAppbansEntries) {
  IntuneFixture fixture;
  Tenant tenant = Populate(*fixture.emulator);
  auto connector = fixture.Connector();
  ASSERT_TRUE(connector->Apply(WeChatBan()).ok());

  const policy::Bundle lifted = MakeBundle({}, 2);
  auto plan = connector->Plan(lifted);
  ASSERT_TRUE(plan.ok());
  EXPECT_NE(plan->text.find("- mobileApps/" + tenant.wechat_ios), std::string::npos) << plan->text;
  auto applied = connector->Apply(lifted);
  ASSERT_TRUE(applied.ok());
  EXPECT_FALSE(applied->failed) << applied->text;
  EXPECT_TRUE(fixture.emulator->Assignments(tenant.wechat_ios).empty());
  EXPECT_TRUE(fixture.emulator->Assignments(tenant.wechat_android).empty());
  EXPECT_EQ(fixture.emulator->Assignments(tenant.outlook).size(), 1u);
  EXPECT_EQ(AppIds(fixture.emulator->CompliancePolicy("c0mp1")["restrictedApps"]),
            std::vector<std::string>{"com.saurik.Cydia"});
  Json configuration = fixture.emulator->Configuration("c0nf1");
  EXPECT_TRUE(configuration["appsVisibilityList"].empty());
  EXPECT_EQ(configuration["appsVisibilityListType"], "none") << "restored to how appban found it";
  auto after = connector->Plan(lifted);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty) << after->text;
}

TEST(IntuneConnector, AWaiverForTheTargetsGroupLeavesItAlone) {
  IntuneFixture fixture;
  Tenant tenant = Populate(*fixture.emulator);
  auto connector = fixture.Connector();
  const policy::Bundle waived = WeChatBan(1, {GroupWaiver("w1", "wechat", "staff")});
  auto applied = connector->Apply(waived);
  ASSERT_TRUE(applied.ok());
  EXPECT_FALSE(applied->failed) << applied->text;
  EXPECT_TRUE(fixture.emulator->Assignments(tenant.wechat_ios).empty());
  EXPECT_EQ(AppIds(fixture.emulator->CompliancePolicy("c0mp1")["restrictedApps"]),
            std::vector<std::string>{"com.saurik.Cydia"});
  EXPECT_NE(applied->text.find("not banned for group"), std::string::npos) << applied->text;
  EXPECT_EQ(fixture.emulator->writes(), 0);

  // A waiver granted after the ban was pushed takes appban's entries away again.
  IntuneFixture second;
  Tenant t2 = Populate(*second.emulator);
  auto c2 = second.Connector();
  ASSERT_TRUE(c2->Apply(WeChatBan()).ok());
  ASSERT_TRUE(c2->Apply(WeChatBan(2, {GroupWaiver("w1", "wechat", "staff")})).ok());
  EXPECT_TRUE(second.emulator->Assignments(t2.wechat_ios).empty());
  EXPECT_TRUE(second.emulator->Configuration("c0nf1")["appsVisibilityList"].empty());
}

TEST(IntuneConnector, SomeoneElsesEntriesAndConflictsAreLeftAloneAndReported) {
  IntuneFixture fixture;
  Tenant tenant = Populate(*fixture.emulator);
  // An administrator already assigns WeChat for Android as required to the staff group.
  fixture.emulator->AddAssignment(tenant.wechat_android,
                                  Json{{"@odata.type", "#microsoft.graph.mobileAppAssignment"},
                                       {"intent", "required"},
                                       {"target", {{"@odata.type", kGroupTargetType}, {"groupId", kStaffGroup}}}});
  auto connector = fixture.Connector();
  auto applied = connector->Apply(WeChatBan());
  ASSERT_TRUE(applied.ok());
  EXPECT_NE(applied->text.find("CONFLICT mobileApps/" + tenant.wechat_android), std::string::npos) << applied->text;
  ASSERT_EQ(fixture.emulator->Assignments(tenant.wechat_android).size(), 1u);
  EXPECT_EQ(fixture.emulator->Assignments(tenant.wechat_android)[0]["intent"], "required");
}

TEST(IntuneConnector, APartialFailureIsReportedRetriedAndNothingIsHalfRecorded) {
  IntuneFixture fixture;
  Tenant tenant = Populate(*fixture.emulator);
  auto connector = fixture.Connector();
  // The compliance policy's PATCH answers 503 through every retry; the rest goes through.
  fixture.emulator->FailNext(4, 503, "PATCH", "/beta/deviceManagement/deviceCompliancePolicies/");
  auto applied = connector->Apply(WeChatBan());
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_TRUE(applied->failed);
  EXPECT_NE(applied->text.find("FAILED"), std::string::npos) << applied->text;
  EXPECT_EQ(fixture.sleeps.size(), 3u) << "three back-offs between four attempts";
  EXPECT_TRUE(HasUninstallFor(fixture.emulator->Assignments(tenant.wechat_ios), kStaffGroup));
  EXPECT_EQ(AppIds(fixture.emulator->CompliancePolicy("c0mp1")["restrictedApps"]),
            std::vector<std::string>{"com.saurik.Cydia"});
  auto state = LoadIntuneState(connector->state_path());
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->compliance.empty()) << "a change that did not land is not recorded as appban's";
  EXPECT_EQ(state->pending_lists.count("compliance:c0mp1"), 1u) << "its fate is unknown: kept pending";
  EXPECT_EQ(state->last_applied_bundle, 0);

  auto retried = connector->Apply(WeChatBan());
  ASSERT_TRUE(retried.ok());
  EXPECT_FALSE(retried->failed) << retried->text;
  EXPECT_EQ(AppIds(fixture.emulator->CompliancePolicy("c0mp1")["restrictedApps"]),
            (std::vector<std::string>{"com.saurik.Cydia", kWeChatIos}));
  auto plan = connector->Plan(WeChatBan());
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan->empty) << plan->text;
}

TEST(IntuneConnector, ALostAnswerIsResolvedFromWhatGraphShows) {
  IntuneFixture fixture;
  Tenant tenant = Populate(*fixture.emulator);
  auto connector = fixture.Connector();
  // The state as a crash right after the POST left it: the assignment exists, only pending here.
  ASSERT_TRUE(connector->Apply(WeChatBan()).ok());
  auto state = LoadIntuneState(connector->state_path());
  ASSERT_TRUE(state.ok());
  const std::string key = tenant.wechat_ios + "|" + kStaffGroup;
  ASSERT_EQ(state->assignments.count(key), 1u);
  state->assignments.erase(key);
  state->pending_assignments.insert(key);
  ASSERT_TRUE(SaveIntuneState(connector->state_path(), *state).ok());
  auto applied = connector->Apply(WeChatBan());
  ASSERT_TRUE(applied.ok());
  EXPECT_EQ(fixture.emulator->Assignments(tenant.wechat_ios).size(), 1u) << "no duplicate assignment";
  auto resolved = LoadIntuneState(connector->state_path());
  EXPECT_EQ(resolved->assignments.count(key), 1u);
  EXPECT_TRUE(resolved->pending_assignments.empty());
}

TEST(IntuneConnector, FollowsNextLinksAcrossPages) {
  IntuneEmulatorOptions options;
  options.max_page_size = 2;
  IntuneFixture fixture(options);
  Populate(*fixture.emulator);
  for (int i = 0; i < 7; ++i) {
    fixture.emulator->PutDevice(ManagedDevice("p" + std::to_string(i), "iOS", true), {kStaffGroup},
                                {IntuneEmulatedApp{"Notes " + std::to_string(i), "com.example.n" + std::to_string(i)}});
  }
  auto connector = fixture.Connector();
  auto inventory = connector->Inventory(WeChatBan());
  ASSERT_TRUE(inventory.ok()) << inventory.status().ToString();
  EXPECT_EQ(inventory->size(), 10u);
  const auto log = fixture.emulator->request_log();
  EXPECT_TRUE(std::any_of(log.begin(), log.end(), [](const std::string& line) {
    return line.find("managedDevices?$top=2&$skiptoken=8") != std::string::npos;
  }));
}

TEST(IntuneConnector, ThrottlingIsHonouredWithRetryAfter) {
  IntuneEmulatorOptions options;
  options.throttle_every = 3;
  options.retry_after = "2";
  IntuneFixture fixture(options);
  Tenant tenant = Populate(*fixture.emulator);
  auto connector = fixture.Connector();
  auto applied = connector->Apply(WeChatBan());
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_FALSE(applied->failed) << applied->text;
  EXPECT_GT(fixture.emulator->throttled(), 0);
  ASSERT_FALSE(fixture.sleeps.empty());
  EXPECT_EQ(fixture.sleeps[0], std::chrono::milliseconds(2000));
  EXPECT_TRUE(HasUninstallFor(fixture.emulator->Assignments(tenant.wechat_ios), kStaffGroup));
}

TEST(IntuneConnector, CertificateCredentialsSignAClientAssertion) {
  IntuneFixture fixture;
  Tenant tenant = Populate(*fixture.emulator);
  fixture.UseCertificate();
  auto connector = fixture.Connector();
  auto applied = connector->Apply(WeChatBan());
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_FALSE(applied->failed) << applied->text;
  EXPECT_EQ(fixture.emulator->token_grants(), 1) << "one token, cached for the whole run";
  EXPECT_TRUE(HasUninstallFor(fixture.emulator->Assignments(tenant.wechat_ios), kStaffGroup));
}

TEST(IntuneConnector, BadCredentialsAreRefusedWithoutShowingThem) {
  IntuneFixture fixture;
  Populate(*fixture.emulator);
  ASSERT_TRUE(WriteFileAtomically(fixture.config.client_secret_file, "wrong-secret-XYZ\n", 0600).ok());
  auto connector = fixture.Connector();
  auto plan = connector->Plan(WeChatBan());
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(plan.status().message().find("invalid_client"), std::string::npos) << plan.status().ToString();
  EXPECT_EQ(plan.status().message().find("wrong-secret-XYZ"), std::string::npos);

  // A secret file others can read is refused before anything is sent.
  ASSERT_TRUE(WriteFileAtomically(fixture.config.client_secret_file, kSecret, 0644).ok());
  auto refused = IntuneConnector::Create(fixture.config, fixture.Options());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(refused.status().message().find("0600"), std::string::npos);

  // A certificate whose key is not the registered one: the assertion's signature fails.
  IntuneFixture other;
  Populate(*other.emulator);
  other.UseCertificate();
  const RsaKeyPair stranger = MakeRsaKey();
  ASSERT_TRUE(WriteFileAtomically(other.config.private_key_file, stranger.private_pem, 0600).ok());
  auto mismatched = IntuneConnector::Create(other.config, other.Options());
  ASSERT_FALSE(mismatched.ok());
  EXPECT_NE(mismatched.status().message().find("does not belong"), std::string::npos);
}

TEST(IntuneConnector, MalformedGraphAnswersAreClearErrors) {
  IntuneFixture fixture;
  Populate(*fixture.emulator);
  auto connector = fixture.Connector();
  for (const std::string& body :
       {std::string("not json"), std::string("{\"value\": 5}"), std::string("[1,2]"), std::string("{\"value\": [1]}"),
        std::string("{\"value\": [], \"@odata.nextLink\": 7}"), std::string("{\"value\": [{\"id\": 5}]}"),
        std::string("{\"value\": [], \"@odata.nextLink\": \"https://evil.example/v1.0/deviceManagement/x\"}"),
        std::string("{\"value\": [{\"id\": \"x\", \"lastSyncDateTime\": \"yesterday\"}]}")}) {
    fixture.emulator->SetRawAnswer("/v1.0/deviceManagement/managedDevices", body);
    auto inventory = connector->Inventory(WeChatBan());
    ASSERT_FALSE(inventory.ok()) << body;
    EXPECT_NE(inventory.status().message().find("managed"), std::string::npos)
        << body << " → " << inventory.status().ToString();
  }
  fixture.emulator->SetRawAnswer("/v1.0/deviceAppManagement/mobileApps", "{\"value\": [{\"displayName\": 1}]}");
  auto plan = connector->Plan(WeChatBan());
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kCorruption);
}

TEST(IntuneEmulator, ValidatesBodiesAgainstTheSpecs) {
  IntuneFixture fixture;
  const auto& schemas = fixture.emulator->schemas();
  // Microsoft's own example request bodies.
  auto example =
      ReadFileToString(IntuneSpecsDir() + "/intune-beta-iosCompliancePolicy-restrictedApps.request.json", 1 << 20);
  ASSERT_TRUE(example.ok());
  Json body = Json::parse(*example);
  body.erase("roleScopeTagIds");  // a beta base-type property the fragments do not carry
  body.erase("@odata.type");
  EXPECT_EQ(schemas.Validate("beta.iosCompliancePolicy", body), std::nullopt);
  EXPECT_NE(schemas.Validate("iosCompliancePolicy", body), std::nullopt) << "v1.0 has no restrictedApps";
  Json unknown = {{"@odata.type", "#microsoft.graph.iosGeneralDeviceConfiguration"}, {"appsHideList", Json::array()}};
  EXPECT_NE(schemas.Validate("deviceConfiguration", unknown)->find("does not exist"), std::string::npos);
  Json wrong_type = {{"@odata.type", "#microsoft.graph.iosGeneralDeviceConfiguration"}, {"cameraBlocked", "yes"}};
  EXPECT_NE(schemas.Validate("deviceConfiguration", wrong_type), std::nullopt);
  Json wrong_enum = {{"intent", "remove"}};
  EXPECT_NE(schemas.Validate("mobileAppAssignment", wrong_enum)->find("not a valid member"), std::string::npos);
  Json abstract_target = {{"intent", "uninstall"}, {"target", {{"groupId", kStaffGroup}}}};
  EXPECT_NE(schemas.Validate("mobileAppAssignment", abstract_target)->find("abstract"), std::string::npos);
  Json good = {{"@odata.type", "#microsoft.graph.mobileAppAssignment"},
               {"intent", "uninstall"},
               {"target", {{"@odata.type", kGroupTargetType}, {"groupId", kStaffGroup}}}};
  EXPECT_EQ(schemas.Validate("mobileAppAssignment", good), std::nullopt);
}

TEST(EntraAuth, ClientAssertionCarriesTheCertificateThumbprints) {
  EntraCredentials credentials;
  credentials.client_id = kClientId;
  credentials.private_key_pem = TestKey().private_pem;
  IntuneConnectorConfig config;
  config.tenant_id = kTenant;
  config.client_id = kClientId;
  TempDir dir;
  config.certificate_file = dir.path() + "/c.pem";
  config.private_key_file = dir.path() + "/k.pem";
  ASSERT_TRUE(WriteFileAtomically(config.certificate_file, TestCertificatePem(), 0644).ok());
  ASSERT_TRUE(WriteFileAtomically(config.private_key_file, TestKey().private_pem, 0600).ok());
  auto loaded = LoadEntraCredentials(config);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const std::string url = EntraTokenUrl("https://login.microsoftonline.com", kTenant);
  EXPECT_EQ(url, std::string("https://login.microsoftonline.com/") + kTenant + "/oauth2/v2.0/token");
  auto assertion = MakeClientAssertion(*loaded, url, 1'800'000'000, "jti-1");
  ASSERT_TRUE(assertion.ok());
  auto header = appban::testing::Base64UrlDecode(assertion->substr(0, assertion->find('.')));
  ASSERT_TRUE(header.has_value());
  Json h = Json::parse(*header);
  EXPECT_EQ(h["alg"], "RS256");
  EXPECT_EQ(h["x5t#S256"].get<std::string>().size(), 43u);
  EXPECT_EQ(h["x5t"].get<std::string>().size(), 27u);
  auto body = ClientCredentialsBody(*loaded, url, 1'800'000'000);
  ASSERT_TRUE(body.ok());
  EXPECT_NE(body->find("grant_type=client_credentials"), std::string::npos);
  EXPECT_NE(body->find("scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"), std::string::npos);
  EXPECT_NE(body->find("client_assertion_type=urn%3Aietf"), std::string::npos);
}

}  // namespace
}  // namespace appban::mdm

namespace appban::mdm {
namespace {

TEST(IntuneInventory, ParsesGraphDevicesAndTimes) {
  EXPECT_EQ(*ParseGraphDateTime("2026-12-05T04:00:00Z"),
            std::optional<UnixSeconds>(*ParseTimestamp("2026-12-05T04:00:00Z")));
  EXPECT_EQ(*ParseGraphDateTime("2026-12-05T06:00:00.5+02:00"),
            std::optional<UnixSeconds>(*ParseTimestamp("2026-12-05T04:00:00Z")));
  EXPECT_EQ(*ParseGraphDateTime("0001-01-01T00:00:00Z"), std::nullopt) << "Graph's never";
  EXPECT_FALSE(ParseGraphDateTime("2026-12-05").ok());
  EXPECT_FALSE(ParseGraphDateTime("2026-12-05T04:00:00.Z").ok());

  Json never = testing::ManagedDevice("n1", "Android", false);
  never["lastSyncDateTime"] = "0001-01-01T00:00:00Z";
  never["complianceState"] = "unknown";
  auto device = ParseManagedDevice(never);
  ASSERT_TRUE(device.ok());
  EXPECT_FALSE(device->reports_apps) << "a device that never synced has no inventory to trust";
  EXPECT_EQ(device->mdm_compliant, std::nullopt);
  EXPECT_TRUE(device->cannot_enforce_reason.empty());
  EXPECT_EQ(PlatformFromOperatingSystem("iPadOS"), "ipados");
  EXPECT_EQ(PlatformFromOperatingSystem("AndroidForWork"), "android");
  EXPECT_EQ(PlatformFromOperatingSystem("Windows"), "windows");
  Json wrong = testing::ManagedDevice("n2", "iOS", true);
  wrong["isSupervised"] = "yes";
  EXPECT_EQ(ParseManagedDevice(wrong).status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace appban::mdm
