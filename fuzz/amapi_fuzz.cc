// Fuzzes what the AMAPI connector reads from Google's API and from its own files (mdm/): a policy
// (planned against a fixed bundle and a fixed ownership record), a device (its application
// reports evaluated against the bundle), the connector's state file and a service-account key
// file. The input is parsed with the connector's bounds first, as every response is.
//   - A plan never loses an entry it does not own: every entry of the input policy that is neither
//     appban's nor a package the bundle bans is still in the patched applications[].
//   - A state document that parses survives its own writer.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "appban/common/json.h"
#include "appban/mdm/amapi_connector.h"
#include "appban/mdm/amapi_inventory.h"
#include "appban/mdm/amapi_plan.h"
#include "appban/mdm/google_auth.h"
#include "appban/mdm/limits.h"
#include "appban/policy/bundle.h"
#include "mdm_fuzz_support.h"

namespace {

using namespace appban;
using namespace appban::mdm;
using fuzzing::kNow;

policy::Bundle Bans() {
  auto android = [](const char* package) { return *policy::MakeTarget(policy::TargetKind::kAndroidPackage, package); };
  return fuzzing::FixedBundle({fuzzing::BanRule("wechat", {android("com.tencent.mm")}),
                               fuzzing::BanRule("tiktok", {android("com.zhiliaoapp.musically")}, {"staff"})});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const policy::Bundle bundle = Bans();
  static const auto index = policy::PolicyIndex::Build(bundle);
  static const BannedPackages banned = CollectBannedPackages(bundle);
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  (void)ParseServiceAccountKey(text);
  auto json = ParseJsonBounded(text, kMdmLimits.max_response_bytes, kMdmLimits.max_json_depth, "fuzz");
  if (!json.ok()) return 0;

  if (auto device = ParseAmapiDevice(*json); device.ok()) {
    for (const auto& app : device->installed) (void)index->Evaluate(app, {device->name, {"staff"}}, kNow);
  }
  if (auto state = ConnectorStateFromJson(*json); state.ok()) {
    if (!ConnectorStateFromJson(ConnectorStateToJson(*state)).ok()) __builtin_trap();
  }
  if (json->is_object()) {
    const OwnedEntries owned = {{"com.zhiliaoapp.musically", nullptr}};
    const ManagedPolicy managed{"enterprises/e/policies/p", {"staff"}};
    auto change = PlanPolicy(*index, banned, managed, *json, ResolveOwnership({owned, owned}, *json), kNow);
    const Json& input = *json;
    if (change.ok() && change->patch_body.contains("applications") && input.contains("applications")) {
      std::set<std::string> kept;
      for (const Json& entry : change->patch_body["applications"]) kept.insert(entry.dump());
      for (const Json& entry : input.at("applications")) {
        const std::string package = entry.is_object() ? entry.value("packageName", std::string()) : std::string();
        if (!owned.count(package) && !banned.packages.count(package) && !kept.count(entry.dump())) __builtin_trap();
      }
    }
  }
  return 0;
}
