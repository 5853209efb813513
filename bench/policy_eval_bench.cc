// Policy evaluation speed: a device inventory of 500 apps against a bundle of 1,000 published
// rules (package, signer and vendor targets, with waivers and scopes), as an agent does on every
// new bundle and every inventory change. Also: building the index, and verifying the signed bundle.
#include <benchmark/benchmark.h>

#include "appban/policy/bundle.h"
#include "appban/policy/evaluate.h"

namespace appban::policy {
namespace {

constexpr UnixSeconds kNow = 1700000000;

std::string HexOf(int n) {
  std::string hex(64, '0');
  std::string digits = std::to_string(n);
  hex.replace(64 - digits.size(), digits.size(), digits);
  return hex;
}

Bundle MakeBundle(int rule_count) {
  BundleInputs inputs;
  for (int v = 0; v < 50; ++v) {
    Vendor vendor{"vendor-" + std::to_string(v), "XX", {}, 0};
    for (int k = 0; k < 5; ++k) {
      vendor.identifiers.push_back(
          *MakeTarget(TargetKind::kAndroidPackage, "com.vendor" + std::to_string(v) + ".app" + std::to_string(k)));
    }
    vendor.identifiers.push_back(*MakeTarget(TargetKind::kAndroidSigner, HexOf(100000 + v)));
    inputs.vendors.push_back(std::move(vendor));
  }
  for (int r = 0; r < rule_count; ++r) {
    Rule rule;
    rule.id = "rule-" + std::to_string(r);
    rule.title = "rule " + std::to_string(r);
    rule.action = static_cast<Action>(1 + r % 3);
    rule.state = RuleState::kPublished;
    for (int k = 0; k < 3; ++k) {
      rule.targets.push_back(
          *MakeTarget(TargetKind::kAndroidPackage, "com.banned" + std::to_string(r) + ".app" + std::to_string(k)));
    }
    rule.targets.push_back(*MakeTarget(TargetKind::kIosBundle, "com.banned" + std::to_string(r) + ".ios"));
    if (r % 10 == 0) rule.targets.push_back(*MakeTarget(TargetKind::kAndroidSigner, HexOf(r)));
    if (r % 20 == 0) rule.targets.push_back(*MakeTarget(TargetKind::kVendor, "vendor-" + std::to_string(r / 20)));
    if (r % 7 == 0) rule.scope_groups = {"group-" + std::to_string(r % 5)};
    inputs.rules.push_back(std::move(rule));
    if (r % 25 == 0) {
      Waiver waiver;
      waiver.id = "waiver-" + std::to_string(r);
      waiver.rule_id = "rule-" + std::to_string(r);
      waiver.subject_kind = WaiverSubject::kGroup;
      waiver.subject = "group-1";
      waiver.justification = "bench";
      waiver.approved_by = "ciso";
      waiver.created_at = kNow - 10;
      waiver.expires_at = kNow + 86400;
      inputs.waivers.push_back(std::move(waiver));
    }
  }
  inputs.version = 1;
  inputs.issued_at = kNow - 10;
  inputs.not_after = kNow + 86400;
  return *CompileBundle(inputs);
}

// 500 installed apps: 1 in 10 banned by package, 1 in 50 by signer, 1 in 50 by vendor identifier.
std::vector<InstalledApp> MakeInventory() {
  std::vector<InstalledApp> apps;
  for (int i = 0; i < 500; ++i) {
    InstalledApp app{Platform::kAndroid, "org.allowed" + std::to_string(i) + ".app", "1.0", HexOf(900000 + i), ""};
    if (i % 10 == 0) app.id = "com.banned" + std::to_string(i * 2) + ".app1";
    if (i % 50 == 1) app.signer_sha256 = HexOf((i % 100) * 10);
    if (i % 50 == 2) app.id = "com.vendor" + std::to_string(i % 50) + ".app3";
    apps.push_back(std::move(app));
  }
  return apps;
}

void BM_Evaluate500AppsAgainst1000Rules(benchmark::State& state) {
  Bundle bundle = MakeBundle(1000);
  PolicyIndex index = *PolicyIndex::Build(bundle);
  std::vector<InstalledApp> apps = MakeInventory();
  DeviceContext device{"phone-1", {"group-1", "group-3"}};
  size_t non_allowed = 0;
  for (auto _ : state) {
    auto decisions = index.EvaluateAll(apps, device, kNow);
    benchmark::DoNotOptimize(decisions.data());
    non_allowed = 0;
    for (const auto& d : decisions) non_allowed += d.verdict != Verdict::kAllowed ? 1 : 0;
  }
  state.counters["apps"] = static_cast<double>(apps.size());
  state.counters["rules"] = static_cast<double>(bundle.rules.size());
  state.counters["decided"] = static_cast<double>(non_allowed);
}
BENCHMARK(BM_Evaluate500AppsAgainst1000Rules)->Unit(benchmark::kMicrosecond);

void BM_BuildIndex1000Rules(benchmark::State& state) {
  Bundle bundle = MakeBundle(1000);
  for (auto _ : state) {
    auto index = PolicyIndex::Build(bundle);
    benchmark::DoNotOptimize(index.ok());
  }
}
BENCHMARK(BM_BuildIndex1000Rules)->Unit(benchmark::kMicrosecond);

void BM_VerifySignedBundle1000Rules(benchmark::State& state) {
  Bundle bundle = MakeBundle(1000);
  SigningKey key = std::move(SigningKey::Generate()).value();
  std::string envelope = *SignBundle(bundle, key);
  VerifyOptions options;
  options.trusted_keys = {key.public_key()};
  options.now = kNow;
  for (auto _ : state) {
    auto verified = VerifyBundle(envelope, options);
    benchmark::DoNotOptimize(verified.ok());
  }
  state.counters["bytes"] = static_cast<double>(envelope.size());
}
BENCHMARK(BM_VerifySignedBundle1000Rules)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace appban::policy

BENCHMARK_MAIN();
