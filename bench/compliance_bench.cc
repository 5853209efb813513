// Where GET /v1/admin/compliance spends its time (issue 16: under 100 ms at 100,000 devices and 50
// rules). A SQLite fleet database is filled directly with SQL (N devices, R rules, a stored state
// for every device and rule: ~90% compliant, 10% violating), then the call's work is timed in its
// phases, as admin_compliance.cc does it: the fleet membership read page by page, each rule's
// states listed, the whole fleet summarized. The peer in the same run is SQLite reading the same
// rows once through the same covering index and counting them (GROUP BY rule, state): the floor of
// any answer that reads every stored state on every call.
//   build/bench/appban_compliance_bench [devices=100000] [rules=50] [rounds=3] [database to keep]
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "appban/store/fleet.h"
#include "appban/verify/compliance.h"

namespace {

using namespace appban;
using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point since) { return std::chrono::duration<double, std::milli>(Clock::now() - since).count(); }

template <typename T>
T Must(Result<T> result, const char* what) {
  if (!result.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, result.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*result);
}

void Exec(sqlite3* db, const std::string& sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::fprintf(stderr, "sqlite: %s\n", error ? error : "?");
    std::exit(1);
  }
}

constexpr int64_t kIssuedAt = 1'780'000'000;

// N Android phones from an MDM (no enrolment token needed), every one with a state for every rule.
void Fill(const std::string& path, int64_t devices, int rules) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) std::exit(1);
  Exec(db, "PRAGMA journal_mode=WAL; BEGIN");
  Exec(db, "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < " + std::to_string(devices) +
               ") INSERT INTO devices(id, secret_hash, hostname, platform, agent_version, group_name, enrolled_at, "
               "last_seen, source, mdm_connector, mdm_id) SELECT printf('enterprises/bench/devices/%08d', i), '', "
               "printf('phone-%06d', i), 'android', '', '', " +
               std::to_string(kIssuedAt - 86400) + ", " + std::to_string(kIssuedAt) +
               " + i % 3600, 'amapi', 'bench', printf('m%d', i) FROM n");
  Exec(db,
       "WITH RECURSIVE r(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM r WHERE j + 1 < " + std::to_string(rules) +
           ") INSERT INTO device_rule_states(device_id, rule_id, state, since, had_app, compliant_at, version) "
           "SELECT d.id, printf('bench-r%02d', r.j), CASE WHEN r.j < 2 AND d.rowid % 10 = r.j THEN 'violating' ELSE "
           "'compliant' END, " +
           std::to_string(kIssuedAt) + ", (d.rowid % 7 = 0), CASE WHEN r.j < 2 AND d.rowid % 10 = r.j THEN NULL ELSE " +
           std::to_string(kIssuedAt) + " + (d.rowid * 37 + r.j) % 7200 END, 1 FROM devices AS d, r");
  Exec(db, "COMMIT; PRAGMA wal_checkpoint(TRUNCATE); ANALYZE");
  sqlite3_close(db);
}

verify::PublishedBundle Bundle(int rules) {
  policy::Bundle bundle;
  bundle.version = 1;
  bundle.issued_at = kIssuedAt;
  for (int j = 0; j < rules; ++j) {
    char id[32];
    std::snprintf(id, sizeof id, "bench-r%02d", j);
    policy::Rule rule;
    rule.id = id;
    rule.targets.push_back({policy::TargetKind::kAndroidPackage, "com.example.bench" + std::to_string(j)});
    bundle.rules.push_back(rule);
  }
  verify::PublishedBundle published;
  published.version = 1;
  published.issued_at = kIssuedAt;
  published.bundle = std::make_shared<const policy::Bundle>(bundle);
  for (const auto& rule : bundle.rules) published.rule_first_published[rule.id] = {1, kIssuedAt};
  return published;
}

// The peer: every stored state read once, through the index the per-rule query uses, and counted.
double Peer(const std::string& path, int64_t* rows) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* statement = nullptr;
  sqlite3_prepare_v2(db,
                     "SELECT rule_id, state, COUNT(*) FROM device_rule_states INDEXED BY device_rule_states_by_rule "
                     "GROUP BY rule_id, state",
                     -1, &statement, nullptr);
  const auto started = Clock::now();
  *rows = 0;
  while (sqlite3_step(statement) == SQLITE_ROW) *rows += sqlite3_column_int64(statement, 2);
  double ms = Ms(started);
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t devices = argc > 1 ? std::atoll(argv[1]) : 100000;
  const int rules = argc > 2 ? std::atoi(argv[2]) : 50;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 3;
  // A fourth argument names a database to keep: filled when absent, measured again when present.
  const bool keep = argc > 4;
  const auto dir =
      keep ? std::filesystem::path(argv[4]).parent_path()
           : std::filesystem::temp_directory_path() / ("appban-compliance-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = keep ? std::string(argv[4]) : (dir / "appban.db").string();
  const bool fill = !std::filesystem::exists(path);
  auto fleet = Must(store::OpenSqliteFleetStore(path), "opening the fleet store");
  if (fill) {
    auto filled = Clock::now();
    Fill(path, devices, rules);
    std::printf("filled %lld devices x %d rules in %.1f s (%.0f MiB)\n", static_cast<long long>(devices), rules,
                Ms(filled) / 1000, std::filesystem::file_size(path) / 1048576.0);
  }
  const verify::PublishedBundle latest = Bundle(rules);
  const auto compliance_rules = verify::ComplianceRulesOf(latest);
  verify::WaiverLookup waivers(latest.bundle->waivers);

  for (int round = 0; round < rounds; ++round) {
    auto started = Clock::now();
    verify::FleetMembership membership;
    std::string after;
    while (true) {
      auto page = Must(fleet->ListDevicesAfter(after, 10000), "listing devices");
      membership.Add(page);
      if (page.size() < 10000) break;
      after = page.back().id;
    }
    membership.Finish({});
    const double membership_ms = Ms(started);
    const verify::ComplianceParams params{kIssuedAt + 86400, 30 * 86400};
    // What the server runs: the states scanned device by device (SummarizeStoredFleet).
    auto scanned = Clock::now();
    auto summary = Must(verify::SummarizeStoredFleet(*fleet, membership, compliance_rules, waivers, params), "scan");
    const double scan_ms = Ms(scanned);
    // Before 2026-12-06: every rule's states listed, then summarized by device id lookups.
    auto listed = Clock::now();
    std::vector<std::vector<store::DeviceRuleState>> states;
    for (const auto& rule : compliance_rules) states.push_back(Must(fleet->ListRuleStates(rule.id), "rule states"));
    auto listed_summary = verify::SummarizeFleet(membership, compliance_rules, states, waivers, params);
    const double listed_ms = Ms(listed);
    if (listed_summary.totals.fully_compliant != summary.totals.fully_compliant ||
        listed_summary.totals.violating_any != summary.totals.violating_any ||
        listed_summary.rules.front().time_to_compliance.median_seconds !=
            summary.rules.front().time_to_compliance.median_seconds) {
      std::fprintf(stderr, "the two summaries differ\n");
      return 1;
    }
    int64_t peer_rows = 0;
    const double peer_ms = Peer(path, &peer_rows);
    std::printf(
        "round %d: compliance %.0f ms (membership %.0f + states scanned and summarized %.0f; %lld violating any, "
        "%lld fully compliant); the same listed per rule as before %.0f ms; peer: SQLite counting the %lld states "
        "%.0f ms\n",
        round + 1, membership_ms + scan_ms, membership_ms, scan_ms,
        static_cast<long long>(summary.totals.violating_any), static_cast<long long>(summary.totals.fully_compliant),
        listed_ms, static_cast<long long>(peer_rows), peer_ms);
  }
  fleet.reset();
  if (!keep) std::filesystem::remove_all(dir);
  return 0;
}
