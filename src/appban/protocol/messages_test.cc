#include "appban/protocol/messages.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "appban/common/crypto.h"

namespace appban::protocol {
namespace {

std::vector<policy::InstalledApp> SampleApps() {
  return {
      {policy::Platform::kDeb, "wechat", "3.9.1", "", ""},
      {policy::Platform::kFlatpak, "org.mozilla.firefox", "120.0", "", ""},
      {policy::Platform::kDeb, "bash", "5.2.15-2", "", ""},
      {policy::Platform::kAndroid, "com.tencent.mm", "8.0.40", std::string(64, 'a'), ""},
  };
}

TEST(InventoryHashTest, IsSha256OfTheSortedCanonicalArray) {
  // Built by hand from the definition in docs/protocol.md: sorted by platform enum order
  // (android, ios, deb, flatpak, snap), then id; members sorted by key, empty ones left out.
  std::string expected_text = "[{\"id\":\"com.tencent.mm\",\"platform\":\"android\",\"signer_sha256\":\"" +
                              std::string(64, 'a') +
                              "\",\"version\":\"8.0.40\"},"
                              "{\"id\":\"bash\",\"platform\":\"deb\",\"version\":\"5.2.15-2\"},"
                              "{\"id\":\"wechat\",\"platform\":\"deb\",\"version\":\"3.9.1\"},"
                              "{\"id\":\"org.mozilla.firefox\",\"platform\":\"flatpak\",\"version\":\"120.0\"}]";
  EXPECT_EQ(CanonicalInventory(SampleApps()), expected_text);
  EXPECT_EQ(InventoryHash(SampleApps()), Sha256Hex(AsBytes(expected_text)));
}

TEST(InventoryHashTest, DoesNotDependOnOrderButOnContent) {
  auto apps = SampleApps();
  std::string hash = InventoryHash(apps);
  std::mt19937 random(7);
  for (int i = 0; i < 20; ++i) {
    std::shuffle(apps.begin(), apps.end(), random);
    EXPECT_EQ(InventoryHash(apps), hash);
  }
  apps[0].version += "+1";
  EXPECT_NE(InventoryHash(apps), hash);
}

TEST(CheckinTest, RoundTripsThroughJson) {
  CheckinRequest request;
  request.applied_version = 7;
  request.rules_hash = std::string(64, 'b');
  request.inventory = SampleApps();
  request.inventory_hash = InventoryHash(*request.inventory);
  request.events.push_back({41, 1795000123, EventKind::kRemoved, "deb", "wechat", "ca-wechat", ""});
  request.events.push_back({42, 1795000124, EventKind::kRemoveFailed, "deb", "kaspersky", "ca-k", "dpkg: error"});
  request.agent_version = "0.1.0";
  auto parsed = ParseCheckinRequest(ToJson(request).dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->applied_version, 7);
  EXPECT_EQ(parsed->inventory_hash, request.inventory_hash);
  ASSERT_TRUE(parsed->inventory.has_value());
  EXPECT_EQ(InventoryHash(*parsed->inventory), request.inventory_hash);
  ASSERT_EQ(parsed->events.size(), 2u);
  EXPECT_EQ(parsed->events[1].kind, EventKind::kRemoveFailed);
  EXPECT_EQ(parsed->events[1].detail, "dpkg: error");
}

struct BadCheckin {
  std::string body;
  std::string message_part;
};

class CheckinRefusalTest : public ::testing::TestWithParam<BadCheckin> {};

TEST_P(CheckinRefusalTest, NamesTheProblem) {
  auto parsed = ParseCheckinRequest(GetParam().body);
  ASSERT_FALSE(parsed.ok()) << GetParam().body;
  EXPECT_NE(std::string(parsed.status().message()).find(GetParam().message_part), std::string::npos)
      << parsed.status().ToString();
}

const std::string kHash(64, 'c');

INSTANTIATE_TEST_SUITE_P(
    Hostile, CheckinRefusalTest,
    ::testing::Values(
        BadCheckin{"", "checkin"}, BadCheckin{"[1,2]", "checkin: must be a JSON object"},
        BadCheckin{"{\"inventory_hash\":\"" + kHash + "\"}", "checkin.applied_version: missing"},
        BadCheckin{"{\"applied_version\":\"7\",\"inventory_hash\":\"" + kHash + "\"}",
                   "checkin.applied_version: must be an integer"},
        BadCheckin{"{\"applied_version\":-1,\"inventory_hash\":\"" + kHash + "\"}", "must be at least 0"},
        BadCheckin{"{\"applied_version\":1,\"inventory_hash\":\"XYZ\"}", "checkin.inventory_hash: must be 64"},
        BadCheckin{"{\"applied_version\":1,\"inventory_hash\":\"" + kHash + "\",\"colour\":1}",
                   "unknown member \"colour\""},
        BadCheckin{"{\"applied_version\":1,\"inventory_hash\":\"" + kHash + "\",\"inventory\":[]}",
                   "does not match the inventory sent"},
        BadCheckin{"{\"applied_version\":1,\"inventory_hash\":\"" + kHash +
                       "\",\"inventory\":[{\"platform\":\"amiga\",\"id\":\"x\"}]}",
                   "checkin.inventory[0].platform: unknown platform"},
        BadCheckin{"{\"applied_version\":1,\"inventory_hash\":\"" + kHash +
                       "\",\"events\":[{\"seq\":1,\"at\":5,\"kind\":\"removd\"}]}",
                   "checkin.events[0].kind: unknown event kind \"removd\""},
        BadCheckin{
            "{\"applied_version\":1,\"inventory_hash\":\"" + kHash +
                "\",\"events\":[{\"seq\":2,\"at\":5,\"kind\":\"removed\"},{\"seq\":2,\"at\":5,\"kind\":\"removed\"}]}",
            "events[1].seq: events must be sorted"},
        BadCheckin{"{\"applied_version\":1,\"inventory_hash\":\"" + kHash +
                       "\",\"events\":[{\"seq\":0,\"at\":5,\"kind\":\"removed\"}]}",
                   "checkin.events[0].seq: must be at least 1"},
        BadCheckin{std::string(100, '[') + std::string(100, ']'), "deeper"}));

// CanonicalInventory writes the canonical text directly; it must be byte for byte what the
// general canonical writer makes of the same inventory, whatever the identifiers hold.
TEST(InventoryHashTest, DirectWriterMatchesTheGeneralCanonicalForm) {
  std::mt19937_64 rng(20261128);
  const std::vector<std::string> pieces = {"a",
                                           "Z",
                                           "0",
                                           ".",
                                           "-",
                                           "\"",
                                           "\\",
                                           "/",
                                           "\n",
                                           "\t",
                                           "\b",
                                           "\f",
                                           "\r",
                                           std::string(1, '\x01'),
                                           std::string(1, '\x1f'),
                                           "\x7f",
                                           "\xc3\xa9",
                                           "\xe2\x82\xac",
                                           "\xf0\x9f\x98\x80",
                                           " ",
                                           ":",
                                           ","};
  auto text = [&](size_t max_pieces) {
    std::string out;
    size_t n = std::uniform_int_distribution<size_t>(0, max_pieces)(rng);
    for (size_t i = 0; i < n; ++i) out += pieces[std::uniform_int_distribution<size_t>(0, pieces.size() - 1)(rng)];
    return out;
  };
  for (int round = 0; round < 500; ++round) {
    std::vector<policy::InstalledApp> apps(std::uniform_int_distribution<size_t>(0, 12)(rng));
    for (auto& app : apps) {
      app.platform = static_cast<policy::Platform>(std::uniform_int_distribution<int>(0, 4)(rng));
      app.id = text(6);
      if (app.id.empty()) app.id = "x";
      app.version = text(3);
      app.signer_sha256 = round % 3 == 0 ? text(2) : "";
      app.team_id = round % 5 == 0 ? text(2) : "";
    }
    if (round % 7 == 0 && !apps.empty()) apps.push_back(apps.front());  // duplicates sort stably
    auto reference = CanonicalJson(InventoryToJson(apps));
    ASSERT_TRUE(reference.ok());
    ASSERT_EQ(CanonicalInventory(apps), *reference) << "round " << round;
  }
  // Invalid UTF-8 cannot be canonical: both writers refuse it.
  std::vector<policy::InstalledApp> bad = {{policy::Platform::kDeb, "bad\xff", "", "", ""}};
  EXPECT_FALSE(CanonicalJson(InventoryToJson(bad)).ok());
  EXPECT_EQ(CanonicalInventory(bad), "");
  bad[0].id = "overlong\xc0\xaf";
  EXPECT_EQ(CanonicalInventory(bad), "");
  bad[0].id = "surrogate\xed\xa0\x80";
  EXPECT_EQ(CanonicalInventory(bad), "");
}

// The body agents send splices the canonical inventory text in; the server reads the same request.
TEST(CheckinTest, RequestBodyParsesBackToTheSameRequest) {
  CheckinRequest request;
  request.applied_version = 4;
  request.rules_hash = std::string(64, 'b');
  request.inventory = SampleApps();
  request.inventory_hash = InventoryHash(*request.inventory);
  DeviceEvent event;
  event.seq = 1;
  event.at = 1800000000;
  event.kind = EventKind::kRemoved;
  event.platform = "deb";
  event.app = "wechat";
  event.rule_id = "ban-wechat";
  request.events.push_back(event);
  request.agent_version = "appban-agent/1.0";
  for (bool precomputed : {false, true}) {
    request.canonical_inventory = precomputed ? CanonicalInventory(*request.inventory) : "";
    std::string body = CheckinRequestBody(request);
    EXPECT_TRUE(Json::accept(body)) << body;
    auto parsed = ParseCheckinRequest(body);
    ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
    EXPECT_EQ(ToJson(*parsed), ToJson(request));
    EXPECT_EQ(parsed->canonical_inventory, CanonicalInventory(*request.inventory));
  }
  request.inventory.reset();
  EXPECT_EQ(CheckinRequestBody(request), ToJson(request).dump());
}

TEST(CheckinTest, RefusesTooManyEvents) {
  Json events = Json::array();
  for (size_t i = 1; i <= kProtocolLimits.max_events_per_checkin + 1; ++i) {
    events.push_back({{"seq", i}, {"at", 1}, {"kind", "removed"}});
  }
  Json body = {{"applied_version", 0}, {"inventory_hash", kHash}, {"events", events}};
  auto parsed = ParseCheckinRequest(body.dump());
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kLimitExceeded);
}

TEST(EnrollTest, RoundTripAndRefusals) {
  EnrollRequest request{"e-1.abc", "ws-1", "linux", "0.1.0"};
  auto parsed = ParseEnrollRequest(ToJson(request).dump());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->token, "e-1.abc");
  EXPECT_FALSE(ParseEnrollRequest("{\"token\":\"x\",\"platform\":\"linux\"}").ok());
  EXPECT_FALSE(ParseEnrollRequest("{\"token\":\"x\",\"hostname\":\"\",\"platform\":\"linux\"}").ok());
  EXPECT_FALSE(
      ParseEnrollRequest("{\"token\":\"" + std::string(1000, 'x') + "\",\"hostname\":\"h\",\"platform\":\"l\"}").ok());
}

TEST(ResponsesTest, AgentsIgnoreMembersAddedLater) {
  auto checkin = ParseCheckinResponse(
      "{\"server_time\":5,\"latest_version\":3,\"bundle\":\"{}\",\"send_inventory\":true,\"events_acked\":9,"
      "\"checkin_interval\":300,\"longpoll_timeout\":60,\"something_new\":1}");
  ASSERT_TRUE(checkin.ok()) << checkin.status().ToString();
  EXPECT_EQ(checkin->latest_version, 3);
  EXPECT_TRUE(checkin->send_inventory);
  EXPECT_EQ(checkin->bundle.value_or(""), "{}");
  auto poll = ParsePollResponse("{\"latest_version\":4}");
  ASSERT_TRUE(poll.ok());
  EXPECT_FALSE(poll->bundle.has_value());
}

TEST(ErrorBodyTest, IsValidJsonEvenForInvalidUtf8) {
  std::string body = ErrorBody("bad_request", std::string("bad \xff byte"));
  auto json = Json::parse(body);
  EXPECT_EQ(json["error"]["code"], "bad_request");
}

TEST(BearerTest, ExtractsTheCredential) {
  EXPECT_EQ(BearerCredential("Bearer d-1.abc"), "d-1.abc");
  EXPECT_EQ(BearerCredential("bearer   d-1.abc "), "d-1.abc");
  EXPECT_EQ(BearerCredential("Basic abc"), "");
  EXPECT_EQ(BearerCredential("Bearer "), "");
  EXPECT_EQ(BearerCredential(""), "");
}

}  // namespace
}  // namespace appban::protocol
