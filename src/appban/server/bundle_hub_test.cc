// BundleHub against a real SQLite store in a temporary directory, with bundles signed by a fresh
// key: what a long-polling device is answered and when, and what the worker serves after a
// publish (its own or another worker's).
#include "appban/server/bundle_hub.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "appban/policy/bundle.h"
#include "appban/policy/keys.h"
#include "appban/protocol/messages.h"
#include "appban/store/store.h"

namespace appban::server {
namespace {

namespace fs = std::filesystem;

constexpr UnixSeconds kStart = 1'800'000'000;

// Stands in for a connection: keeps the one response it is given.
class CapturingSink : public net::detail::ResponseSink {
 public:
  void Complete(uint64_t, net::HttpResponse response) override { response_ = std::move(response); }
  bool ClientConnected() const override { return true; }
  const std::optional<net::HttpResponse>& response() const { return response_; }

 private:
  std::optional<net::HttpResponse> response_;
};

class BundleHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "appban-bundle-hub-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    auto store = store::OpenSqliteStore(dir_ + "/appban.db");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    auto key = policy::SigningKey::Generate();
    ASSERT_TRUE(key.ok());
    key_ = std::make_unique<policy::SigningKey>(std::move(*key));
    hub_ = std::make_unique<BundleHub>(*store_, std::vector<policy::PublicKey>{key_->public_key()});
  }
  void TearDown() override {
    hub_.reset();
    store_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  static policy::Rule PublishedRule(const std::string& id, const std::string& package) {
    policy::Rule rule;
    rule.id = id;
    rule.title = "Ban " + package;
    auto target = policy::MakeTarget(policy::TargetKind::kAndroidPackage, package);
    EXPECT_TRUE(target.ok());
    if (target.ok()) rule.targets.push_back(*target);
    rule.state = policy::RuleState::kPublished;
    return rule;
  }

  // Compiles, signs with `key` and records bundle `version` holding `rules`, as a publish does.
  // Returns the envelope.
  std::string Publish(int64_t version, UnixSeconds issued_at, std::vector<policy::Rule> rules,
                      const policy::SigningKey* key = nullptr) {
    policy::BundleInputs inputs;
    inputs.rules = std::move(rules);
    inputs.version = version;
    inputs.issued_at = issued_at;
    inputs.not_after = issued_at + 7 * 86400;
    auto bundle = policy::CompileBundle(inputs);
    EXPECT_TRUE(bundle.ok()) << bundle.status().ToString();
    if (!bundle.ok()) return "";
    auto envelope = policy::SignBundle(*bundle, key != nullptr ? *key : *key_);
    EXPECT_TRUE(envelope.ok()) << envelope.status().ToString();
    if (!envelope.ok()) return "";
    store::BundleRecord record{version, issued_at, bundle->rules_hash, "", *envelope};
    store::AuditRecord audit{"alice", "bundle.publish", "bundle:" + std::to_string(version),
                             nullptr, nullptr,          issued_at};
    Status recorded = store_->RecordBundle(record, audit);
    EXPECT_TRUE(recorded.ok()) << recorded.ToString();
    return *envelope;
  }

  // A long-poll from `device` that knows `known_version`, waiting until `deadline`.
  std::shared_ptr<CapturingSink> Poll(int64_t known_version, int64_t deadline, const std::string& device = "d1") {
    auto sink = std::make_shared<CapturingSink>();
    hub_->AddPoll(known_version, net::Responder(sink, 1), deadline, device);
    return sink;
  }

  static Json BodyOf(const net::HttpResponse& response) {
    Json json = Json::parse(response.BodyView(), nullptr, false);
    EXPECT_FALSE(json.is_discarded()) << response.BodyView();
    return json;
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<policy::SigningKey> key_;
  std::unique_ptr<BundleHub> hub_;
};

TEST_F(BundleHubTest, BeforeAnyPublishThereIsNothingToServe) {
  auto refreshed = hub_->Refresh();
  ASSERT_TRUE(refreshed.ok()) << refreshed.status().ToString();
  EXPECT_FALSE(*refreshed);
  EXPECT_EQ(hub_->latest().version, 0);
  EXPECT_EQ(hub_->latest().envelope, nullptr);
  EXPECT_EQ(hub_->bundle_member(), "");
  auto poll = protocol::ParsePollResponse(*hub_->poll_body());
  ASSERT_TRUE(poll.ok()) << poll.status().ToString();
  EXPECT_EQ(poll->latest_version, 0);
  EXPECT_FALSE(poll->bundle.has_value());
}

TEST_F(BundleHubTest, RefreshLoadsTheNewestBundleOnceAndServesItsEnvelope) {
  Publish(1, kStart, {PublishedRule("ban-a", "com.example.a")});
  std::string envelope = Publish(2, kStart + 60, {PublishedRule("ban-a", "com.example.a")});

  auto refreshed = hub_->Refresh();
  ASSERT_TRUE(refreshed.ok()) << refreshed.status().ToString();
  EXPECT_TRUE(*refreshed);
  const verify::PublishedBundle& latest = hub_->latest();
  EXPECT_EQ(latest.version, 2);
  EXPECT_EQ(latest.issued_at, kStart + 60);
  ASSERT_NE(latest.envelope, nullptr);
  EXPECT_EQ(*latest.envelope, envelope);
  ASSERT_NE(latest.bundle, nullptr);
  EXPECT_EQ(latest.rules_hash, latest.bundle->rules_hash);
  ASSERT_NE(latest.index, nullptr);

  auto poll = protocol::ParsePollResponse(*hub_->poll_body());
  ASSERT_TRUE(poll.ok()) << poll.status().ToString();
  EXPECT_EQ(poll->latest_version, 2);
  EXPECT_EQ(poll->bundle, envelope);
  // The check-in answer's member is the envelope as a JSON string, ready to splice into an object.
  Json member = Json::parse("{" + hub_->bundle_member() + "}", nullptr, false);
  ASSERT_FALSE(member.is_discarded()) << hub_->bundle_member();
  EXPECT_EQ(member["bundle"], envelope);

  // Nothing newer: no reload, the caller has no polls to wake.
  auto again = hub_->Refresh();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(hub_->latest().version, 2);
}

TEST_F(BundleHubTest, ABundleSignedByAnUntrustedKeyIsNotServed) {
  auto other_key = policy::SigningKey::Generate();
  ASSERT_TRUE(other_key.ok());
  Publish(1, kStart, {PublishedRule("ban-a", "com.example.a")}, &*other_key);

  auto refreshed = hub_->Refresh();
  ASSERT_FALSE(refreshed.ok());
  EXPECT_NE(refreshed.status().message().find("stored bundle 1 does not verify"), std::string::npos)
      << refreshed.status().ToString();
  EXPECT_EQ(hub_->latest().version, 0);
  EXPECT_EQ(hub_->bundle_member(), "");
}

TEST_F(BundleHubTest, ARuleCountsAsPublishedFromTheFirstBundleThatCarriedIt) {
  Publish(1, kStart, {PublishedRule("ban-a", "com.example.a")});
  Publish(2, kStart + 100, {PublishedRule("ban-b", "com.example.b")});
  Publish(3, kStart + 200, {PublishedRule("ban-a", "com.example.a"), PublishedRule("ban-b", "com.example.b")});
  Publish(4, kStart + 300, {PublishedRule("ban-a", "com.example.a"), PublishedRule("ban-b", "com.example.b")});

  // A worker starting now sees bundle 4 first and walks back through the issued bundles.
  ASSERT_TRUE(hub_->Refresh().ok());
  const auto& first = hub_->latest().rule_first_published;
  ASSERT_EQ(first.size(), 2u);
  // ban-a was dropped in bundle 2, so it counts from its return in bundle 3.
  EXPECT_EQ(first.at("ban-a"), (std::pair<int64_t, UnixSeconds>{3, kStart + 200}));
  EXPECT_EQ(first.at("ban-b"), (std::pair<int64_t, UnixSeconds>{2, kStart + 100}));

  // A rule the worker already knew keeps its first version across later bundles.
  Publish(5, kStart + 400, {PublishedRule("ban-b", "com.example.b"), PublishedRule("ban-c", "com.example.c")});
  ASSERT_TRUE(hub_->Refresh().ok());
  const auto& after = hub_->latest().rule_first_published;
  EXPECT_EQ(after.count("ban-a"), 0u);
  EXPECT_EQ(after.at("ban-b"), (std::pair<int64_t, UnixSeconds>{2, kStart + 100}));
  EXPECT_EQ(after.at("ban-c"), (std::pair<int64_t, UnixSeconds>{5, kStart + 400}));
}

TEST_F(BundleHubTest, WakePollsAnswersOnlyPollsOlderThanTheNewVersion) {
  std::string envelope = Publish(1, kStart, {PublishedRule("ban-a", "com.example.a")});
  auto stale = Poll(0, 100, "old-device");
  auto current = Poll(1, 100, "new-device");
  // Nothing loaded yet: the hub's version is 0, so nobody is behind.
  hub_->WakePolls();
  EXPECT_FALSE(stale->response().has_value());
  EXPECT_EQ(hub_->waiting(), 2u);

  ASSERT_TRUE(hub_->Refresh().ok());
  hub_->WakePolls();
  ASSERT_TRUE(stale->response().has_value());
  EXPECT_EQ(stale->response()->status, 200);
  // Every woken poll shares the one body built at load time.
  EXPECT_EQ(stale->response()->shared_body, hub_->poll_body());
  Json body = BodyOf(*stale->response());
  EXPECT_EQ(body["latest_version"], 1);
  EXPECT_EQ(body["bundle"], envelope);
  EXPECT_FALSE(current->response().has_value()) << "a device that holds version 1 keeps waiting";
  EXPECT_EQ(hub_->waiting(), 1u);
}

TEST_F(BundleHubTest, ExpiredPollsAreAnswered204AndLaterOnesKeepWaiting) {
  auto early = Poll(0, 100, "a");
  auto due = Poll(0, 101, "b");
  auto later = Poll(0, 102, "c");
  hub_->ExpirePolls(101);
  ASSERT_TRUE(early->response().has_value());
  EXPECT_EQ(early->response()->status, 204);
  EXPECT_EQ(early->response()->BodyView(), "");
  ASSERT_TRUE(due->response().has_value());
  EXPECT_EQ(due->response()->status, 204);
  EXPECT_FALSE(later->response().has_value());
  EXPECT_EQ(hub_->waiting(), 1u);
}

TEST_F(BundleHubTest, ARevokedDeviceLosesItsPollsWith403AndOthersStay) {
  auto revoked_first = Poll(0, 100, "revoked");
  auto revoked_second = Poll(0, 200, "revoked");
  auto other = Poll(0, 100, "other");
  hub_->DropDevicePolls("revoked");
  for (const auto& sink : {revoked_first, revoked_second}) {
    ASSERT_TRUE(sink->response().has_value());
    EXPECT_EQ(sink->response()->status, 403);
    EXPECT_EQ(BodyOf(*sink->response())["error"]["code"], "device_revoked");
  }
  EXPECT_FALSE(other->response().has_value());
  EXPECT_EQ(hub_->waiting(), 1u);
}

TEST_F(BundleHubTest, ShutdownAnswersEveryWaitingPoll) {
  auto first = Poll(0, 100, "a");
  auto second = Poll(3, 500, "b");
  hub_->DrainPolls(503, "shutting_down", "the server is restarting");
  for (const auto& sink : {first, second}) {
    ASSERT_TRUE(sink->response().has_value());
    EXPECT_EQ(sink->response()->status, 503);
    Json body = BodyOf(*sink->response());
    EXPECT_EQ(body["error"]["code"], "shutting_down");
    EXPECT_EQ(body["error"]["message"], "the server is restarting");
  }
  EXPECT_EQ(hub_->waiting(), 0u);
  // Nothing is left to expire.
  hub_->ExpirePolls(1000);
  EXPECT_EQ(hub_->waiting(), 0u);
}

}  // namespace
}  // namespace appban::server
