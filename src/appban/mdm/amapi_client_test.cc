#include "appban/mdm/amapi_client.h"

#include <gtest/gtest.h>

#include "appban/mdm/mdm_test_support.h"

namespace appban::mdm {
namespace {

using namespace testing;

// A client straight over the emulator (the connector's wiring without its state).
struct ClientFixture {
  Fixture fixture;
  std::unique_ptr<AccessTokenSource> tokens;
  std::unique_ptr<AmapiClient> client;

  explicit ClientFixture(appban::testing::AmapiEmulatorOptions options = {}) : fixture({}, options) {
    auto key = LoadServiceAccountKey(fixture.config.service_account_key_file);
    EXPECT_TRUE(key.ok());
    auto created = AccessTokenSource::Create(*key, {});
    tokens = std::move(*created);
    AmapiClientOptions client_options;
    client_options.base_url = fixture.emulator->base_url();
    client_options.retry = fixture.Options().retry;
    auto made = AmapiClient::Create(client_options, tokens.get());
    client = std::move(*made);
  }
};

TEST(AmapiClient, NamesAreCheckedBeforeTheyReachAPath) {
  EXPECT_TRUE(ValidateEnterpriseName("enterprises/LC00abc").ok());
  EXPECT_TRUE(ValidatePolicyName("enterprises/LC00abc/policies/default").ok());
  EXPECT_FALSE(ValidateEnterpriseName("enterprises/").ok());
  EXPECT_FALSE(ValidateEnterpriseName("enterprises/a/b").ok());
  EXPECT_FALSE(ValidateEnterpriseName("projects/a").ok());
  EXPECT_FALSE(ValidatePolicyName("enterprises/a").ok());
  EXPECT_FALSE(ValidatePolicyName("enterprises/a/policies/../../x").ok());
  EXPECT_FALSE(ValidatePolicyName("enterprises/a/policies/p?updateMask=x").ok());
  EXPECT_FALSE(ValidatePolicyName("enterprises/a/devices/p").ok());
}

TEST(AmapiClient, BaseUrlMustBeHttpsUnlessLoopback) {
  AccessTokenSource* none = nullptr;
  AmapiClientOptions options;
  options.base_url = "http://androidmanagement.googleapis.com";
  EXPECT_FALSE(AmapiClient::Create(options, none).ok());
  options.base_url = "https://androidmanagement.googleapis.com";
  EXPECT_TRUE(AmapiClient::Create(options, none).ok());
}

TEST(AmapiClient, DevicesArePagedUntilNoNextPageToken) {
  appban::testing::AmapiEmulatorOptions options;
  options.max_page_size = 3;
  ClientFixture f(options);
  for (int i = 0; i < 8; ++i) f.fixture.emulator->PutDevice(Device("d" + std::to_string(i), PolicyName("default"), {}));
  auto devices = f.client->ListDevices(kEnterprise, 100);
  ASSERT_TRUE(devices.ok()) << devices.status().ToString();
  ASSERT_EQ(devices->size(), 8u);
  EXPECT_EQ((*devices)[7]["name"], std::string(kEnterprise) + "/devices/d7");
  int pages = 0;
  for (const auto& line : f.fixture.emulator->request_log()) pages += line.find("/devices") != std::string::npos;
  EXPECT_EQ(pages, 3);  // 3 + 3 + 2
  auto empty = f.client->ListDevices("enterprises/none");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(AmapiClient, ThrottlingIsRetriedHonouringRetryAfter) {
  appban::testing::AmapiEmulatorOptions options;
  options.max_page_size = 1;
  options.throttle_every = 2;
  options.retry_after = "7";
  ClientFixture f(options);
  for (int i = 0; i < 3; ++i) f.fixture.emulator->PutDevice(Device("d" + std::to_string(i), PolicyName("p"), {}));
  auto devices = f.client->ListDevices(kEnterprise);
  ASSERT_TRUE(devices.ok()) << devices.status().ToString();
  EXPECT_EQ(devices->size(), 3u);
  EXPECT_GE(f.fixture.emulator->throttled(), 2);
  EXPECT_EQ(f.client->retries(), f.fixture.emulator->throttled());
  ASSERT_FALSE(f.fixture.sleeps.empty());
  for (auto delay : f.fixture.sleeps) EXPECT_EQ(delay, std::chrono::seconds(7));
}

TEST(AmapiClient, UnavailableIsRetriedThenReported) {
  ClientFixture f;
  f.fixture.emulator->PutPolicy(PolicyName("default"), Json::object());
  f.fixture.emulator->FailNext(2, 503, "GET");
  auto policy = f.client->GetPolicy(PolicyName("default"));
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  EXPECT_EQ(f.client->retries(), 2);
  f.fixture.emulator->FailNext(4, 503, "GET");  // every one of the 4 attempts
  auto gone = f.client->GetPolicy(PolicyName("default"));
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(gone.status().message().find("503 UNAVAILABLE"), std::string::npos) << gone.status().message();
  EXPECT_EQ(f.client->GetPolicy(PolicyName("absent")).status().code(), StatusCode::kNotFound);
}

TEST(AmapiClient, RevokedBearerIsReplacedOnce) {
  ClientFixture f;
  f.fixture.emulator->PutPolicy(PolicyName("default"), Json::object());
  ASSERT_TRUE(f.client->GetPolicy(PolicyName("default")).ok());
  f.fixture.emulator->RevokeTokens();
  ASSERT_TRUE(f.client->GetPolicy(PolicyName("default")).ok());
  EXPECT_EQ(f.fixture.emulator->token_grants(), 2);
}

TEST(AmapiClient, PatchWithoutMaskIsRefusedLocally) {
  ClientFixture f;
  EXPECT_EQ(f.client->PatchPolicy(PolicyName("default"), Json::object(), "").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(f.fixture.emulator->api_calls(), 0);
}

// The emulator is only worth testing against if it refuses what Google refuses.
TEST(AmapiEmulator, RefusesBodiesTheSpecDoesNotAllow) {
  ClientFixture f;
  const std::string name = PolicyName("default");
  f.fixture.emulator->PutPolicy(name, Json{{"cameraDisabled", true}});
  auto unknown = f.client->PatchPolicy(
      name, Json{{"applications", {{{"packageName", "com.tencent.mm"}, {"installTyp", "BLOCKED"}}}}}, "applications");
  ASSERT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("Unknown name \"installTyp\" at 'applications[0]'"), std::string::npos)
      << unknown.status().message();
  auto bad_enum = f.client->PatchPolicy(
      name, Json{{"applications", {{{"packageName", "com.tencent.mm"}, {"installType", "BLOCK"}}}}}, "applications");
  ASSERT_EQ(bad_enum.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_enum.status().message().find("applications[0].installType"), std::string::npos);
  auto bad_type = f.client->PatchPolicy(name, Json{{"statusReportingSettings", {{"applicationReportsEnabled", "yes"}}}},
                                        "statusReportingSettings");
  EXPECT_EQ(bad_type.status().code(), StatusCode::kInvalidArgument);
  auto not_array = f.client->PatchPolicy(name, Json{{"applications", Json::object()}}, "applications");
  EXPECT_EQ(not_array.status().code(), StatusCode::kInvalidArgument);
  auto bad_mask = f.client->PatchPolicy(name, Json{{"cameraDisabled", false}}, "cameraDisabld");
  EXPECT_EQ(bad_mask.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(f.fixture.emulator->patches(), 0);
  EXPECT_EQ(f.fixture.emulator->GetPolicy(name)["cameraDisabled"], true);

  // A conforming body passes, and the mask keeps every other field.
  auto ok = f.client->PatchPolicy(
      name, Json{{"applications", {{{"packageName", "com.tencent.mm"}, {"installType", "BLOCKED"}}}}}, "applications");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ((*ok)["version"], "2");
  EXPECT_EQ((*ok)["cameraDisabled"], true);
}

TEST(AmapiEmulator, SchemaValidatorFollowsReferencesAndFormats) {
  auto schemas = appban::testing::DiscoverySchemas::Load(SpecPath());
  ASSERT_TRUE(schemas.ok()) << schemas.status().ToString();
  EXPECT_FALSE(schemas->Validate("Policy", Json{{"minimumApiLevel", 24}, {"maximumTimeToLock", "60000"}}));
  EXPECT_TRUE(schemas->Validate("Policy", Json{{"minimumApiLevel", 3'000'000'000LL}}));  // out of int32
  EXPECT_TRUE(schemas->Validate("Policy", Json{{"maximumTimeToLock", "soon"}}));         // int64 as text
  EXPECT_FALSE(schemas->Validate("Policy", Json{{"openNetworkConfiguration", {{"anything", {1, 2}}}}}));  // Struct
  EXPECT_TRUE(schemas->Validate("Policy", Json{{"playStoreMode", "BLOCKLIST"}}));
  EXPECT_FALSE(schemas->Validate("Policy", Json{{"playStoreMode", "BLACKLIST"}}));
  EXPECT_TRUE(schemas->Validate("Policy", Json{{"passwordRequirements", {{"passwordMinimumLength", true}}}}));
}

}  // namespace
}  // namespace appban::mdm
