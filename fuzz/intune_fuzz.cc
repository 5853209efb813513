// Fuzzes what the Intune connector reads from Microsoft Graph and from its own state file (mdm/):
// a collection page (value + @odata.nextLink), each item as a managedDevice, a detectedApp and a
// mobileApp, the inventory join, a plan against a fixed bundle with the input as the live iOS
// compliance policy and configuration, and the state file. Parsed with the connector's bounds.
//   - A plan never drops a list item it does not own: every restrictedApps item of the input
//     whose appId is neither appban's nor banned is still in the PATCH body.
//   - A state document that parses survives its own writer.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "appban/common/json.h"
#include "appban/mdm/graph_client.h"
#include "appban/mdm/intune_inventory.h"
#include "appban/mdm/intune_plan.h"
#include "appban/mdm/limits.h"
#include "appban/policy/bundle.h"
#include "mdm_fuzz_support.h"

namespace {

using namespace appban;
using namespace appban::mdm;
using fuzzing::kNow;

policy::Bundle Bans() {
  return fuzzing::FixedBundle(
      {fuzzing::BanRule("wechat", {*policy::MakeTarget(policy::TargetKind::kIosBundle, "com.tencent.xin"),
                                   *policy::MakeTarget(policy::TargetKind::kAndroidPackage, "com.tencent.mm")})});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const policy::Bundle bundle = Bans();
  static const auto index = policy::PolicyIndex::Build(bundle);
  static const IntuneBanned banned = CollectIntuneBanned(bundle);
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto page = ParseGraphPage(text); page.ok()) {
    std::vector<MdmDevice> devices;
    std::map<std::string, std::vector<DetectedApp>> apps;
    std::vector<CatalogApp> catalogue;
    for (const Json& item : page->items) {
      if (auto device = ParseManagedDevice(item); device.ok()) devices.push_back(*device);
      if (auto app = ParseDetectedApp(item); app.ok()) apps[app->id].push_back(*app);
      if (auto app = ParseMobileApp(item); app.ok()) catalogue.push_back(*app);
    }
    for (const MdmDevice& device : BuildIntuneDevices(devices, apps, catalogue)) {
      for (const auto& app : device.installed) (void)index->Evaluate(app, {device.mdm_id, {"staff"}}, kNow);
    }
  }
  auto json = ParseJsonBounded(text, kMdmLimits.max_response_bytes, kMdmLimits.max_json_depth, "fuzz");
  if (!json.ok()) return 0;
  if (auto state = IntuneStateFromJson(*json); state.ok()) {
    if (!IntuneStateFromJson(IntuneStateToJson(*state)).ok()) __builtin_trap();
  }
  if (json->is_object()) {
    IntuneSnapshot snapshot;
    snapshot.compliance_policies["c"] = *json;
    snapshot.configurations["k"] = *json;
    IntuneState state;
    state.compliance["c"] = {"com.example.owned"};
    state.configurations["k"] = {"com.example.owned"};
    const std::vector<IntuneTarget> targets = {{"5f0c1d2e-0000-4000-8000-00000000000a", {"staff"}, "c", "k"}};
    IntunePlan plan = PlanIntune(*index, banned, targets, snapshot, state, kNow);
    for (const IntuneOperation& op : plan.operations) {
      if (op.kind != IntuneOperation::Kind::kPatchCompliancePolicy || !json->contains("restrictedApps")) continue;
      const Json& input = json->at("restrictedApps");
      if (!input.is_array()) continue;
      std::set<std::string> kept;
      for (const Json& item : op.body["restrictedApps"]) kept.insert(item.dump());
      for (const Json& item : input) {
        const std::string id = item.is_object() && item.contains("appId") && item["appId"].is_string()
                                   ? item["appId"].get<std::string>()
                                   : std::string();
        if (id != "com.example.owned" && !banned.ios.count(id) && !kept.count(item.dump())) __builtin_trap();
      }
    }
  }
  return 0;
}
