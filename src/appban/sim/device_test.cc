#include "appban/sim/device.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace appban::sim {
namespace {

constexpr UnixSeconds kIssued = 1795000000;
constexpr UnixSeconds kNotAfter = kIssued + 30 * 86400;

AppCatalog Catalog() {
  InventoryOptions options;
  options.seed = 42;
  options.banned_fraction = 1.0;  // every device holds 1-2 of the banned apps
  options.banned = *ParseAppList("deb:wechat,deb:kesl");
  auto catalog = AppCatalog::Make(options);
  EXPECT_TRUE(catalog.ok());
  return std::move(*catalog);
}

// A signed bundle whose one rule removes deb:wechat.
std::string SignedBundle(const policy::SigningKey& key, int64_t version) {
  policy::Rule rule;
  rule.id = "ban-wechat";
  rule.title = "WeChat";
  rule.targets.push_back(*policy::MakeTarget(policy::TargetKind::kDebPackage, "wechat"));
  rule.action = policy::Action::kRemove;
  rule.rationale = "test";
  rule.authority = "test";
  rule.state = policy::RuleState::kPublished;
  auto bundle = policy::CompileBundle(policy::BundleInputs{{rule}, {}, {}, version, kIssued, kNotAfter});
  EXPECT_TRUE(bundle.ok()) << bundle.status().ToString();
  auto envelope = policy::SignBundle(*bundle, key);
  EXPECT_TRUE(envelope.ok()) << envelope.status().ToString();
  return *envelope;
}

bool Holds(const AppCatalog& catalog, const SimDevice& device, std::string_view id) {
  return std::any_of(device.apps().begin(), device.apps().end(),
                     [&](AppIndex index) { return catalog.app(index).id == id; });
}

// The first device index whose inventory holds `id` (and, if `also` is set, holds or lacks it).
uint64_t DeviceHolding(const AppCatalog& catalog, std::string_view id, std::string_view other, bool with_other) {
  for (uint64_t index = 0;; ++index) {
    auto apps = catalog.Materialize(catalog.DeviceApps(index));
    auto has = [&](std::string_view name) {
      return std::any_of(apps.begin(), apps.end(), [&](const auto& app) { return app.id == name; });
    };
    if (has(id) && has(other) == with_other) return index;
  }
}

TEST(SimDevice, AppliesASignedBundleRemovesTheBannedAppAndReportsIt) {
  AppCatalog catalog = Catalog();
  auto key = policy::SigningKey::Generate();
  ASSERT_TRUE(key.ok());
  BundleVerifier verifier({key->public_key()});
  uint64_t index = DeviceHolding(catalog, "wechat", "kesl", true);
  SimDevice device({index, "d-0000000000000001", "cred", ""}, catalog.DeviceApps(index), catalog);

  // First check-in: full inventory, nothing applied.
  protocol::CheckinRequest first = device.NextCheckin(catalog);
  ASSERT_TRUE(first.inventory.has_value());
  EXPECT_EQ(first.applied_version, 0);
  EXPECT_EQ(first.inventory_hash, protocol::InventoryHash(*first.inventory));
  size_t apps_before = first.inventory->size();
  protocol::CheckinResponse answer;
  answer.events_acked = 0;
  device.OnCheckinAnswer(answer);  // server stored the inventory
  EXPECT_FALSE(device.NextCheckin(catalog).inventory.has_value());

  std::string envelope = SignedBundle(*key, 3);
  BundleOutcome outcome = device.ApplyBundle(envelope, verifier, catalog, kIssued + 10);
  ASSERT_EQ(outcome.kind, BundleOutcome::Kind::kApplied) << outcome.refusal.ToString();
  EXPECT_EQ(outcome.version, 3);
  EXPECT_EQ(outcome.removed, 1u);
  EXPECT_FALSE(Holds(catalog, device, "wechat"));
  EXPECT_TRUE(Holds(catalog, device, "kesl"));  // no rule names it

  protocol::CheckinRequest report = device.NextCheckin(catalog);
  EXPECT_EQ(report.applied_version, 3);
  EXPECT_EQ(report.rules_hash.size(), 64u);
  ASSERT_TRUE(report.inventory.has_value());  // changed: sent again
  EXPECT_EQ(report.inventory->size(), apps_before - 1);
  EXPECT_EQ(report.inventory_hash, protocol::InventoryHash(*report.inventory));
  ASSERT_EQ(report.events.size(), 1u);
  EXPECT_EQ(report.events[0].seq, 1);
  EXPECT_EQ(report.events[0].kind, protocol::EventKind::kRemoved);
  EXPECT_EQ(report.events[0].platform, "deb");
  EXPECT_EQ(report.events[0].app, "wechat");
  EXPECT_EQ(report.events[0].rule_id, "ban-wechat");
  // The request passes the protocol's own strict validation.
  auto reparsed = protocol::ParseCheckinRequest(protocol::ToJson(report).dump());
  EXPECT_TRUE(reparsed.ok()) << reparsed.status().ToString();

  answer.events_acked = 1;
  device.OnCheckinAnswer(answer);
  EXPECT_TRUE(device.pending_events().empty());
  EXPECT_FALSE(device.will_send_inventory());

  // The same bundle again (a later poll) changes nothing.
  EXPECT_EQ(device.ApplyBundle(envelope, verifier, catalog, kIssued + 20).kind, BundleOutcome::Kind::kNotNewer);
}

TEST(SimDevice, RefusesABundleSignedByAnotherKey) {
  AppCatalog catalog = Catalog();
  auto pinned = policy::SigningKey::Generate();
  auto other = policy::SigningKey::Generate();
  ASSERT_TRUE(pinned.ok() && other.ok());
  BundleVerifier verifier({pinned->public_key()});
  uint64_t index = DeviceHolding(catalog, "wechat", "", false);
  SimDevice device({index, "d-0000000000000002", "cred", ""}, catalog.DeviceApps(index), catalog);
  std::string hash_before = device.inventory_hash();

  BundleOutcome outcome = device.ApplyBundle(SignedBundle(*other, 1), verifier, catalog, kIssued + 10);
  EXPECT_EQ(outcome.kind, BundleOutcome::Kind::kRefused);
  EXPECT_EQ(outcome.refusal.code(), StatusCode::kNotFound);  // unknown key id
  EXPECT_TRUE(Holds(catalog, device, "wechat"));
  EXPECT_EQ(device.inventory_hash(), hash_before);
  EXPECT_EQ(device.applied_version(), 0);
  ASSERT_EQ(device.pending_events().size(), 1u);
  EXPECT_EQ(device.pending_events()[0].kind, protocol::EventKind::kBundleRefused);
  EXPECT_FALSE(device.pending_events()[0].detail.empty());
}

TEST(SimDevice, RefusesAnExpiredBundle) {
  AppCatalog catalog = Catalog();
  auto key = policy::SigningKey::Generate();
  ASSERT_TRUE(key.ok());
  BundleVerifier verifier({key->public_key()});
  SimDevice device({0, "d-0000000000000003", "cred", ""}, catalog.DeviceApps(0), catalog);
  BundleOutcome outcome = device.ApplyBundle(SignedBundle(*key, 1), verifier, catalog, kNotAfter + 1);
  EXPECT_EQ(outcome.kind, BundleOutcome::Kind::kRefused);
  EXPECT_EQ(outcome.refusal.code(), StatusCode::kExpired);
}

TEST(SimDevice, IdenticalEnvelopesAreVerifiedOncePerProcess) {
  AppCatalog catalog = Catalog();
  auto key = policy::SigningKey::Generate();
  ASSERT_TRUE(key.ok());
  BundleVerifier verifier({key->public_key()});
  std::string envelope = SignedBundle(*key, 1);
  std::vector<SimDevice> devices;
  for (uint64_t i = 0; i < 20; ++i)
    devices.emplace_back(DeviceIdentity{i, "d-" + std::to_string(i), "c", ""}, catalog.DeviceApps(i), catalog);
  for (SimDevice& device : devices) {
    EXPECT_EQ(device.ApplyBundle(envelope, verifier, catalog, kIssued + 1).kind, BundleOutcome::Kind::kApplied);
    EXPECT_EQ(device.applied_version(), 1);
  }
  EXPECT_EQ(verifier.full_verifications(), 1u);
  // A tampered copy is a different envelope: verified (and refused) on its own.
  std::string tampered = envelope;
  tampered[tampered.find("wechat")] = 'W';
  SimDevice fresh({99, "d-99", "c", ""}, catalog.DeviceApps(99), catalog);
  EXPECT_EQ(fresh.ApplyBundle(tampered, verifier, catalog, kIssued + 1).kind, BundleOutcome::Kind::kRefused);
  EXPECT_EQ(verifier.full_verifications(), 2u);
}

TEST(SimDevice, EventSequenceContinuesAfterWhatTheServerAlreadyStored) {
  AppCatalog catalog = Catalog();
  auto key = policy::SigningKey::Generate();
  ASSERT_TRUE(key.ok());
  BundleVerifier verifier({key->public_key()});
  uint64_t index = DeviceHolding(catalog, "wechat", "", false);
  // A device reloaded from a state file: the server says it stored events up to 41.
  SimDevice device({index, "d-0000000000000004", "cred", ""}, catalog.DeviceApps(index), catalog);
  protocol::CheckinResponse answer;
  answer.events_acked = 41;
  device.OnCheckinAnswer(answer);
  ASSERT_EQ(device.ApplyBundle(SignedBundle(*key, 2), verifier, catalog, kIssued + 1).kind,
            BundleOutcome::Kind::kApplied);
  ASSERT_EQ(device.pending_events().size(), 1u);
  EXPECT_EQ(device.pending_events()[0].seq, 42);
}

}  // namespace
}  // namespace appban::sim
