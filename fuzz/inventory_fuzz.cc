// Fuzzes the policy JSON readers that take documents from outside: a device inventory
// (`appban policy evaluate --inventory FILE`) and the rule, waiver, vendor and group documents
// (policy/model.h FromJson). The input is parsed with the same bounds the CLI uses, then handed
// to every reader (one object may satisfy several: the readers ignore members they do not know).
//   - A parsed inventory is evaluated against a small fixed bundle.
//   - A parsed rule / waiver / vendor joins that fixed policy, which is compiled and indexed again,
//     and the fixed inventory (plus the parsed one) is evaluated against it.
//   - Whatever a reader accepts must survive its own writer: ToJson then FromJson again.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "appban/common/json.h"
#include "appban/common/time.h"
#include "appban/policy/bundle.h"
#include "appban/policy/evaluate.h"
#include "appban/policy/limits.h"
#include "appban/policy/model.h"

namespace {

using namespace appban::policy;
using appban::ParseJsonBounded;
using appban::UnixSeconds;

constexpr UnixSeconds kNow = 1700000000;  // 2023-11-14

Target MustTarget(TargetKind kind, std::string_view value) {
  auto target = MakeTarget(kind, value);
  if (!target.ok()) __builtin_trap();
  return *target;
}

// The fixed policy: a package ban, a signer ban, a vendor ban scoped to a group, and a waiver.
BundleInputs FixedInputs() {
  BundleInputs inputs;
  inputs.version = 1;
  inputs.issued_at = kNow - 100;
  inputs.not_after = kNow + 86400;
  Rule wechat;
  wechat.id = "ban-wechat";
  wechat.title = "WeChat";
  wechat.targets = {MustTarget(TargetKind::kAndroidPackage, "com.tencent.mm"),
                    MustTarget(TargetKind::kIosBundle, "com.tencent.xin")};
  wechat.state = RuleState::kPublished;
  Rule signer = wechat;
  signer.id = "ban-signer";
  signer.action = Action::kBlock;
  signer.targets = {MustTarget(TargetKind::kAndroidSigner, std::string(64, 'a'))};
  Rule vendor = wechat;
  vendor.id = "ban-vendor";
  vendor.action = Action::kReport;
  vendor.scope_groups = {"staff"};
  vendor.targets = {MustTarget(TargetKind::kVendor, "Acme")};
  inputs.rules = {wechat, signer, vendor};
  Vendor acme;
  acme.name = "Acme";
  acme.identifiers = {MustTarget(TargetKind::kAndroidPackage, "com.acme.app"),
                      MustTarget(TargetKind::kAppleTeam, "ABCDE12345")};
  inputs.vendors = {acme};
  Waiver waiver;
  waiver.id = "w1";
  waiver.rule_id = "ban-wechat";
  waiver.subject_kind = WaiverSubject::kGroup;
  waiver.subject = "staff";
  waiver.justification = "liaison";
  waiver.approved_by = "ciso";
  waiver.created_at = kNow - 1000;
  waiver.expires_at = kNow + 1000;
  inputs.waivers = {waiver};
  return inputs;
}

Inventory FixedInventory() {
  Inventory inventory;
  inventory.device = {"dev-1", {"staff"}};
  inventory.apps = {{Platform::kAndroid, "com.tencent.mm", "8.0", "", ""},
                    {Platform::kAndroid, "com.other", "1", std::string(64, 'a'), ""},
                    {Platform::kIos, "com.acme.ios", "2", "", "ABCDE12345"},
                    {Platform::kDeb, "", "", "", ""}};
  return inventory;
}

void Evaluate(const BundleInputs& inputs, const Inventory& inventory) {
  auto bundle = CompileBundle(inputs);
  if (!bundle.ok()) return;
  auto index = PolicyIndex::Build(*bundle);
  if (!index.ok()) return;
  for (UnixSeconds now : {kNow, kNow + 5000, UnixSeconds{0}}) {
    auto decisions = index->EvaluateAll(inventory.apps, inventory.device, now);
    if (decisions.size() != inventory.apps.size()) __builtin_trap();
    (void)DecisionsToJson(inventory.apps, decisions).dump();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& limits = kPolicyLimits;
  auto json = ParseJsonBounded(std::string_view(reinterpret_cast<const char*>(data), size), limits.max_inventory_bytes,
                               limits.max_json_depth, "fuzz");
  if (!json.ok()) return 0;

  BundleInputs inputs = FixedInputs();
  Inventory inventory = FixedInventory();
  bool policy_changed = false;

  if (auto parsed = InventoryFromJson(*json); parsed.ok()) {
    Evaluate(inputs, *parsed);
    inventory.apps.insert(inventory.apps.end(), parsed->apps.begin(), parsed->apps.end());
  }
  if (auto rule = RuleFromJson(*json); rule.ok()) {
    if (!ValidateRule(*rule).ok()) __builtin_trap();  // FromJson promises a valid rule
    auto again = RuleFromJson(RuleToJson(*rule, true));
    if (!again.ok()) __builtin_trap();
    rule->state = RuleState::kPublished;
    inputs.rules.push_back(*rule);
    policy_changed = true;
  }
  if (auto waiver = WaiverFromJson(*json); waiver.ok()) {
    if (!WaiverFromJson(WaiverToJson(*waiver, true)).ok()) __builtin_trap();
    inputs.waivers.push_back(*waiver);
    policy_changed = true;
  }
  if (auto vendor = VendorFromJson(*json); vendor.ok()) {
    if (!VendorFromJson(VendorToJson(*vendor)).ok()) __builtin_trap();
    inputs.vendors.push_back(*vendor);
    policy_changed = true;
  }
  if (auto group = GroupFromJson(*json); group.ok()) {
    if (!GroupFromJson(GroupToJson(*group)).ok()) __builtin_trap();
    inventory.device.groups.push_back(group->name);
  }
  if (policy_changed) Evaluate(inputs, inventory);
  return 0;
}
