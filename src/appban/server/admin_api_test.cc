#include "appban/server/admin_api.h"
#include "appban/server/admin_handlers.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "appban/common/file.h"
#include "appban/common/text.h"
#include "appban/policy/bundle.h"
#include "appban/policy/keys.h"
#include "appban/protocol/messages.h"
#include "appban/server/assessment_pool.h"
#include "appban/server/bundle_hub.h"
#include "appban/server/config.h"
#include "appban/store/fleet.h"
#include "appban/store/match_records.h"
#include "appban/store/store.h"

namespace appban::server {
namespace {

namespace fs = std::filesystem;

constexpr UnixSeconds kStart = 1'800'000'000;
constexpr const char* kExampleApk = "/usr/share/doc/androguard/examples/signing/TestActivity_signed_both.apk";

// Stands in for a connection: keeps the one response it is given.
class CapturingSink : public net::detail::ResponseSink {
 public:
  void Complete(uint64_t, net::HttpResponse response) override { response_ = std::move(response); }
  bool ClientConnected() const override { return true; }
  const std::optional<net::HttpResponse>& response() const { return response_; }

 private:
  std::optional<net::HttpResponse> response_;
};

// Records what the API told the other workers; refreshes the hub the way the worker does.
class RecordingNotifier : public FleetNotifier {
 public:
  explicit RecordingNotifier(BundleHub* hub) : hub_(hub) {}
  void BundlePublished() override {
    ++published;
    if (hub_ != nullptr) {
      EXPECT_TRUE(hub_->Refresh().ok());
    }
  }
  void DeviceRevoked(const std::string& device_id) override { revoked.push_back(device_id); }

  int published = 0;
  std::vector<std::string> revoked;

 private:
  BundleHub* hub_;
};

class AdminApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "appban-admin-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    std::string db = dir_ + "/appban.db";
    auto store = store::OpenSqliteStore(db);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    auto fleet = store::OpenSqliteFleetStore(db);
    ASSERT_TRUE(fleet.ok()) << fleet.status().ToString();
    fleet_ = std::move(*fleet);
    auto pool_fleet = store::OpenSqliteFleetStore(db);
    ASSERT_TRUE(pool_fleet.ok()) << pool_fleet.status().ToString();
    pool_ = std::make_unique<AssessmentPool>(io_, std::move(*pool_fleet), AssessmentPool::Options{});
    auto key = policy::SigningKey::Generate();
    ASSERT_TRUE(key.ok());
    key_ = std::make_unique<policy::SigningKey>(std::move(*key));
    hub_ = std::make_unique<BundleHub>(*store_, std::vector<policy::PublicKey>{key_->public_key()});
    notifier_ = std::make_unique<RecordingNotifier>(hub_.get());
    config_.data_dir = dir_;
    config_.devices.stale_after_seconds = 900;

    context_.config = &config_;
    context_.store = store_.get();
    context_.fleet = fleet_.get();
    context_.signing_key = key_.get();
    context_.notifier = notifier_.get();
    context_.clock = [this] { return now_; };
    context_.latest_bundle = [this]() -> const verify::PublishedBundle& { return hub_->latest(); };
    context_.data_dir = dir_;
    context_.assessments = pool_.get();

    alice_ = MakeToken("alice", store::Role::kAdmin);
    bob_ = MakeToken("bob", store::Role::kAdmin);
    carol_ = MakeToken("carol", store::Role::kAnalyst);
    dave_ = MakeToken("dave", store::Role::kAuditor);
  }
  void TearDown() override {
    pool_.reset();
    hub_.reset();
    fleet_.reset();
    store_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::string MakeToken(const std::string& name, store::Role role, std::optional<UnixSeconds> expires = std::nullopt) {
    store::AuditRecord audit;
    audit.actor = "test-setup";
    audit.at = now_;
    // Each name is a person signed in at the provider (subject = name) holding one token.
    auto user = fleet_->RecordSignIn(store::SignIn{"https://idp.test", name, name, role, now_}, audit);
    EXPECT_TRUE(user.ok()) << user.status().ToString();
    if (!user.ok()) return "";
    user_ids_[name] = user->id;
    auto created = fleet_->CreateApiToken(user->id, name + "-token", role, expires, audit);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? created->presented : "";
  }

  net::HttpResponse Send(const std::string& method, const std::string& target, const std::string& token,
                         const std::string& body = "", const std::string& content_type = "application/json") {
    net::HttpRequest request;
    request.method = method;
    size_t question = target.find('?');
    request.path = target.substr(0, question);
    if (question != std::string::npos) request.query = target.substr(question + 1);
    if (!token.empty()) request.headers.emplace_back("authorization", "Bearer " + token);
    if (!body.empty()) request.headers.emplace_back("content-type", content_type);
    request.body = body;
    request.remote_address = "127.0.0.1";
    return Answer(std::move(request));
  }
  // What the API answers to `request`, running the io_context until it does (an upload is answered
  // there once the assessment pool finished).
  net::HttpResponse Answer(net::HttpRequest request) {
    auto sink = std::make_shared<CapturingSink>();
    HandleAdminRequest(context_, std::move(request), net::Responder(sink, 1));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!sink->response() && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds(5));
    }
    EXPECT_TRUE(sink->response().has_value()) << "no answer within 120 s";
    return sink->response().value_or(net::HttpResponse{});
  }
  static Json BodyOf(const net::HttpResponse& response) {
    Json json = Json::parse(response.body, nullptr, false);
    EXPECT_FALSE(json.is_discarded()) << response.body;
    return json;
  }
  static std::string ErrorCode(const net::HttpResponse& response) {
    Json json = BodyOf(response);
    return json.contains("error") ? json["error"].value("code", "") : "";
  }
  static std::string ErrorMessage(const net::HttpResponse& response) {
    Json json = BodyOf(response);
    return json.contains("error") ? json["error"].value("message", "") : "";
  }

  static std::string RuleBody(const std::string& id, const std::string& extra = "") {
    return R"({"id":")" + id + R"(","title":"Ban )" + id + R"(","targets":[{"kind":"deb","value":")" + id +
           R"("}],"action":"remove")" + extra + "}";
  }
  // carol proposes, alice approves and publishes.
  void PublishedRule(const std::string& id) {
    ASSERT_EQ(Send("POST", "/v1/admin/rules", carol_, RuleBody(id)).status, 201);
    ASSERT_EQ(Send("POST", "/v1/admin/rules/" + id + "/approve", alice_).status, 200);
    ASSERT_EQ(Send("POST", "/v1/admin/rules/" + id + "/publish", alice_).status, 200);
  }
  std::string EnrollDevice(const std::string& hostname, const std::string& group = "") {
    std::string body = group.empty() ? "{}" : R"({"group":")" + group + R"("})";
    auto tokens = Send("POST", "/v1/admin/enrollment-tokens", alice_, body);
    EXPECT_EQ(tokens.status, 201) << tokens.body;
    std::string presented = BodyOf(tokens)["tokens"][0]["token"];
    auto enrolled = fleet_->EnrollDevice(presented, hostname, "linux", "0.1.0", now_);
    EXPECT_TRUE(enrolled.ok()) << enrolled.status().ToString();
    return enrolled.ok() ? enrolled->device.id : "";
  }

  std::string dir_;
  UnixSeconds now_ = kStart;
  ServerConfig config_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::FleetStore> fleet_;
  std::unique_ptr<policy::SigningKey> key_;
  std::unique_ptr<BundleHub> hub_;
  std::unique_ptr<RecordingNotifier> notifier_;
  boost::asio::io_context io_{1};
  std::unique_ptr<AssessmentPool> pool_;
  WorkerContext context_;
  std::string alice_, bob_, carol_, dave_;
  std::map<std::string, std::string> user_ids_;  // name -> user id
};

// ---- authentication ----

TEST_F(AdminApiTest, MissingOrInvalidCredentialsAre401) {
  auto none = Send("GET", "/v1/admin/whoami", "");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(ErrorCode(none), "unauthenticated");
  EXPECT_NE(ErrorMessage(none).find("Authorization"), std::string::npos);

  net::HttpRequest basic;
  basic.method = "GET";
  basic.path = "/v1/admin/whoami";
  basic.headers.emplace_back("authorization", "Basic YWxpY2U6c2VjcmV0");
  EXPECT_EQ(Answer(basic).status, 401);

  EXPECT_EQ(Send("GET", "/v1/admin/whoami", "not-a-token").status, 401);
  // A genuine id with a wrong secret.
  std::string forged = alice_.substr(0, alice_.find('.') + 1) + std::string(64, '0');
  EXPECT_EQ(Send("GET", "/v1/admin/whoami", forged).status, 401);

  // Expired and revoked tokens stop working.
  std::string brief = MakeToken("erin", store::Role::kAdmin, now_ + 60);
  EXPECT_EQ(Send("GET", "/v1/admin/whoami", brief).status, 200);
  now_ += 61;
  EXPECT_EQ(Send("GET", "/v1/admin/whoami", brief).status, 401);
  std::string frank = MakeToken("frank", store::Role::kAuditor);
  auto who = BodyOf(Send("GET", "/v1/admin/whoami", frank));
  EXPECT_EQ(who["display_name"], "frank");
  EXPECT_EQ(who["actor"], user_ids_["frank"]);
  EXPECT_EQ(who["method"], "api-token");
  EXPECT_EQ(who["role"], "auditor");
  EXPECT_EQ(Send("POST", "/v1/admin/tokens/" + std::string(who["token_id"]) + "/revoke", alice_).status, 200);
  EXPECT_EQ(Send("GET", "/v1/admin/whoami", frank).status, 401);
}

// ---- roles ----

TEST_F(AdminApiTest, RoleMatrix) {
  // auditor: reads, never writes.
  auto denied = Send("POST", "/v1/admin/rules", dave_, RuleBody("r1"));
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(ErrorCode(denied), "forbidden");
  EXPECT_NE(ErrorMessage(denied).find("analyst"), std::string::npos) << ErrorMessage(denied);
  for (const char* path : {"/v1/admin/rules", "/v1/admin/audit", "/v1/admin/audit/verify", "/v1/admin/devices",
                           "/v1/admin/tokens", "/v1/admin/compliance", "/v1/admin/waivers", "/v1/admin/groups",
                           "/v1/admin/assessments", "/v1/admin/enrollment-tokens"}) {
    EXPECT_EQ(Send("GET", path, dave_).status, 200) << path;
  }
  EXPECT_EQ(Send("POST", "/v1/admin/assessments", dave_, "PK", "application/octet-stream").status, 403);

  // analyst: proposes, cannot approve or publish.
  ASSERT_EQ(Send("POST", "/v1/admin/rules", carol_, RuleBody("r1")).status, 201);
  auto approve = Send("POST", "/v1/admin/rules/r1/approve", carol_);
  EXPECT_EQ(approve.status, 403);
  EXPECT_NE(ErrorMessage(approve).find("admin"), std::string::npos);
  EXPECT_EQ(Send("POST", "/v1/admin/publish", carol_).status, 403);
  EXPECT_EQ(Send("POST", "/v1/admin/tokens", carol_, R"({"name":"mallory","role":"admin"})").status, 403);
  EXPECT_EQ(Send("POST", "/v1/admin/groups", carol_, R"({"name":"g"})").status, 403);

  // admin: everything.
  EXPECT_EQ(Send("POST", "/v1/admin/rules/r1/approve", alice_).status, 200);
  EXPECT_EQ(Send("POST", "/v1/admin/rules/r1/publish", alice_).status, 200);
  EXPECT_EQ(Send("POST", "/v1/admin/publish", alice_).status, 201);
  EXPECT_EQ(Send("POST", "/v1/admin/groups", alice_, R"({"name":"g"})").status, 201);
  auto created = Send("POST", "/v1/admin/tokens", alice_, R"({"name":"grace","role":"analyst","ttl_seconds":3600})");
  ASSERT_EQ(created.status, 201) << created.body;
  std::string grace = BodyOf(created)["token"];
  EXPECT_EQ(BodyOf(Send("GET", "/v1/admin/whoami", grace))["role"], "analyst");
  // The token list never shows a secret.
  auto list = Send("GET", "/v1/admin/tokens", dave_);
  EXPECT_EQ(list.body.find(grace.substr(grace.find('.') + 1)), std::string::npos);
}

TEST_F(AdminApiTest, TwoPersonRuleThroughTheApi) {
  ASSERT_EQ(Send("POST", "/v1/admin/rules", alice_, RuleBody("r2")).status, 201);
  auto self = Send("POST", "/v1/admin/rules/r2/approve", alice_);
  EXPECT_EQ(self.status, 409);
  EXPECT_EQ(ErrorCode(self), "two_person_rule");
  EXPECT_NE(ErrorMessage(self).find("alice"), std::string::npos);
  auto rule = Send("GET", "/v1/admin/rules/r2", dave_);
  EXPECT_EQ(BodyOf(rule)["state"], "draft") << "a refused approval changes nothing";
  auto other = Send("POST", "/v1/admin/rules/r2/approve", bob_, R"({"note":"reviewed"})");
  ASSERT_EQ(other.status, 200);
  EXPECT_EQ(BodyOf(other)["state"], "approved");

  // Waivers: a waiver is a request by one person that another approves.
  ASSERT_EQ(Send("POST", "/v1/admin/rules/r2/publish", bob_).status, 200);
  std::string device = EnrollDevice("ws-1");
  std::string waiver = R"({"id":"w1","rule_id":"r2","subject_kind":"device","subject":")" + device +
                       R"(","justification":"needed","expires_at":"2030-01-01T00:00:00Z"})";
  auto in_bobs_name = Send("POST", "/v1/admin/waivers", alice_,
                           waiver.substr(0, waiver.size() - 1) + R"(,"requested_by":")" + user_ids_["bob"] + "\"}");
  EXPECT_EQ(in_bobs_name.status, 400) << "nobody requests a waiver in another person's name";
  auto requested = Send("POST", "/v1/admin/waivers", alice_, waiver);
  ASSERT_EQ(requested.status, 202) << requested.body;
  Json change = BodyOf(requested)["change"];
  EXPECT_EQ(change["kind"], "waiver.add");
  EXPECT_EQ(change["proposed_by"], user_ids_["alice"]);
  EXPECT_EQ(change["needs"], 1);
  EXPECT_TRUE(BodyOf(Send("GET", "/v1/admin/waivers", dave_))["waivers"].empty()) << "a request exempts nobody";
  std::string approve = "/v1/admin/changes/" + change["id"].get<std::string>() + "/approve";
  auto own = Send("POST", approve, alice_);
  EXPECT_EQ(own.status, 409);
  EXPECT_EQ(ErrorCode(own), "two_person_rule");
  auto granted = Send("POST", approve, bob_, R"({"note":"the lab needs it"})");
  ASSERT_EQ(granted.status, 200) << granted.body;
  EXPECT_EQ(BodyOf(granted)["change"]["state"], "applied");
  EXPECT_EQ(BodyOf(granted)["result"]["approved_by"], user_ids_["bob"]);
  EXPECT_EQ(BodyOf(granted)["result"]["requested_by"], user_ids_["alice"]);
  EXPECT_EQ(Send("POST", approve, bob_).status, 409) << "an applied change takes no more approvals";
  // Revoking a waiver tightens enforcement again: one administrator may.
  EXPECT_EQ(Send("POST", "/v1/admin/waivers/w1/revoke", alice_, R"({"reason":"done"})").status, 200);
  EXPECT_EQ(Send("POST", "/v1/admin/waivers/w1/revoke", alice_, R"({"reason":"again"})").status, 409);
}

// The catalog side by side with our rules: each decision's apps with the rules of ours that ban
// them (by a shared identifier), "banned_here" once a published rule covers every app, and the
// draft rule that adopting the decision proposes.
TEST_F(AdminApiTest, CatalogShowsWhatWeBanAndDraftsTheRest) {
  auto before = Send("GET", "/v1/admin/catalog?jurisdiction=CA", dave_);
  ASSERT_EQ(before.status, 200) << before.body;
  const Json* tiktok = nullptr;
  Json entries = BodyOf(before)["entries"];
  for (const auto& entry : entries) {
    EXPECT_EQ(entry["id"].get<std::string>().rfind("ca-", 0), 0u) << entry["id"];
    if (entry["id"] == "ca-tiktok-2023") tiktok = &entry;
  }
  ASSERT_NE(tiktok, nullptr) << before.body;
  EXPECT_FALSE((*tiktok)["banned_here"]);
  EXPECT_TRUE((*tiktok)["rules"].empty());
  EXPECT_EQ((*tiktok)["jurisdiction"], "Canada (federal)");
  EXPECT_EQ((*tiktok)["source_url"].get<std::string>().rfind("https://", 0), 0u);
  // The draft is a proposal the API takes as it is.
  Json draft = (*tiktok)["draft"];
  EXPECT_EQ(draft["id"], "ca-tiktok-2023");
  EXPECT_EQ(draft["source"], "ca-tiktok-2023");
  EXPECT_FALSE(draft["authority"].get<std::string>().empty());
  auto proposed = Send("POST", "/v1/admin/rules", carol_, draft.dump());
  ASSERT_EQ(proposed.status, 201) << proposed.body;

  auto drafted = Send("GET", "/v1/admin/catalog?jurisdiction=ca", dave_);
  ASSERT_EQ(drafted.status, 200) << drafted.body;
  Json drafted_entries = BodyOf(drafted)["entries"];
  for (const auto& entry : drafted_entries) {
    if (entry["id"] != "ca-tiktok-2023") continue;
    EXPECT_FALSE(entry["banned_here"]) << "a draft bans nothing yet";
    EXPECT_EQ(entry["adopted_as"], Json::parse(R"([{"id":"ca-tiktok-2023","state":"draft"}])"));
    EXPECT_EQ(entry["apps"][0]["rules"], Json::parse(R"([{"id":"ca-tiktok-2023","state":"draft"}])"));
  }

  // A rule of our own naming one of TikTok's packages, once published, bans it here.
  std::string ours = R"({"id":"our-tiktok","title":"TikTok","action":"remove",)"
                     R"("targets":[{"kind":"android","value":"com.ss.android.ugc.trill"}]})";
  ASSERT_EQ(Send("POST", "/v1/admin/rules", carol_, ours).status, 201);
  ASSERT_EQ(Send("POST", "/v1/admin/rules/our-tiktok/approve", alice_).status, 200);
  ASSERT_EQ(Send("POST", "/v1/admin/rules/our-tiktok/publish", alice_).status, 200);
  auto after = Send("GET", "/v1/admin/catalog", dave_);
  ASSERT_EQ(after.status, 200) << after.body;
  size_t banned = 0;
  Json after_entries = BodyOf(after)["entries"];
  for (const auto& entry : after_entries) {
    bool names_tiktok = false;
    for (const auto& app : entry["apps"]) {
      for (const auto& id : app["identifiers"])
        names_tiktok = names_tiktok || id["value"] == "com.ss.android.ugc.trill";
    }
    if (!names_tiktok) continue;
    bool only_tiktok = entry["apps"].size() == 1;
    EXPECT_EQ(entry["banned_here"], only_tiktok) << entry["id"];
    if (entry["banned_here"]) ++banned;
  }
  EXPECT_GT(banned, 1u) << "allies' TikTok decisions are matched too, not only Canada's";
  EXPECT_GT(after_entries.size(), drafted_entries.size());

  EXPECT_EQ(Send("GET", "/v1/admin/catalog?jurisdiction=", dave_).status, 400);
  EXPECT_EQ(Send("GET", "/v1/admin/catalog", "").status, 401);
}

// Ending a user's console sessions: anyone their own, an administrator anyone's (audited); the
// sessions issued up to now are then refused by the store (console_test.cc drives real cookies).
TEST_F(AdminApiTest, EndingAUsersSessionsIsTheirsOrAnAdministrators) {
  const std::string carol = "/v1/admin/users/" + user_ids_["carol"] + "/sessions/end";
  auto refused = Send("POST", carol, dave_);
  EXPECT_EQ(refused.status, 403) << "an auditor ends nobody else's sessions";
  EXPECT_NE(ErrorMessage(refused).find("admin role"), std::string::npos) << refused.body;
  auto own = Send("POST", "/v1/admin/users/" + user_ids_["dave"] + "/sessions/end", dave_);
  ASSERT_EQ(own.status, 200) << own.body;
  EXPECT_EQ(BodyOf(own)["user_id"], user_ids_["dave"]);
  EXPECT_EQ(BodyOf(own)["sessions_issued_before"], FormatTimestamp(now_ + 1));
  auto by_admin = Send("POST", carol, alice_, "{}");
  ASSERT_EQ(by_admin.status, 200) << by_admin.body;
  EXPECT_TRUE(*fleet_->SessionEnded("any-session", user_ids_["carol"], now_));
  EXPECT_FALSE(*fleet_->SessionEnded("any-session", user_ids_["bob"], now_));
  EXPECT_EQ(Send("POST", carol, alice_, R"({"reason":"x"})").status, 400);
  EXPECT_EQ(Send("POST", "/v1/admin/users/u-000000000000000000000000/sessions/end", alice_).status, 404);
  auto entries = store_->ReadAudit();
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  int audited = 0;
  for (const auto& entry : *entries) audited += entry.action == "user.end-sessions" ? 1 : 0;
  EXPECT_EQ(audited, 2);
}

TEST_F(AdminApiTest, AVendorMergeThatWidensAPublishedRuleIsAChangeForASecondPerson) {
  auto vendor_body = [](const std::string& name, const std::string& package) {
    return R"({"name":")" + name + R"(","country":"CN","identifiers":[{"kind":"deb","value":")" + package + R"("}]})";
  };
  // No rule targets the vendor: an analyst records it at once.
  auto created = Send("POST", "/v1/admin/vendors", carol_, vendor_body("Example Vendor", "exchat"));
  ASSERT_EQ(created.status, 200) << created.body;
  EXPECT_EQ(BodyOf(created)["identifiers"].size(), 1u);
  EXPECT_EQ(Send("POST", "/v1/admin/vendors", dave_, vendor_body("Example Vendor", "x")).status, 403)
      << "an auditor records nothing";
  EXPECT_EQ(Send("POST", "/v1/admin/vendors", carol_, R"({"name":"V","identifiers":[],"revision":3})").status, 400);
  auto nested = Send("POST", "/v1/admin/vendors", carol_,
                     R"({"name":"V","identifiers":[{"kind":"vendor","value":"Example Vendor"}]})");
  EXPECT_EQ(nested.status, 400);
  EXPECT_NE(ErrorMessage(nested).find("do not nest"), std::string::npos) << nested.body;

  // A published rule bans every identifier of the vendor.
  ASSERT_EQ(Send("POST", "/v1/admin/rules", carol_,
                 R"({"id":"r-vendor","title":"Ban the vendor","targets":[{"kind":"vendor","value":"Example Vendor"}],)"
                 R"("action":"remove"})")
                .status,
            201);
  ASSERT_EQ(Send("POST", "/v1/admin/rules/r-vendor/approve", alice_).status, 200);
  ASSERT_EQ(Send("POST", "/v1/admin/rules/r-vendor/publish", alice_).status, 200);

  auto widening = Send("POST", "/v1/admin/vendors", carol_,
                       vendor_body("Example Vendor", "exmaps").insert(1, R"("note":"same SDK",)"));
  ASSERT_EQ(widening.status, 202) << widening.body;
  Json change = BodyOf(widening)["change"];
  EXPECT_EQ(change["kind"], "vendor.merge");
  EXPECT_EQ(change["object"], "vendor:Example Vendor");
  EXPECT_EQ(change["payload"]["widens"], Json::array({"r-vendor"}));
  EXPECT_EQ(change["needs"], 1);
  Json listed = BodyOf(Send("GET", "/v1/admin/vendors", dave_));
  ASSERT_EQ(listed["vendors"].size(), 1u);
  EXPECT_EQ(listed["vendors"][0]["identifiers"].size(), 1u) << "a proposal bans nothing more";

  std::string approve = "/v1/admin/changes/" + change["id"].get<std::string>() + "/approve";
  auto done = Send("POST", approve, alice_);
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(BodyOf(done)["result"]["identifiers"].size(), 2u);
  EXPECT_EQ(BodyOf(Send("GET", "/v1/admin/vendors", dave_))["vendors"][0]["identifiers"].size(), 2u);
  // The next bundle bans the new package through the vendor rule.
  ASSERT_EQ(Send("POST", "/v1/admin/publish", alice_).status, 201);
  policy::VerifyOptions options;
  options.trusted_keys = {key_->public_key()};
  options.now = now_;
  auto bundle =
      policy::VerifyBundle(std::string(BodyOf(Send("GET", "/v1/admin/bundles/latest", dave_))["envelope"]), options);
  ASSERT_TRUE(bundle.ok()) << bundle.status().ToString();
  ASSERT_EQ(bundle->bundle.vendors.size(), 1u);
  EXPECT_EQ(policy::VendorToJson(bundle->bundle.vendors[0])["identifiers"][1]["value"], "exmaps");

  // Pages: names are any text, and the cursor carries them.
  ASSERT_EQ(Send("POST", "/v1/admin/vendors", carol_, vendor_body("Zeta Vendor, Ltd.", "zeta")).status, 200);
  Json first = BodyOf(Send("GET", "/v1/admin/vendors?limit=1", dave_));
  ASSERT_EQ(first["vendors"].size(), 1u);
  EXPECT_EQ(first["vendors"][0]["name"], "Example Vendor");
  ASSERT_TRUE(first["next_cursor"].is_string());
  Json second =
      BodyOf(Send("GET", "/v1/admin/vendors?limit=1&cursor=" + first["next_cursor"].get<std::string>(), dave_));
  ASSERT_EQ(second["vendors"].size(), 1u);
  EXPECT_EQ(second["vendors"][0]["name"], "Zeta Vendor, Ltd.");
  EXPECT_TRUE(second["next_cursor"].is_null());
}

TEST_F(AdminApiTest, RevokingAPublishedRuleNeedsASecondPerson) {
  PublishedRule("r3");
  auto proposed = Send("POST", "/v1/admin/rules/r3/revoke", alice_, R"({"reason":"court order lifted"})");
  ASSERT_EQ(proposed.status, 202) << proposed.body;
  EXPECT_EQ(BodyOf(Send("GET", "/v1/admin/rules/r3", dave_))["state"], "published") << "still enforced";
  std::string id = BodyOf(proposed)["change"]["id"];
  // A service account alice owns is not a second person.
  auto account = Send("POST", "/v1/admin/service-accounts", alice_, R"({"name":"ci","role":"admin"})");
  ASSERT_EQ(account.status, 201) << account.body;
  auto minted =
      Send("POST", "/v1/admin/tokens", alice_,
           R"({"name":"ci","role":"admin","service_account":")" + BodyOf(account)["id"].get<std::string>() + R"("})");
  ASSERT_EQ(minted.status, 201) << minted.body;
  auto robot = Send("POST", "/v1/admin/changes/" + id + "/approve", BodyOf(minted)["token"]);
  EXPECT_EQ(robot.status, 409);
  EXPECT_NE(ErrorMessage(robot).find("service account"), std::string::npos) << robot.body;
  // Nor is a second token of alice's.
  auto second = Send("POST", "/v1/admin/tokens", alice_, R"({"name":"alice-laptop","role":"admin"})");
  ASSERT_EQ(second.status, 201);
  EXPECT_EQ(Send("POST", "/v1/admin/changes/" + id + "/approve", BodyOf(second)["token"]).status, 409);
  auto listed = Send("GET", "/v1/admin/changes", dave_);
  ASSERT_EQ(listed.status, 200);
  ASSERT_EQ(BodyOf(listed)["changes"].size(), 1u);
  EXPECT_EQ(BodyOf(listed)["changes"][0]["state"], "pending");

  auto done = Send("POST", "/v1/admin/changes/" + id + "/approve", bob_);
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(BodyOf(done)["result"]["state"], "revoked");
  // The audit chain holds the proposal, the approval, the revocation and the closing.
  auto audit = BodyOf(Send("GET", "/v1/admin/audit?limit=500", dave_))["entries"];
  std::vector<std::string> actions;
  for (const auto& entry : audit) {
    if (entry["object"] == "change:" + id || entry["object"] == "rule:r3") actions.push_back(entry["action"]);
  }
  EXPECT_EQ(actions, (std::vector<std::string>{"rule.propose", "rule.approve", "rule.publish", "change.propose",
                                               "change.approve", "rule.revoke", "change.apply"}));
}

TEST_F(AdminApiTest, QuorumOfThreeForRulesAdminGrantsAndKeyRotation) {
  config_.identity.quorum = 3;
  std::string erin = MakeToken("erin", store::Role::kAdmin);
  std::string frank = MakeToken("frank", store::Role::kAnalyst);
  // A rule carol proposed needs two more people.
  ASSERT_EQ(Send("POST", "/v1/admin/rules", carol_, RuleBody("q1")).status, 201);
  auto first = Send("POST", "/v1/admin/rules/q1/approve", alice_);
  ASSERT_EQ(first.status, 202) << first.body;
  EXPECT_EQ(BodyOf(first)["change"]["needs"], 1);
  EXPECT_EQ(Send("POST", "/v1/admin/rules/q1/approve", alice_).status, 409) << "alice counts once";
  EXPECT_EQ(BodyOf(Send("GET", "/v1/admin/rules/q1", dave_))["state"], "draft");
  auto second = Send("POST", "/v1/admin/rules/q1/approve", bob_);
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(BodyOf(Send("GET", "/v1/admin/rules/q1", dave_))["state"], "approved");

  // Granting the admin role: alice proposes, bob and erin agree.
  std::string url = "/v1/admin/users/" + user_ids_["frank"] + "/role";
  auto grant = Send("POST", url, alice_, R"({"role":"admin"})");
  ASSERT_EQ(grant.status, 202) << grant.body;
  EXPECT_EQ(BodyOf(Send("GET", "/v1/admin/whoami", frank))["role"], "analyst");
  std::string change = "/v1/admin/changes/" + BodyOf(grant)["change"]["id"].get<std::string>();
  EXPECT_EQ(Send("POST", change + "/approve", frank).status, 403) << "frank is not an admin yet";
  ASSERT_EQ(Send("POST", change + "/approve", bob_).status, 202);
  auto granted = Send("POST", change + "/approve", erin);
  ASSERT_EQ(granted.status, 200) << granted.body;
  EXPECT_EQ(BodyOf(granted)["result"]["granted_role"], "admin");

  // Key rotation with key_rotation_quorum = 4; the proposer may withdraw while it waits.
  config_.identity.key_rotation_quorum = 4;
  auto abandoned = Send("POST", "/v1/admin/keys/rotate", alice_, R"({"note":"test"})");
  ASSERT_EQ(abandoned.status, 202) << abandoned.body;
  EXPECT_EQ(BodyOf(abandoned)["change"]["quorum"], 4);
  std::string abandoned_url = "/v1/admin/changes/" + BodyOf(abandoned)["change"]["id"].get<std::string>();
  EXPECT_EQ(Send("POST", abandoned_url + "/withdraw", bob_).status, 409) << "only the proposer withdraws";
  ASSERT_EQ(Send("POST", abandoned_url + "/withdraw", alice_).status, 200);
  EXPECT_EQ(Send("POST", abandoned_url + "/approve", bob_).status, 409);

  ASSERT_TRUE(policy::CreateActiveKey(dir_ + "/keys", false).ok());
  auto old_key = policy::LoadActiveKey(dir_ + "/keys");
  ASSERT_TRUE(old_key.ok());
  auto rotation = Send("POST", "/v1/admin/keys/rotate", alice_, R"({"note":"yearly"})");
  ASSERT_EQ(rotation.status, 202);
  std::string rotation_url = "/v1/admin/changes/" + BodyOf(rotation)["change"]["id"].get<std::string>();
  ASSERT_EQ(Send("POST", rotation_url + "/approve", bob_).status, 202);
  ASSERT_EQ(Send("POST", rotation_url + "/approve", erin).status, 202);
  EXPECT_EQ(policy::LoadActiveKey(dir_ + "/keys")->key_id(), old_key->key_id()) << "three of four rotate nothing";
  // frank is an admin now, but his token keeps the analyst role it was minted with.
  EXPECT_EQ(Send("POST", rotation_url + "/approve", frank).status, 403);
  auto rotated = Send("POST", rotation_url + "/approve", MakeToken("gina", store::Role::kAdmin));
  ASSERT_EQ(rotated.status, 200) << rotated.body;
  EXPECT_NE(policy::LoadActiveKey(dir_ + "/keys")->key_id(), old_key->key_id());
  EXPECT_EQ(BodyOf(rotated)["result"]["key_id"], policy::LoadActiveKey(dir_ + "/keys")->key_id());
}

// ---- publish ----

TEST_F(AdminApiTest, PublishSignsABundleDevicesAcceptAndNotifies) {
  PublishedRule("ban-wechat");
  auto published = Send("POST", "/v1/admin/publish", alice_, R"({"validity_days":7})");
  ASSERT_EQ(published.status, 201) << published.body;
  Json summary = BodyOf(published);
  EXPECT_EQ(summary["version"], 1);
  EXPECT_EQ(summary["rules"], Json::array({"ban-wechat"}));
  EXPECT_EQ(summary["not_after"], FormatTimestamp(kStart + 7 * 86400));
  EXPECT_EQ(notifier_->published, 1);
  EXPECT_EQ(hub_->latest().version, 1);

  auto latest = Send("GET", "/v1/admin/bundles/latest", dave_);
  ASSERT_EQ(latest.status, 200);
  Json record = BodyOf(latest);
  policy::VerifyOptions options;
  options.trusted_keys = {key_->public_key()};
  options.now = now_;
  auto verified = policy::VerifyBundle(std::string(record["envelope"]), options);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->bundle.version, 1);
  ASSERT_EQ(verified->bundle.rules.size(), 1u);
  EXPECT_EQ(verified->bundle.rules[0].id, "ban-wechat");
  EXPECT_EQ(record["rules_hash"], verified->bundle.rules_hash);
  EXPECT_EQ(summary["rules_hash"], verified->bundle.rules_hash);

  // A second publish makes a higher version.
  now_ += 10;
  auto again = Send("POST", "/v1/admin/publish", alice_);
  ASSERT_EQ(again.status, 201);
  EXPECT_EQ(BodyOf(again)["version"], 2);
  EXPECT_EQ(BodyOf(again)["not_after"], FormatTimestamp(now_ + 30 * 86400)) << "config default: 30 days";
  EXPECT_EQ(notifier_->published, 2);
}

TEST_F(AdminApiTest, NoBundleYetIs404) { EXPECT_EQ(Send("GET", "/v1/admin/bundles/latest", dave_).status, 404); }

// ---- hostile input ----

TEST_F(AdminApiTest, HostileInputsAre4xxNamingTheProblem) {
  struct Case {
    std::string method, target, body;
    int status;
    std::string mention;  // what the message must name
  };
  std::vector<Case> cases = {
      {"POST", "/v1/admin/rules", "{not json", 400, "request body"},
      {"POST", "/v1/admin/rules", "[1,2]", 400, "JSON object"},
      {"POST", "/v1/admin/rules", "", 400, "empty"},
      {"POST", "/v1/admin/rules", RuleBody("x1", R"(,"colour":"red")"), 400, "colour"},
      {"POST", "/v1/admin/rules", RuleBody("x1", R"(,"state":"published")"), 400, "state"},
      {"POST", "/v1/admin/rules", RuleBody("x1", R"(,"targets2":[])"), 400, "targets2"},
      {"POST", "/v1/admin/rules", R"({"id":"x1","title":5,"targets":[],"action":"remove"})", 400, "title"},
      {"POST", "/v1/admin/rules",
       R"({"id":"x1","title":"t","targets":[{"kind":"deb","value":"a","x":1}],"action":"remove"})", 400, "\"x\""},
      {"POST", "/v1/admin/rules",
       R"({"id":"x1","title":"t","targets":[{"kind":"deb","value":"a"}],"action":"explode"})", 400, "explode"},
      {"POST", "/v1/admin/rules",
       R"({"id":"../etc","title":"t","targets":[{"kind":"deb","value":"a"}],"action":"remove"})", 400, "rule id"},
      {"POST", "/v1/admin/rules", std::string(100, '[') + std::string(100, ']'), 400, "nests deeper"},
      {"POST", "/v1/admin/rules", RuleBody("x1", R"(,"scope_groups":["nope"])"), 400, "nope"},
      {"POST", "/v1/admin/rules",
       RuleBody("x1", R"(,"assessments":[{"apk_sha256":")" + std::string(64, 'a') + R"("}])"), 400, "apk_sha256"},
      {"GET", "/v1/admin/devices?limit=100000", "", 400, "limit"},
      {"GET", "/v1/admin/devices?limit=-1", "", 400, "limit"},
      {"GET", "/v1/admin/devices?offset=abc", "", 400, "offset"},
      {"GET", "/v1/admin/devices?limit=%zz", "", 400, "limit"},
      {"GET", "/v1/admin/devices?user=alice", "", 400, "query parameter user"},
      {"GET", "/v1/admin/devices?hostname=" + std::string(254, 'a'), "", 400, "longer than 253 bytes"},
      {"GET", "/v1/admin/devices?id=D-1", "", 400, "query parameter id"},
      {"GET", "/v1/admin/devices?hostname=a%01b", "", 400, "query parameter hostname"},
      {"GET", "/v1/admin/devices?app=%ff", "", 400, "query parameter app"},
      {"GET", "/v1/admin/devices?app=%zz", "", 400, "query parameter app"},
      {"GET", "/v1/admin/exports/devices.csv?hostname=%00", "", 400, "query parameter hostname"},
      {"GET", "/v1/admin/audit?order=sideways", "", 400, "query parameter order"},
      {"GET", "/v1/admin/audit?order=newest&after=3", "", 400, "query parameter after"},
      {"GET", "/v1/admin/audit?limit=99999999999999999999", "", 400, "limit"},
      {"GET", "/v1/admin/compliance/rules/x?limit=10001", "", 400, "limit"},
      {"GET", "/v1/admin/rules/../../etc/passwd", "", 400, ".."},
      {"GET", "/v1/admin/rules/..", "", 400, ".."},
      {"GET", "/v1/admin/rules//approve", "", 400, "empty"},
      {"GET", "/v1/admin/rules/bad$id", "", 400, "rule id"},
      {"GET", "/v1/admin/devices/x%00y", "", 400, "device id"},
      {"GET", "/v1/admin/assessments/zz", "", 400, "SHA-256"},
      {"POST", "/v1/admin/rules/x/revoke", "{}", 400, "reason"},
      {"POST", "/v1/admin/rules/x/revoke", R"({"reason":7})", 400, "reason"},
      {"POST", "/v1/admin/publish", R"({"validity_days":0})", 400, "validity_days"},
      {"POST", "/v1/admin/publish", R"({"validity_days":"7"})", 400, "validity_days"},
      {"POST", "/v1/admin/publish", R"({"validity_days":18446744073709551615})", 400, "validity_days"},
      {"POST", "/v1/admin/publish", R"({"days":7})", 400, "days"},
      {"POST", "/v1/admin/enrollment-tokens", R"({"count":1001})", 400, "count"},
      {"POST", "/v1/admin/enrollment-tokens", R"({"ttl_seconds":99999999999})", 400, "ttl_seconds"},
      {"POST", "/v1/admin/enrollment-tokens", R"({"group":"nope"})", 400, "nope"},
      {"POST", "/v1/admin/tokens", R"({"name":"x y","role":"admin"})", 400, "name"},
      {"POST", "/v1/admin/tokens", R"({"name":"x","role":"root"})", 400, "root"},
      {"POST", "/v1/admin/groups", R"({"name":"g","devices":["d-missing"]})", 400, "d-missing"},
      {"POST", "/v1/admin/groups", R"({"name":"g","devices":"d-1"})", 400, "devices"},
      {"POST", "/v1/admin/waivers",
       R"({"id":"w","rule_id":"none","subject_kind":"group","subject":"g","justification":"j","expires_at":"2030-01-01"})",
       400, "none"},
      {"POST", "/v1/admin/waivers", R"({"id":"w","approved_by":"me"})", 400, "approved_by"},
      {"POST", "/v1/admin/waivers",
       R"({"id":"w","rule_id":"r","subject_kind":"planet","subject":"g","justification":"j","expires_at":"2030-01-01"})",
       400, "planet"},
      {"DELETE", "/v1/admin/rules", "", 405, "GET, POST"},
      {"PUT", "/v1/admin/publish", "", 405, "POST"},
      {"GET", "/v1/admin/nothing-here", "", 404, "nothing-here"},
      {"GET", "/v1/admin/rules/missing", "", 404, "missing"},
  };
  for (const auto& c : cases) {
    auto response = Send(c.method, c.target, alice_, c.body);
    EXPECT_EQ(response.status, c.status) << c.method << " " << c.target << " " << c.body << " -> " << response.body;
    EXPECT_NE(ErrorMessage(response).find(c.mention), std::string::npos)
        << c.method << " " << c.target << ": message " << ErrorMessage(response) << " should name " << c.mention;
    EXPECT_FALSE(ErrorCode(response).empty()) << response.body;
  }
  auto method = Send("DELETE", "/v1/admin/rules", alice_);
  ASSERT_FALSE(method.headers.empty());
  EXPECT_EQ(method.headers[0].first, "Allow");
  // Nothing of the above changed anything but the audit entries of the setup.
  EXPECT_TRUE(BodyOf(Send("GET", "/v1/admin/rules", dave_))["rules"].empty());
  EXPECT_TRUE(BodyOf(Send("GET", "/v1/admin/groups", dave_))["groups"].empty());
}

// Every route with every hostile body and path id: never a 5xx, always a JSON error naming a code.
TEST_F(AdminApiTest, NoHostileRequestReachesA5xx) {
  const std::vector<std::string> bodies = {"null",
                                           "1",
                                           "\"text\"",
                                           "[]",
                                           "{}",
                                           "{\"id\":null}",
                                           "{\"id\":{}}",
                                           "{\"id\":[1]}",
                                           "{\"reason\":\"\"}",
                                           "{\"note\":123}",
                                           "{\"devices\":[null]}",
                                           "{\"count\":-1}",
                                           "{\"ttl_seconds\":1.5}",
                                           "{\"validity_days\":1e300}",
                                           "{\"id\":\"\xff\xfe\"}",
                                           "{\"name\":\"" + std::string(5000, 'a') + "\"}",
                                           std::string(20, '{'),
                                           "{\"a\":1,\"a\":2}",
                                           std::string("{\"id\":\"a\0b\"}", 12)};
  const std::vector<std::string> ids = {"x", "..", "a b", std::string(300, 'a'), "\xff", "%2e%2e", "-lead"};
  for (const auto& route : AdminRoutes()) {
    for (const auto& id : ids) {
      std::string path = "/v1/admin/" + std::string(route.pattern);
      for (size_t at; (at = path.find("{}")) != std::string::npos;) path.replace(at, 2, id);
      for (const auto& body : route.method == "GET" ? std::vector<std::string>{""} : bodies) {
        auto response = Send(std::string(route.method), path, alice_, body);
        EXPECT_LT(response.status, 500) << route.method << " " << path << " " << body << " -> " << response.body;
        if (response.status >= 400) {
          EXPECT_FALSE(ErrorCode(response).empty()) << response.body;
        }
      }
    }
  }
}

// ---- status code mappings ----

// Regression (hardening #13): a rule banning a package Debian cannot run without (Essential,
// required, or needed by those, like libc6) was accepted; devices then pinned it and refused its
// security updates. The API refuses it with 400 naming the package and why.
TEST_F(AdminApiTest, ARuleTargetingAnEssentialDebianPackageIs400) {
  for (const char* package : {"dpkg", "base-files", "libc6"}) {
    auto refused = Send("POST", "/v1/admin/rules", carol_,
                        R"({"id":"ban-core","title":"t","targets":[{"kind":"deb","value":")" + std::string(package) +
                            R"("}],"action":"block"})");
    EXPECT_EQ(refused.status, 400) << package << ": " << refused.body;
    EXPECT_EQ(ErrorCode(refused), "bad_request");
    EXPECT_NE(ErrorMessage(refused).find("deb:" + std::string(package) + " cannot be banned"), std::string::npos)
        << refused.body;
  }
  auto libc = Send("POST", "/v1/admin/rules", carol_,
                   R"({"id":"ban-core","title":"t","targets":[{"kind":"deb","value":"libc6"}],"action":"remove"})");
  EXPECT_NE(ErrorMessage(libc).find("needed by"), std::string::npos) << libc.body;
  auto dpkg = Send("POST", "/v1/admin/rules", carol_,
                   R"({"id":"ban-core","title":"t","targets":[{"kind":"deb","value":"dpkg"}],"action":"remove"})");
  EXPECT_NE(ErrorMessage(dpkg).find("Essential: yes"), std::string::npos) << dpkg.body;
  EXPECT_TRUE(BodyOf(Send("GET", "/v1/admin/rules", carol_))["rules"].empty());
  // An ordinary package, and an Android app that happens to share a protected name, are fine.
  EXPECT_EQ(Send("POST", "/v1/admin/rules", carol_, RuleBody("wechat")).status, 201);
  EXPECT_EQ(Send("POST", "/v1/admin/rules", carol_,
                 R"({"id":"ban-android","title":"t","targets":[{"kind":"android","value":"dpkg"}],"action":"remove"})")
                .status,
            201);
}

TEST_F(AdminApiTest, StatusCodesMapToHttp) {
  // Each StatusCode the core can return, through the API where it can be provoked.
  ASSERT_EQ(Send("POST", "/v1/admin/rules", carol_, RuleBody("dup")).status, 201);
  auto taken = Send("POST", "/v1/admin/rules", carol_, RuleBody("dup"));  // kAlreadyExists
  EXPECT_EQ(taken.status, 409);
  EXPECT_EQ(ErrorCode(taken), "conflict");
  auto early = Send("POST", "/v1/admin/rules/dup/publish", alice_);  // kFailedPrecondition: draft
  EXPECT_EQ(early.status, 409);
  EXPECT_NE(ErrorMessage(early).find("draft"), std::string::npos);
  EXPECT_EQ(Send("POST", "/v1/admin/rules/nope/approve", alice_).status, 404);  // kNotFound
  EXPECT_EQ(Send("POST", "/v1/admin/rules/dup/revoke", alice_, R"({"reason":"no"})").status, 200);
  EXPECT_EQ(Send("POST", "/v1/admin/rules/dup/revoke", alice_, R"({"reason":"no"})").status, 409);
  EXPECT_EQ(Send("POST", "/v1/admin/groups", alice_, R"({"name":"g"})").status, 201);
  EXPECT_EQ(Send("POST", "/v1/admin/groups", alice_, R"({"name":"g"})").status, 409);
  ASSERT_EQ(Send("POST", "/v1/admin/rules", carol_, RuleBody("scoped", R"(,"scope_groups":["g"])")).status, 201);
  auto in_use = Send("DELETE", "/v1/admin/groups/g", alice_);
  EXPECT_EQ(in_use.status, 409);
  EXPECT_NE(ErrorMessage(in_use).find("scoped"), std::string::npos);
  EXPECT_EQ(Send("DELETE", "/v1/admin/groups/absent", alice_).status, 404);
  EXPECT_EQ(Send("POST", "/v1/admin/tokens/t-0000000000000000/revoke", alice_).status, 404);
  EXPECT_EQ(Send("POST", "/v1/admin/enrollment-tokens/e-0000000000000000/revoke", alice_).status, 404);

  // The table itself, code by code.
  struct Expect {
    StatusCode code;
    int status;
    std::string_view name;
  };
  for (const Expect& e : std::vector<Expect>{{StatusCode::kInvalidArgument, 400, "bad_request"},
                                             {StatusCode::kLimitExceeded, 400, "bad_request"},
                                             {StatusCode::kNotRecognized, 400, "bad_request"},
                                             {StatusCode::kTruncated, 400, "bad_request"},
                                             {StatusCode::kUnsupported, 400, "bad_request"},
                                             {StatusCode::kNotFound, 404, "not_found"},
                                             {StatusCode::kAlreadyExists, 409, "conflict"},
                                             {StatusCode::kFailedPrecondition, 409, "conflict"},
                                             {StatusCode::kExpired, 409, "conflict"},
                                             {StatusCode::kPermissionDenied, 409, "two_person_rule"},
                                             {StatusCode::kUnavailable, 503, "unavailable"},
                                             {StatusCode::kCorruption, 500, "internal"},
                                             {StatusCode::kInternal, 500, "internal"}}) {
    HttpError error = HttpErrorFor(Status(e.code, "x"));
    EXPECT_EQ(error.status, e.status) << StatusCodeName(e.code);
    EXPECT_EQ(error.code, e.name) << StatusCodeName(e.code);
  }
}

// ---- audit ----

TEST_F(AdminApiTest, AuditRecordsWhoActedHowAndFromWhere) {
  PublishedRule("audited");
  ASSERT_EQ(Send("POST", "/v1/admin/publish", alice_).status, 201);
  auto page = Send("GET", "/v1/admin/audit?limit=1000", dave_);
  ASSERT_EQ(page.status, 200);
  Json entries = BodyOf(page)["entries"];
  auto find = [&](const std::string& action, const std::string& object) -> Json {
    for (const auto& entry : entries) {
      if (entry["action"] == action && entry["object"] == object) return entry;
    }
    return nullptr;
  };
  // The actor is the user id; the identity says who that is and how they authenticated.
  EXPECT_EQ(find("rule.propose", "rule:audited")["actor"], user_ids_["carol"]);
  EXPECT_EQ(find("rule.approve", "rule:audited")["actor"], user_ids_["alice"]);
  EXPECT_EQ(find("rule.publish", "rule:audited")["actor"], user_ids_["alice"]);
  EXPECT_EQ(find("bundle.publish", "bundle:1")["actor"], user_ids_["alice"]);
  Json identity = find("rule.approve", "rule:audited")["identity"];
  EXPECT_EQ(identity["issuer"], "https://idp.test");
  EXPECT_EQ(identity["subject"], "alice");
  EXPECT_EQ(identity["actor_name"], "alice");
  EXPECT_EQ(identity["method"], "api-token");
  EXPECT_TRUE(identity["token_id"].get<std::string>().starts_with("t-"));
  EXPECT_EQ(identity["channel"], "api");
  EXPECT_EQ(find("rule.approve", "rule:audited")["after"]["state"], "approved");

  // Paging: after=SEQ returns the entries that follow.
  int64_t first = entries[0]["seq"];
  auto next = BodyOf(Send("GET", "/v1/admin/audit?after=" + std::to_string(first) + "&limit=2", dave_));
  ASSERT_EQ(next["entries"].size(), 2u);
  EXPECT_EQ(next["entries"][0]["seq"], first + 1);
  EXPECT_TRUE(next["more"]);
  // order=newest: the latest entries first, and its cursor pages on backwards.
  auto latest = BodyOf(Send("GET", "/v1/admin/audit?order=newest&limit=2", dave_));
  ASSERT_EQ(latest["entries"].size(), 2u);
  int64_t last = entries.back()["seq"];
  EXPECT_EQ(latest["entries"][0]["seq"], last);
  EXPECT_EQ(latest["entries"][1]["seq"], last - 1);
  auto older = BodyOf(
      Send("GET", "/v1/admin/audit?order=newest&limit=2&cursor=" + latest["next_cursor"].get<std::string>(), dave_));
  ASSERT_EQ(older["entries"].size(), 2u);
  EXPECT_EQ(older["entries"][0]["seq"], last - 2);
  // A cursor of one order does not page the other.
  EXPECT_EQ(Send("GET", "/v1/admin/audit?cursor=" + latest["next_cursor"].get<std::string>(), dave_).status, 400);

  auto verify = BodyOf(Send("GET", "/v1/admin/audit/verify", dave_));
  EXPECT_TRUE(verify["ok"]);
  EXPECT_EQ(verify["entries"], entries.size());
}

// ---- devices, enrolment tokens ----

TEST_F(AdminApiTest, EnrolmentTokensDevicesAndRevocation) {
  auto batch =
      Send("POST", "/v1/admin/enrollment-tokens", alice_, R"({"count":3,"note":"laptops","ttl_seconds":3600})");
  ASSERT_EQ(batch.status, 201) << batch.body;
  Json tokens = BodyOf(batch)["tokens"];
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(tokens[0]["expires_at"], FormatTimestamp(now_ + 3600));
  std::string secret = std::string(tokens[0]["token"]).substr(std::string(tokens[0]["token"]).find('.') + 1);
  auto listed = Send("GET", "/v1/admin/enrollment-tokens", dave_);
  EXPECT_EQ(BodyOf(listed)["tokens"].size(), 3u);
  EXPECT_EQ(listed.body.find(secret), std::string::npos) << "secrets are shown once";

  auto enrolled = fleet_->EnrollDevice(std::string(tokens[0]["token"]), "ws-0042", "linux", "0.1.0", now_);
  ASSERT_TRUE(enrolled.ok()) << enrolled.status().ToString();
  std::string id = enrolled->device.id;
  EXPECT_EQ(Send("POST", "/v1/admin/enrollment-tokens/" + std::string(tokens[1]["id"]) + "/revoke", alice_).status,
            200);
  Json states = BodyOf(Send("GET", "/v1/admin/enrollment-tokens", dave_))["tokens"];
  std::map<std::string, std::string> by_id;
  for (const auto& t : states) by_id[t["id"]] = t["state"];
  EXPECT_EQ(by_id[tokens[0]["id"]], "used");
  EXPECT_EQ(by_id[tokens[1]["id"]], "revoked");
  EXPECT_EQ(by_id[tokens[2]["id"]], "active");

  Json page = BodyOf(Send("GET", "/v1/admin/devices?offset=0&limit=10", dave_));
  EXPECT_EQ(page["total"], 1);
  ASSERT_EQ(page["devices"].size(), 1u);
  EXPECT_EQ(page["devices"][0]["hostname"], "ws-0042");
  EXPECT_TRUE(page["next_cursor"].is_null());
  // Offset paging was replaced by cursors: a non-zero offset is refused, not answered with page one.
  EXPECT_EQ(Send("GET", "/v1/admin/devices?offset=1", dave_).status, 400);

  EXPECT_EQ(Send("POST", "/v1/admin/devices/" + id + "/revoke", carol_, R"({"reason":"stolen"})").status, 403);
  auto revoked = Send("POST", "/v1/admin/devices/" + id + "/revoke", alice_, R"({"reason":"stolen"})");
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  EXPECT_EQ(notifier_->revoked, std::vector<std::string>{id});
  EXPECT_EQ(Send("POST", "/v1/admin/devices/" + id + "/revoke", alice_, R"({"reason":"again"})").status, 409);
  EXPECT_EQ(Send("POST", "/v1/admin/devices/d-0000000000000000/revoke", alice_, R"({"reason":"x"})").status, 404);
  Json shown = BodyOf(Send("GET", "/v1/admin/devices/" + id, dave_));
  EXPECT_EQ(shown["revoked_by"], user_ids_["alice"]);
}

TEST_F(AdminApiTest, EnrolmentTokenBatchOfAThousand) {
  auto start = std::chrono::steady_clock::now();
  auto batch = Send("POST", "/v1/admin/enrollment-tokens", alice_, R"({"count":1000})");
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::cout << "[ admin ] 1000 enrolment tokens in one request: " << ms << " ms\n";
  ASSERT_EQ(batch.status, 201);
  std::set<std::string> ids;
  Json tokens = BodyOf(batch)["tokens"];
  for (const auto& token : tokens) ids.insert(std::string(token["id"]));
  EXPECT_EQ(ids.size(), 1000u);
  EXPECT_EQ(BodyOf(Send("GET", "/v1/admin/enrollment-tokens?limit=1000", dave_))["tokens"].size(), 1000u);
}

TEST_F(AdminApiTest, DeviceShowsInventoryDecisionsStatesAndEvents) {
  ASSERT_EQ(Send("POST", "/v1/admin/groups", alice_, R"({"name":"ops"})").status, 201);
  std::string id = EnrollDevice("ws-1", "ops");
  PublishedRule("ban-wechat");
  ASSERT_EQ(Send("POST", "/v1/admin/publish", alice_).status, 201);

  std::vector<policy::InstalledApp> apps(2);
  apps[0].platform = policy::Platform::kDeb;
  apps[0].id = "ban-wechat";  // the rule's deb target
  apps[1].platform = policy::Platform::kDeb;
  apps[1].id = "vim";
  store::CheckinWrite write;
  write.device_id = id;
  write.last_seen = now_;
  write.inventory = store::InventoryUpdate{protocol::InventoryHash(apps), protocol::CanonicalInventory(apps),
                                           store::EncodeMatchRecords(apps), now_};
  store::DeviceEvent event;
  event.seq = 1;
  event.at = now_;
  event.kind = "remove_failed";
  event.platform = "deb";
  event.app = "ban-wechat";
  event.rule_id = "ban-wechat";
  event.detail = "dpkg: locked";
  write.events.push_back(event);
  store::DeviceRuleState state;
  state.rule_id = "ban-wechat";
  state.state = store::ComplianceState::kViolating;
  state.since = now_;
  state.had_app = true;
  state.version = 1;
  write.rule_states.push_back(state);
  auto applied = fleet_->ApplyCheckins(std::span<const store::CheckinWrite>(&write, 1));
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  ASSERT_TRUE((*applied)[0].status.ok()) << (*applied)[0].status.ToString();

  auto response = Send("GET", "/v1/admin/devices/" + id, dave_);
  ASSERT_EQ(response.status, 200) << response.body;
  Json device = BodyOf(response);
  EXPECT_EQ(device["groups"], Json::array({"ops"}));
  ASSERT_TRUE(device["inventory"].is_array());
  EXPECT_EQ(device["inventory"].size(), 2u);
  ASSERT_TRUE(device["decisions"].is_array()) << response.body;
  std::map<std::string, std::string> verdicts;
  for (const auto& d : device["decisions"]) verdicts[d["id"]] = d["decision"];
  EXPECT_EQ(verdicts["ban-wechat"], "remove") << device["decisions"].dump();
  EXPECT_EQ(verdicts["vim"], "allowed") << device["decisions"].dump();
  ASSERT_EQ(device["rule_states"].size(), 1u);
  EXPECT_EQ(device["rule_states"][0]["state"], "violating");
  ASSERT_EQ(device["events"].size(), 1u);
  EXPECT_EQ(device["events"][0]["detail"], "dpkg: locked");
}

// ---- compliance through the API ----

TEST_F(AdminApiTest, ComplianceCountsOnAHandBuiltFleet) {
  // Three devices; rule published at kStart (bundle 1 issued then).
  std::string fixed = EnrollDevice("fixed");
  std::string failing = EnrollDevice("failing");
  std::string silent = EnrollDevice("silent");
  std::string waived = EnrollDevice("waived");
  PublishedRule("ban-x");
  ASSERT_EQ(Send("POST", "/v1/admin/publish", alice_).status, 201);
  auto requested = Send("POST", "/v1/admin/waivers", alice_,
                        R"({"id":"w","rule_id":"ban-x","subject_kind":"device","subject":")" + waived +
                            R"(","justification":"j","expires_at":"2030-01-01T00:00:00Z"})");
  ASSERT_EQ(requested.status, 202) << requested.body;
  ASSERT_EQ(Send("POST", "/v1/admin/changes/" + BodyOf(requested)["change"]["id"].get<std::string>() + "/approve", bob_)
                .status,
            200);
  now_ += 5;
  ASSERT_EQ(Send("POST", "/v1/admin/publish", alice_).status, 201);  // bundle 2 carries the waiver
  EXPECT_EQ(hub_->latest().rule_first_published.at("ban-x").second, kStart) << "counted from the first bundle";

  // fixed: removed the app, compliant 120 s after the first publication; failing: violating.
  std::vector<store::CheckinWrite> writes(2);
  writes[0].device_id = fixed;
  writes[0].last_seen = kStart + 120;
  writes[0].rule_states.push_back(
      {fixed, "ban-x", store::ComplianceState::kCompliant, kStart + 120, true, kStart + 120, 1});
  writes[1].device_id = failing;
  writes[1].last_seen = kStart + 130;
  writes[1].rule_states.push_back(
      {failing, "ban-x", store::ComplianceState::kViolating, kStart + 130, true, std::nullopt, 1});
  ASSERT_TRUE(fleet_->ApplyCheckins(writes).ok());
  // silent never checks in; waived has an active waiver in bundle 2.
  now_ = kStart + 600;  // stale_after 900: silent enrolled (last_seen 0) counts as stale

  auto response = Send("GET", "/v1/admin/compliance", dave_);
  ASSERT_EQ(response.status, 200) << response.body;
  Json body = BodyOf(response);
  EXPECT_EQ(body["bundle_version"], 2);
  ASSERT_EQ(body["rules"].size(), 1u);
  Json rule = body["rules"][0];
  EXPECT_EQ(rule["targeted"], 4);
  EXPECT_EQ(rule["compliant"], 1);
  EXPECT_EQ(rule["remediated"], 1);
  EXPECT_EQ(rule["violating"], 1);
  EXPECT_EQ(rule["waived"], 1);
  EXPECT_EQ(rule["pending"].get<int>() + rule["stale"].get<int>(), 1);
  EXPECT_EQ(rule["time_to_compliance"]["median_seconds"], 120);
  EXPECT_EQ(rule["time_to_compliance"]["max_seconds"], 120);
  // The chart's curve ends at the mark of the slowest device, holding every sample.
  ASSERT_FALSE(rule["time_to_compliance"]["curve"].empty());
  EXPECT_EQ(rule["time_to_compliance"]["curve"].back()["seconds"], 120);
  EXPECT_EQ(rule["time_to_compliance"]["curve"].back()["devices"], rule["time_to_compliance"]["samples"]);
  EXPECT_EQ(rule["time_to_compliance"]["curve"][0]["devices"], 0);
  EXPECT_EQ(body["totals"]["devices"], 4);
  EXPECT_EQ(body["totals"]["fully_compliant"], 2);  // fixed, waived
  EXPECT_EQ(body["totals"]["violating_any"], 1);

  Json one = BodyOf(Send("GET", "/v1/admin/compliance/rules/ban-x", dave_));
  EXPECT_EQ(one["violating_devices"], Json::array({failing}));
  EXPECT_EQ(one["pending_devices"], Json::array({silent}));
  EXPECT_EQ(Send("GET", "/v1/admin/compliance/rules/not-in-bundle", dave_).status, 404);

  Json device = BodyOf(Send("GET", "/v1/admin/compliance/devices/" + fixed, dave_));
  ASSERT_EQ(device["rules"].size(), 1u);
  EXPECT_EQ(device["rules"][0]["status"], "remediated");
  EXPECT_EQ(device["rules"][0]["time_to_compliance_seconds"], 120);
  EXPECT_EQ(BodyOf(Send("GET", "/v1/admin/compliance/devices/" + waived, dave_))["rules"][0]["status"], "waived");
  EXPECT_EQ(Send("GET", "/v1/admin/compliance/devices/d-0000000000000000", dave_).status, 404);
}

// The summary the server keeps for the console's overview: answered with ?max_age_seconds while
// it is that young and of the current bundle, saying when it was computed; computed again once it
// is older, once another bundle is published, or when the caller does not ask for it.
TEST_F(AdminApiTest, TheKeptComplianceSummaryIsAnsweredWhileYoungEnoughAndSaysItsAge) {
  std::string phone = EnrollDevice("phone");
  PublishedRule("ban-x");
  ASSERT_EQ(Send("POST", "/v1/admin/publish", alice_).status, 201);
  auto compliant_now = [&](const std::string& rule) {
    Json body = BodyOf(Send("GET", "/v1/admin/compliance", dave_));
    for (const auto& entry : body["rules"])
      if (entry["rule_id"] == rule) return entry["compliant"].get<int>();
    return -1;
  };
  auto kept = [&](int max_age) {
    return BodyOf(Send("GET", "/v1/admin/compliance?max_age_seconds=" + std::to_string(max_age), dave_));
  };

  Json computed = BodyOf(Send("GET", "/v1/admin/compliance", dave_));
  EXPECT_EQ(computed["from_stored_summary"], false);
  EXPECT_EQ(computed["age_seconds"], 0);
  EXPECT_EQ(computed["rules"][0]["compliant"], 0);
  const std::string computed_at = computed["generated_at"];

  // The phone complies; 20 s later a caller accepting a minute-old summary gets the kept one.
  std::vector<store::CheckinWrite> writes(1);
  writes[0].device_id = phone;
  writes[0].last_seen = now_;
  writes[0].rule_states.push_back({phone, "ban-x", store::ComplianceState::kCompliant, now_, true, now_, 1});
  ASSERT_TRUE(fleet_->ApplyCheckins(writes).ok());
  now_ += 20;
  Json young = kept(60);
  EXPECT_EQ(young["from_stored_summary"], true);
  EXPECT_EQ(young["age_seconds"], 20);
  EXPECT_EQ(young["generated_at"], computed_at) << "it says when its numbers were computed";
  EXPECT_EQ(young["rules"][0]["compliant"], 0) << "the numbers as of generated_at";
  // A caller accepting only 10 s gets numbers computed now, which are kept in turn.
  Json fresh = kept(10);
  EXPECT_EQ(fresh["from_stored_summary"], false);
  EXPECT_EQ(fresh["rules"][0]["compliant"], 1);
  now_ += 5;
  EXPECT_EQ(kept(10)["rules"][0]["compliant"], 1);
  EXPECT_EQ(kept(10)["age_seconds"], 5);
  EXPECT_EQ(compliant_now("ban-x"), 1) << "without max_age_seconds: computed now";

  // A summary of the previous bundle is never answered, however young.
  PublishedRule("ban-y");
  ASSERT_EQ(Send("POST", "/v1/admin/publish", alice_).status, 201);
  Json after_publish = kept(86400);
  EXPECT_EQ(after_publish["from_stored_summary"], false);
  EXPECT_EQ(after_publish["rules"].size(), 2u);

  // The worker's timer: computed again only once the kept one is as old as the period.
  writes[0].rule_states = {{phone, "ban-y", store::ComplianceState::kViolating, now_, true, std::nullopt, 2}};
  ASSERT_TRUE(fleet_->ApplyCheckins(writes).ok());
  now_ += 10;
  ASSERT_TRUE(admin::RefreshStoredCompliance(context_, 30).ok());
  Json not_yet = kept(3600);
  EXPECT_EQ(not_yet["age_seconds"], 10) << "10 s old, younger than the 30 s period: left as it was";
  now_ += 25;
  ASSERT_TRUE(admin::RefreshStoredCompliance(context_, 30).ok());
  Json refreshed = kept(3600);
  EXPECT_EQ(refreshed["from_stored_summary"], true);
  EXPECT_EQ(refreshed["age_seconds"], 0);
  EXPECT_EQ(refreshed["totals"]["violating_any"], 1);

  for (const char* bad : {"-1", "86401", "soon", ""}) {
    EXPECT_EQ(Send("GET", std::string("/v1/admin/compliance?max_age_seconds=") + bad, dave_).status, 400) << bad;
  }
}

// Measurement (run with --gtest_also_run_disabled_tests): GET /v1/admin/compliance over 100,000
// devices x 5 published rules in the real SQLite store, 95% of devices evaluated. Devices are
// inserted with raw SQL (enrolling 100k one transaction at a time would take minutes).
TEST_F(AdminApiTest, DISABLED_ComplianceEndpointOver100kDevices) {
  constexpr int kDevices = 100000;
  std::vector<std::string> ids;
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ + "/appban.db").c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    ASSERT_EQ(sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr), SQLITE_OK);
    for (int i = 0; i < kDevices; ++i) {
      char id[32];
      std::snprintf(id, sizeof id, "d-%016x", i);
      ids.push_back(id);
      std::string token = std::string("e-") + (id + 2);
      std::string sql =
          "INSERT INTO enrollment_tokens(id, group_name, secret_hash, created_by, created_at, expires_at, note) "
          "VALUES('" +
          token +
          "', '', 'x', 'a', 0, 1, '');"
          "INSERT INTO devices(id, secret_hash, hostname, platform, agent_version, group_name, enrolled_at, "
          "enrollment_token_id, last_seen) VALUES('" +
          std::string(id) + "', 'x', 'h', 'linux', '1', '', 0, '" + token + "', " + std::to_string(kStart) + ")";
      ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    }
    ASSERT_EQ(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  for (int r = 0; r < 5; ++r) PublishedRule("rule-" + std::to_string(r));
  ASSERT_EQ(Send("POST", "/v1/admin/publish", alice_).status, 201);
  for (int first = 0; first < kDevices; first += 1000) {
    std::vector<store::CheckinWrite> batch;
    for (int i = first; i < first + 1000; ++i) {
      if (i % 20 == 0) continue;  // 5% pending
      store::CheckinWrite write;
      write.device_id = ids[i];
      write.last_seen = kStart + 60;
      for (int r = 0; r < 5; ++r) {
        bool violating = i % 50 == 1;
        write.rule_states.push_back(
            {ids[i], "rule-" + std::to_string(r),
             violating ? store::ComplianceState::kViolating : store::ComplianceState::kCompliant, kStart + 60,
             i % 3 == 0, violating ? std::nullopt : std::optional<UnixSeconds>(kStart + 1 + i % 600), 1});
      }
      batch.push_back(std::move(write));
    }
    ASSERT_TRUE(fleet_->ApplyCheckins(batch).ok());
  }
  now_ = kStart + 120;
  auto start = std::chrono::steady_clock::now();
  auto response = Send("GET", "/v1/admin/compliance", dave_);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(response.status, 200) << response.body.substr(0, 500);
  Json body = BodyOf(response);
  std::cout << "[ admin ] GET /v1/admin/compliance, 100000 devices x 5 rules (SQLite): " << ms << " ms\n"
            << body["rules"][0].dump() << "\n";
  EXPECT_EQ(body["totals"]["devices"], kDevices);
  EXPECT_EQ(body["rules"][0]["targeted"], kDevices);
  EXPECT_EQ(body["rules"][0]["pending"], kDevices / 20);
  start = std::chrono::steady_clock::now();
  auto one = Send("GET", "/v1/admin/compliance/rules/rule-0?limit=10000", dave_);
  ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(one.status, 200);
  std::cout << "[ admin ] GET /v1/admin/compliance/rules/rule-0: " << ms << " ms\n";
}

// ---- assessments ----

// An APK without versionName (tests/fixtures/apps/legacy) is stored with an empty version and its
// report says null, as docs/formats/inspect-json.md has it; the upload must not fail on the null.
TEST_F(AdminApiTest, AssessmentOfAnAppWithoutVersionName) {
  const char* fixtures = std::getenv("APPBAN_FIXTURES");
  if (fixtures == nullptr) GTEST_SKIP() << "APPBAN_FIXTURES is not set";
  auto apk = ReadFileToString(std::string(fixtures) + "/legacy.apk", 64 << 20);
  ASSERT_TRUE(apk.ok()) << apk.status().ToString();
  auto uploaded = Send("POST", "/v1/admin/assessments", carol_, *apk, "application/vnd.android.package-archive");
  ASSERT_EQ(uploaded.status, 201) << uploaded.body;
  Json summary = BodyOf(uploaded);
  EXPECT_EQ(summary["package"], "org.appban.fixture.legacy");
  EXPECT_EQ(summary["version"], "");
  auto report = Send("GET", "/v1/admin/assessments/" + summary["sha256"].get<std::string>(), dave_);
  ASSERT_EQ(report.status, 200);
  EXPECT_TRUE(BodyOf(report)["app"]["version_name"].is_null());
  EXPECT_TRUE(BodyOf(report)["app"]["label"].is_null());
}

TEST_F(AdminApiTest, AssessmentUploadStoreCite) {
  if (!fs::exists(kExampleApk)) GTEST_SKIP() << kExampleApk << " not installed";
  auto apk = ReadFileToString(kExampleApk, 64 << 20);
  ASSERT_TRUE(apk.ok());
  // sha256sum of the file (coreutils), and its package per `aapt dump badging`.
  const std::string sha = "f40af631a7bdc0a1aaa9ab9fbae75e2e28357bc6b7b17d72b5ce86e75a41d556";

  EXPECT_EQ(Send("POST", "/v1/admin/assessments", carol_, *apk, "text/plain").status, 415);
  auto bad = Send("POST", "/v1/admin/assessments", carol_, "this is not a zip file at all", "application/octet-stream");
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(ErrorCode(bad), "apk_invalid");

  auto uploaded = Send("POST", "/v1/admin/assessments", carol_, *apk, "application/vnd.android.package-archive");
  ASSERT_EQ(uploaded.status, 201) << uploaded.body;
  Json summary = BodyOf(uploaded);
  EXPECT_EQ(summary["sha256"], sha);
  EXPECT_EQ(summary["package"], "tests.androguard");
  EXPECT_EQ(summary["version"], "1.0");
  EXPECT_EQ(summary["uploaded_by"], user_ids_["carol"]);
  EXPECT_EQ(summary["report"], "/v1/admin/assessments/" + sha);
  EXPECT_EQ(Send("POST", "/v1/admin/assessments", carol_, *apk, "application/octet-stream").status, 200)
      << "the same file again is already stored";
  // The upload is read where it lies in memory: nothing is written to the data directory.
  EXPECT_FALSE(fs::exists(dir_ + "/tmp"));

  auto report = Send("GET", "/v1/admin/assessments/" + sha, dave_);
  ASSERT_EQ(report.status, 200);
  EXPECT_EQ(BodyOf(report)["schema"], "appban.assess/1");
  EXPECT_EQ(BodyOf(Send("GET", "/v1/admin/assessments", dave_))["assessments"].size(), 1u);
  EXPECT_EQ(Send("GET", "/v1/admin/assessments/" + std::string(64, 'b'), dave_).status, 404);

  auto cited =
      Send("POST", "/v1/admin/rules", carol_,
           RuleBody("cites", R"(,"assessments":[{"apk_sha256":")" + sha + R"(","report":"file:///etc/passwd"}])"));
  ASSERT_EQ(cited.status, 201) << cited.body;
  EXPECT_EQ(BodyOf(cited)["assessments"][0]["report"], "/v1/admin/assessments/" + sha);
}

TEST_F(AdminApiTest, AFullAssessmentQueueIs503WithRetryAfter) {
  auto pool_fleet = store::OpenSqliteFleetStore(dir_ + "/appban.db");
  ASSERT_TRUE(pool_fleet.ok());
  AssessmentPool::Options options;
  options.threads = 1;
  options.max_queued = 1;
  // Declared before the pool, which joins its threads when destroyed: they use these.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  auto wait = [released](AssessmentPool&) {
    released.wait();
    return net::HttpResponse{};
  };
  AssessmentPool busy(io_, std::move(*pool_fleet), options);
  context_.assessments = &busy;
  // Occupy the one thread, then the one queue slot.
  auto running = std::make_shared<CapturingSink>();
  ASSERT_FALSE(busy.Submit(
                       [&](AssessmentPool& pool) {
                         started.set_value();
                         return wait(pool);
                       },
                       net::Responder(running, 1))
                   .has_value());
  started.get_future().wait();
  auto queued = std::make_shared<CapturingSink>();
  ASSERT_FALSE(busy.Submit(wait, net::Responder(queued, 1)).has_value());

  auto refused = Send("POST", "/v1/admin/assessments", carol_, "PK\x03\x04", "application/octet-stream");
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(ErrorCode(refused), "unavailable");
  bool retry_after = false;
  for (const auto& [name, value] : refused.headers) retry_after |= name == "Retry-After" && value == "5";
  EXPECT_TRUE(retry_after);
  release.set_value();
  context_.assessments = pool_.get();
}

// ---- documentation ----

TEST(AdminApiDocs, OpenApiDocumentsEveryRoute) {
  auto text = ReadFileToString(std::string(APPBAN_SOURCE_DIR) + "/docs/openapi.yaml", 1 << 20);
  ASSERT_TRUE(text.ok());
  ASSERT_EQ(text->rfind("openapi: 3.0", 0), 0u);
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text->size()) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    lines.push_back(text->substr(start, end - start));
    start = end + 1;
  }
  for (const auto& route : AdminRoutes()) {
    // "rules/{}/approve" is documented as "  /v1/admin/rules/{id}/approve:".
    std::string pattern(route.pattern);
    bool found = false;
    for (size_t i = 0; i < lines.size() && !found; ++i) {
      const std::string& line = lines[i];
      if (line.rfind("  /v1/admin/", 0) != 0 || line.back() != ':') continue;
      std::string documented = line.substr(12, line.size() - 13);
      // Replace each {name} by {} and compare.
      std::string normalized;
      for (size_t k = 0; k < documented.size(); ++k) {
        if (documented[k] == '{') {
          normalized += "{}";
          k = documented.find('}', k);
        } else {
          normalized += documented[k];
        }
      }
      if (normalized != pattern) continue;
      std::string method = "    " + AsciiLower(route.method) + ":";
      for (size_t j = i + 1; j < lines.size() && lines[j].rfind("  /", 0) != 0 && lines[j] != "components:"; ++j) {
        if (lines[j] == method) found = true;
      }
    }
    EXPECT_TRUE(found) << route.method << " /v1/admin/" << route.pattern << " is not in docs/openapi.yaml";
  }
}

}  // namespace
}  // namespace appban::server
