// MDM benchmarks (docs/benchmarks.md, "MDM"), a plain timing program:
//   appban_mdm_import_bench import N   N phones with 50 apps each, paged from the AMAPI emulator
//                                      (100 per page, generated on request) through the connector
//                                      into the fleet store, then the fleet compliance summary
//   appban_mdm_import_bench resync N   import N phones, then time the next sync of the same,
//                                      unchanged phones (incremental: nothing rewritten)
//   appban_mdm_import_bench resync-full N  its peer: the same second sync rewriting every device
//   appban_mdm_import_bench agent N    the peer: the same N devices and inventories written
//                                      through the agent check-in path (enrolled, then one
//                                      ApplyCheckins per 1,000 with inventory and evaluation)
//   appban_mdm_import_bench policies N publish -> last of N managed policies patched (Apply)
//   appban_mdm_import_bench intune N   N phones paged from the Intune emulator into the fleet store
//                                      (the emulator's detected-app listing is O(N) per page: keep
//                                      N in the hundreds until it indexes its devices)
//   appban_mdm_import_bench apple-results N  N Apple app-list answers into the results journal;
//                                      apple-results-rewrite N, the peer: rewriting the file each

// Each mode prints its time and the process's peak RSS; run each in its own process.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "amapi_emulator.h"
#include "appban/common/file.h"
#include "appban/mdm/apple_results.h"
#include "appban/mdm/connectors.h"
#include "appban/mdm/fleet_import.h"
#include "appban/policy/bundle.h"
#include "appban/protocol/messages.h"
#include "appban/store/fleet.h"
#include "appban/store/match_records.h"
#include "appban/store/store.h"
#include "appban/verify/compliance.h"
#include "appban/verify/rule_states.h"
#include "intune_emulator.h"

namespace appban {
namespace {

using Clock = std::chrono::steady_clock;
constexpr char kEnterprise[] = "enterprises/LC00bench";
constexpr char kEmail[] = "bench@gov-mdm.iam.gserviceaccount.com";
constexpr int kAppsPerDevice = 50;
constexpr int64_t kViolatingEvery = 100;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

long PeakRssMiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

[[noreturn]] void Die(const Status& status, const char* what) {
  std::fprintf(stderr, "%s: %s\n", what, status.ToString().c_str());
  std::exit(1);
}

template <typename T>
T Must(Result<T> result, const char* what) {
  if (!result.ok()) Die(result.status(), what);
  return std::move(*result);
}

struct KeyPair {
  std::string private_pem, public_pem;
};

KeyPair MakeKey() {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  KeyPair pair;
  auto pem = [](auto write) {
    BIO* bio = BIO_new(BIO_s_mem());
    write(bio);
    char* data = nullptr;
    long length = BIO_get_mem_data(bio, &data);
    std::string text(data, static_cast<size_t>(length));
    BIO_free(bio);
    return text;
  };
  pair.private_pem = pem([&](BIO* bio) { PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr); });
  pair.public_pem = pem([&](BIO* bio) { PEM_write_bio_PUBKEY(bio, key); });
  EVP_PKEY_free(key);
  return pair;
}

policy::Bundle WeChatBundle() {
  policy::Rule rule;
  rule.id = "wechat";
  rule.title = "WeChat on government phones";
  rule.action = policy::Action::kRemove;
  rule.state = policy::RuleState::kPublished;
  rule.targets.push_back(*policy::MakeTarget(policy::TargetKind::kAndroidPackage, "com.tencent.mm"));
  const UnixSeconds now = static_cast<UnixSeconds>(std::time(nullptr));
  policy::BundleInputs inputs{{rule}, {}, {}, 1, now - 60, now + 86400};
  return Must(policy::CompileBundle(inputs), "compiling the bundle");
}

verify::PublishedBundle Published(const policy::Bundle& bundle) {
  verify::PublishedBundle published;
  published.version = bundle.version;
  published.issued_at = bundle.issued_at;
  published.index = std::make_shared<const policy::PolicyIndex>(Must(policy::PolicyIndex::Build(bundle), "index"));
  published.bundle = std::make_shared<const policy::Bundle>(bundle);
  for (const auto& rule : bundle.rules) published.rule_first_published[rule.id] = {1, bundle.issued_at};
  return published;
}

struct Bench {
  std::filesystem::path dir;
  std::unique_ptr<testing::AmapiEmulator> emulator;
  mdm::AmapiConnectorConfig config;

  Bench(int64_t synthetic_devices, int policies) {
    std::string pattern = (std::filesystem::temp_directory_path() / "appban-mdm-bench-XXXXXX").string();
    dir = ::mkdtemp(pattern.data());
    KeyPair key = MakeKey();
    testing::AmapiEmulatorOptions options;
    options.spec_path = std::string(APPBAN_SOURCE_DIR) + "/tests/specs/amapi/androidmanagement-v1.json";
    options.service_account_public_key_pem = key.public_pem;
    options.client_email = kEmail;
    options.synthetic_devices = synthetic_devices;
    options.synthetic_apps_per_device = kAppsPerDevice;
    options.synthetic_violating_every = kViolatingEvery;
    emulator = Must(testing::AmapiEmulator::Start(options), "starting the emulator");
    const std::string key_path = (dir / "sa.json").string();
    Json account = {{"type", "service_account"},
                    {"private_key", key.private_pem},
                    {"client_email", kEmail},
                    {"private_key_id", "0123"},
                    {"token_uri", emulator->token_uri()}};
    if (Status written = WriteFileAtomically(key_path, account.dump(), 0600); !written.ok()) Die(written, "key file");
    config.name = "bench";
    config.enterprise = kEnterprise;
    config.service_account_key_file = key_path;
    config.base_url = emulator->base_url();
    for (int p = 0; p < policies; ++p) {
      const std::string name = std::string(kEnterprise) + "/policies/" + (p == 0 ? "default" : "p" + std::to_string(p));
      emulator->PutPolicy(name, Json{{"applications", Json::array({Json{{"packageName", "com.google.android.gm"},
                                                                        {"installType", "FORCE_INSTALLED"}}})}});
      config.policies.push_back({name, {"staff"}});
    }
  }
  ~Bench() { std::filesystem::remove_all(dir); }

  std::unique_ptr<mdm::MdmConnector> Connector() {
    mdm::ConnectorOptions options;
    options.state_dir = (dir / "mdm").string();
    auto connectors = Must(mdm::CreateConnectors(mdm::MdmConfig{{config}, {}, {}, {}}, options), "connector");
    return std::move(connectors.front());
  }
};

// Fleet compliance as GET /v1/admin/compliance computes it.
double SummarizeCompliance(store::FleetStore& fleet, const verify::PublishedBundle& latest, int64_t* violating) {
  const auto started = Clock::now();
  verify::FleetMembership membership;
  for (int64_t offset = 0;; offset += 10000) {
    auto page = Must(fleet.ListDevices(offset, 10000), "listing devices");
    membership.Add(page);
    if (page.size() < 10000) break;
  }
  membership.Finish({});
  auto rules = verify::ComplianceRulesOf(latest);
  std::vector<std::vector<store::DeviceRuleState>> states;
  for (const auto& rule : rules) states.push_back(Must(fleet.ListRuleStates(rule.id), "rule states"));
  verify::WaiverLookup waivers(latest.bundle->waivers);
  auto summary = verify::SummarizeFleet(membership, rules, states, waivers,
                                        {static_cast<UnixSeconds>(std::time(nullptr)), 86400 * 30});
  *violating = summary.totals.violating_any;
  return Seconds(started);
}

struct ImportRun {
  mdm::ImportStats stats;
  double seconds = 0;
};

// One sync's inventory, paged from the emulator into the fleet store.
ImportRun ImportOnce(mdm::MdmConnector& connector, const policy::Bundle& bundle, const verify::PublishedBundle& latest,
                     store::FleetStore& fleet, bool incremental) {
  const auto started = Clock::now();
  mdm::ImportContext context{&latest, 1, static_cast<UnixSeconds>(std::time(nullptr))};
  context.incremental = incremental;
  mdm::FleetImport import(fleet, "bench", context);
  Status listed =
      connector.InventoryPages(bundle, [&](std::vector<mdm::MdmDevice> page) { return import.Add(std::move(page)); });
  if (!listed.ok()) Die(listed, "inventory");
  ImportRun run;
  run.stats = Must(import.Finish(true), "import");
  run.seconds = Seconds(started);
  return run;
}

// `syncs` == 1: the first import of N phones. 2: the second sync of the same, unchanged phones
// is timed (incremental: skipping devices whose inventory and evaluation are stored as they are).
int Import(int64_t devices, int syncs, bool incremental) {
  Bench bench(devices, 1);
  auto connector = bench.Connector();
  const policy::Bundle bundle = WeChatBundle();
  const verify::PublishedBundle latest = Published(bundle);
  Must(connector->Apply(bundle), "apply");
  auto fleet = Must(store::OpenSqliteFleetStore((bench.dir / "appban.db").string()), "fleet store");
  ImportRun run;
  for (int sync = 0; sync < syncs; ++sync) run = ImportOnce(*connector, bundle, latest, *fleet, incremental);
  int64_t violating = 0;
  const double compliance_seconds = SummarizeCompliance(*fleet, latest, &violating);
  std::printf(
      "mdm import (sync %d, %s): %lld devices x %d apps in %.2f s (%.0f devices/s), %lld unchanged, %lld violating; "
      "fleet compliance %.2f s (violating_any %lld); peak RSS %ld MiB\n",
      syncs, incremental ? "incremental" : "full rewrite", static_cast<long long>(run.stats.devices), kAppsPerDevice,
      run.seconds, run.stats.devices / run.seconds, static_cast<long long>(run.stats.unchanged),
      static_cast<long long>(run.stats.violating), compliance_seconds, static_cast<long long>(violating), PeakRssMiB());
  return 0;
}

// N phones in the Intune emulator (Graph paging at 100 per page), each with kAppsPerDevice
// detected apps from a catalogue of kAppsPerDevice apps (WeChat on every kViolatingEvery-th), read
// by the Intune connector (managedDevices, detectedApps, each app's managedDevices) into the fleet
// store. The peer is `import N` (AMAPI) in the same run. WeChat is not in the emulated catalogue,
// so Intune names it by display name and it is not counted violating (docs/mdm.md).
int Intune(int64_t devices) {
  std::string pattern = (std::filesystem::temp_directory_path() / "appban-intune-bench-XXXXXX").string();
  std::filesystem::path dir = ::mkdtemp(pattern.data());
  constexpr char kTenant[] = "0b5e3c1a-1111-4222-8333-444455556666";
  constexpr char kClient[] = "7d1c0f2e-aaaa-4bbb-8ccc-ddddeeeeffff";
  constexpr char kSecret[] = "bench-client-secret";
  testing::IntuneEmulatorOptions options;
  options.specs_dir = std::string(APPBAN_SOURCE_DIR) + "/tests/specs/intune";
  options.tenant_id = kTenant;
  options.client_id = kClient;
  options.client_secret = kSecret;
  options.devices_sync_on_demand = true;
  auto emulator = Must(testing::IntuneEmulator::Start(options), "starting the Intune emulator");
  std::vector<testing::IntuneEmulatedApp> apps;
  for (int a = 0; a + 1 < kAppsPerDevice; ++a) {
    apps.push_back({"App " + std::to_string(a), "com.example.app" + std::to_string(a), "1.0", "ios", true});
  }
  for (int64_t i = 0; i < devices; ++i) {
    char id[64];
    std::snprintf(id, sizeof id, "4c1d%04llx-0000-4000-8000-%012lld", static_cast<unsigned long long>(i >> 16),
                  static_cast<long long>(i));
    Json device = {{"id", id},
                   {"deviceName", std::string("phone-") + id},
                   {"operatingSystem", "iOS"},
                   {"osVersion", "17.5"},
                   {"complianceState", "compliant"},
                   {"lastSyncDateTime", "2026-12-05T04:00:00Z"},
                   {"isSupervised", true},
                   {"managedDeviceOwnerType", "company"}};
    std::vector<testing::IntuneEmulatedApp> installed = apps;
    if (i % kViolatingEvery == 0) installed.push_back({"WeChat", "com.tencent.xin", "8.0.40", "ios", true});
    emulator->PutDevice(std::move(device), {"5f0c1d2e-0000-4000-8000-00000000000a"}, std::move(installed));
  }
  const std::string secret = (dir / "secret").string();
  if (Status written = WriteFileAtomically(secret, std::string(kSecret) + "\n", 0600); !written.ok())
    Die(written, "secret");
  mdm::IntuneConnectorConfig config;
  config.name = "bench";
  config.tenant_id = kTenant;
  config.client_id = kClient;
  config.client_secret_file = secret;
  config.graph_base_url = emulator->base_url();
  config.login_base_url = emulator->base_url();
  config.device_groups = {"staff"};
  mdm::ConnectorOptions connector_options;
  connector_options.state_dir = (dir / "mdm").string();
  auto connectors = Must(mdm::CreateConnectors(mdm::MdmConfig{{}, {config}, {}, {}}, connector_options), "connector");
  policy::Rule rule;
  rule.id = "wechat";
  rule.title = "WeChat";
  rule.state = policy::RuleState::kPublished;
  rule.targets.push_back(*policy::MakeTarget(policy::TargetKind::kIosBundle, "com.tencent.xin"));
  const UnixSeconds now = static_cast<UnixSeconds>(std::time(nullptr));
  const policy::Bundle bundle =
      Must(policy::CompileBundle(policy::BundleInputs{{rule}, {}, {}, 1, now - 60, now + 86400}), "bundle");
  const verify::PublishedBundle latest = Published(bundle);
  auto fleet = Must(store::OpenSqliteFleetStore((dir / "appban.db").string()), "fleet store");
  const auto started = Clock::now();
  mdm::FleetImport import(*fleet, "bench", mdm::ImportContext{&latest, 1, now});
  Status listed = connectors.front()->InventoryPages(
      bundle, [&](std::vector<mdm::MdmDevice> page) { return import.Add(std::move(page)); });
  if (!listed.ok()) Die(listed, "inventory");
  auto stats = Must(import.Finish(true), "import");
  const double seconds = Seconds(started);
  std::printf(
      "intune import: %lld devices x %d apps in %.2f s (%.0f devices/s), %lld violating, %zu Graph requests; "
      "peak RSS %ld MiB\n",
      static_cast<long long>(stats.devices), kAppsPerDevice, seconds, stats.devices / seconds,
      static_cast<long long>(stats.violating), emulator->request_log().size(), PeakRssMiB());
  std::filesystem::remove_all(dir);
  return 0;
}

// N Apple InstalledApplicationList answers (kAppsPerDevice apps, one device each) recorded as the
// webhook receiver records them: appended to the results journal (`journal`), or, the peer, the
// way it did before: the whole results file read, updated and rewritten atomically per answer.
int AppleResults(int64_t answers, bool journal) {
  std::string pattern = (std::filesystem::temp_directory_path() / "appban-apple-bench-XXXXXX").string();
  std::filesystem::path dir = ::mkdtemp(pattern.data());
  const std::string path = (dir / "apple-bench-results.json").string();
  std::vector<std::string> events;
  for (int64_t i = 0; i < answers; ++i) {
    const std::string udid = "00008110-" + std::to_string(1000000000 + i);
    std::string plist = "<plist version=\"1.0\"><dict><key>CommandUUID</key><string>C" + std::to_string(i) +
                        "</string><key>InstalledApplicationList</key><array>";
    for (int a = 0; a < kAppsPerDevice; ++a) {
      plist += "<dict><key>Identifier</key><string>com.example.app" + std::to_string(a) +
               "</string><key>Name</key><string>App</string><key>ShortVersion</key><string>1.0</string></dict>";
    }
    plist += "</array><key>Status</key><string>Acknowledged</string><key>UDID</key><string>" + udid +
             "</string></dict></plist>";
    events.push_back(Json{
        {"topic", "mdm.Connect"},
        {"acknowledge_event", {{"udid", udid}, {"status", "Acknowledged"}, {"raw_payload", mdm::Base64Encode(plist)}}}}
                         .dump());
  }
  const UnixSeconds now = static_cast<UnixSeconds>(std::time(nullptr));
  const auto started = Clock::now();
  for (const std::string& event : events) {
    if (journal) {
      if (Status recorded = mdm::RecordWebhookEvent(path, event, now); !recorded.ok()) Die(recorded, "record");
      continue;
    }
    auto result = Must(mdm::ParseWebhookEvent(event), "event");
    auto results = Must(mdm::LoadResultsFile(path), "load");
    if (Status recorded = mdm::RecordResult(results, result, now); !recorded.ok()) Die(recorded, "record");
    if (Status saved = mdm::SaveResultsFile(path, results); !saved.ok()) Die(saved, "save");
  }
  const double seconds = Seconds(started);
  const auto read_started = Clock::now();
  auto results = Must(mdm::LoadResultsFile(path), "load");
  const double read_seconds = Seconds(read_started);
  std::printf(
      "apple results (%s): %lld answers x %d apps in %.2f s (%.2f ms per answer); the connector reads %zu devices "
      "in %.3f s; peak RSS %ld MiB\n",
      journal ? "journal" : "rewrite per answer", static_cast<long long>(answers), kAppsPerDevice, seconds,
      seconds * 1000 / answers, results.devices.size(), read_seconds, PeakRssMiB());
  std::filesystem::remove_all(dir);
  return 0;
}

int Agent(int64_t devices) {
  std::string pattern = (std::filesystem::temp_directory_path() / "appban-agent-bench-XXXXXX").string();
  std::filesystem::path dir = ::mkdtemp(pattern.data());
  const std::string db = (dir / "appban.db").string();
  auto writer = Must(store::OpenSqliteFleetStore(db, store::FleetConnection::kBatchWriter), "fleet store");
  const UnixSeconds now = static_cast<UnixSeconds>(std::time(nullptr));
  store::AuditRecord audit{"bench", "", "", nullptr, nullptr, now};
  std::vector<std::string> ids;
  for (int64_t made = 0; made < devices;) {
    const size_t count = static_cast<size_t>(std::min<int64_t>(10000, devices - made));
    auto tokens = Must(writer->CreateEnrollmentTokens("", now + 3600, "bench", count, audit), "tokens");
    std::vector<store::EnrollmentRequest> requests;
    for (auto& token : tokens) requests.push_back({token.presented, "ws", "android", "bench"});
    for (auto& enrolled : Must(writer->EnrollDevices(requests, now), "enrol")) ids.push_back(enrolled->device.id);
    made += static_cast<int64_t>(count);
  }
  const policy::Bundle bundle = WeChatBundle();
  const verify::PublishedBundle latest = Published(bundle);
  const auto started = Clock::now();
  std::vector<store::CheckinWrite> batch;
  for (size_t i = 0; i < ids.size(); ++i) {
    std::vector<policy::InstalledApp> apps;
    for (int a = 0; a + 1 < kAppsPerDevice; ++a) {
      apps.push_back(
          {policy::Platform::kAndroid, "com.example.app" + std::to_string(a), "1." + std::to_string(a), "", ""});
    }
    if (static_cast<int64_t>(i) % kViolatingEvery == 0)
      apps.push_back({policy::Platform::kAndroid, "com.tencent.mm", "8.0.40", "", ""});
    store::CheckinWrite write;
    write.device_id = ids[i];
    write.last_seen = now;
    write.applied = store::AppliedPolicy{1, ""};
    const std::string hash = protocol::InventoryHash(apps);
    write.inventory =
        store::InventoryUpdate{hash, protocol::CanonicalInventory(apps), store::EncodeMatchRecords(apps), now};
    policy::DeviceContext context{ids[i], {}};
    auto standings = verify::EvaluateRuleStandings(latest, context, apps, 1, now);
    auto diff = verify::DiffRuleStates(ids[i], standings, {}, {}, 1, now);
    write.rule_states = std::move(diff.upserts);
    write.evaluated = store::EvaluationMark{1, hash};
    batch.push_back(std::move(write));
    if (batch.size() == 1000 || i + 1 == ids.size()) {
      Must(writer->ApplyCheckins(batch), "check-ins");
      batch.clear();
    }
  }
  const double seconds = Seconds(started);
  int64_t violating = 0;
  auto fleet = Must(store::OpenSqliteFleetStore(db), "fleet store");
  const double compliance_seconds = SummarizeCompliance(*fleet, latest, &violating);
  std::printf(
      "agent check-ins: %zu devices x %d apps in %.2f s (%.0f devices/s); fleet compliance %.2f s "
      "(violating_any %lld); peak RSS %ld MiB\n",
      ids.size(), kAppsPerDevice, seconds, ids.size() / seconds, compliance_seconds, static_cast<long long>(violating),
      PeakRssMiB());
  std::filesystem::remove_all(dir);
  return 0;
}

int Policies(int count) {
  Bench bench(0, count);
  auto connector = bench.Connector();
  const policy::Bundle bundle = WeChatBundle();
  const auto started = Clock::now();
  mdm::ConnectorReport report = Must(connector->Apply(bundle), "apply");
  const double seconds = Seconds(started);
  std::printf(
      "publish -> last policy patched: %d policies in %.2f s (%.1f ms per policy), %zu pushes, %s; "
      "emulator patches %d; peak RSS %ld MiB\n",
      count, seconds, seconds * 1000 / count, report.pushes.size(), report.failed ? "FAILED" : "ok",
      bench.emulator->patches(), PeakRssMiB());
  return report.failed ? 1 : 0;
}

}  // namespace
}  // namespace appban

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "import";
  const long long n = argc > 2 ? std::atoll(argv[2]) : (mode == "policies" ? 1000 : 100000);
  if (n <= 0) return 2;
  if (mode == "import") return appban::Import(n, 1, true);
  if (mode == "resync") return appban::Import(n, 2, true);
  if (mode == "resync-full") return appban::Import(n, 2, false);
  if (mode == "agent") return appban::Agent(n);
  if (mode == "intune") return appban::Intune(n);
  if (mode == "apple-results") return appban::AppleResults(n, true);
  if (mode == "apple-results-rewrite") return appban::AppleResults(n, false);
  if (mode == "policies") return appban::Policies(static_cast<int>(n));
  std::fprintf(stderr,
               "usage: %s import|resync|resync-full|intune|apple-results|apple-results-rewrite|agent|policies [N]\n",
               argv[0]);
  return 2;
}
