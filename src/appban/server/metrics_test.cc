#include "appban/server/metrics.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace appban::server {
namespace {

using namespace std::chrono_literals;

// A parser for the Prometheus text exposition format 0.0.4, written from the format's
// documentation, strict where a scraper is: every sample belongs to a family declared by # TYPE
// before it, a family's samples are contiguous, label values are quoted with \\ \" \n escapes,
// values are floats or +Inf/-Inf/NaN.
struct Exposition {
  std::map<std::string, std::string> types;  // family -> counter|gauge|histogram
  std::map<std::string, std::string> help;
  // "name{a=\"x\",b=\"y\"}" with labels sorted by name -> value
  std::map<std::string, double> samples;
  std::vector<std::string> errors;

  double Value(const std::string& key) const {
    auto it = samples.find(key);
    if (it == samples.end()) {
      ADD_FAILURE() << "no sample " << key;
      return -1;
    }
    return it->second;
  }
};

std::string FamilyOf(const std::string& name, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s(suffix);
    if (name.size() > s.size() && name.ends_with(s)) {
      std::string base = name.substr(0, name.size() - s.size());
      auto it = types.find(base);
      if (it != types.end() && it->second == "histogram") return base;
    }
  }
  return name;
}

bool ValidName(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != ':') return false;
  }
  return true;
}

Exposition Parse(const std::string& text) {
  Exposition out;
  std::set<std::string> finished;  // families whose samples ended
  std::string current;
  std::istringstream lines(text);
  std::string line;
  if (!text.empty() && text.back() != '\n') out.errors.push_back("text does not end with a newline");
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    if (line.rfind("# ", 0) == 0) {
      std::istringstream words(line.substr(2));
      std::string keyword, name;
      words >> keyword >> name;
      if (keyword == "TYPE") {
        std::string type;
        words >> type;
        if (out.types.count(name)) out.errors.push_back("TYPE twice for " + name);
        if (type != "counter" && type != "gauge" && type != "histogram") out.errors.push_back("bad type " + type);
        out.types[name] = type;
      } else if (keyword == "HELP") {
        out.help[name] = line.substr(2 + 5 + name.size() + 1);
      }
      continue;
    }
    size_t pos = 0;
    while (pos < line.size() && line[pos] != '{' && line[pos] != ' ') ++pos;
    const std::string name = line.substr(0, pos);
    if (!ValidName(name)) out.errors.push_back("bad metric name in: " + line);
    std::map<std::string, std::string> labels;
    if (pos < line.size() && line[pos] == '{') {
      ++pos;
      while (pos < line.size() && line[pos] != '}') {
        size_t eq = line.find('=', pos);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
          out.errors.push_back("bad label in: " + line);
          break;
        }
        std::string label = line.substr(pos, eq - pos);
        std::string value;
        size_t i = eq + 2;
        for (; i < line.size() && line[i] != '"'; ++i) {
          if (line[i] == '\\' && i + 1 < line.size()) {
            ++i;
            value += line[i] == 'n' ? '\n' : line[i];
          } else {
            value += line[i];
          }
        }
        if (labels.count(label)) out.errors.push_back("label twice in: " + line);
        labels[label] = value;
        pos = i + 1;
        if (pos < line.size() && line[pos] == ',') ++pos;
      }
      ++pos;  // '}'
    }
    if (pos >= line.size() || line[pos] != ' ') {
      out.errors.push_back("no value in: " + line);
      continue;
    }
    const std::string value_text = line.substr(pos + 1);
    double value = 0;
    if (value_text == "+Inf")
      value = HUGE_VAL;
    else if (value_text == "-Inf")
      value = -HUGE_VAL;
    else if (value_text == "NaN")
      value = std::nan("");
    else {
      char* end = nullptr;
      value = std::strtod(value_text.c_str(), &end);
      if (end == value_text.c_str() || *end != '\0') out.errors.push_back("bad value in: " + line);
    }
    const std::string family = FamilyOf(name, out.types);
    if (!out.types.count(family)) out.errors.push_back("sample before # TYPE: " + line);
    if (family != current) {
      if (finished.count(family)) out.errors.push_back("family samples not contiguous: " + family);
      if (!current.empty()) finished.insert(current);
      current = family;
    }
    std::string key = name + "{";
    bool first = true;
    for (const auto& [label, label_value] : labels) {
      key += (first ? "" : ",") + label + "=\"" + label_value + "\"";
      first = false;
    }
    key += "}";
    if (out.samples.count(key)) out.errors.push_back("duplicate sample " + key);
    out.samples[key] = value;
  }
  return out;
}

Exposition Render(const MetricsRegion& region, std::span<const ExtraGauge> extra = {}) {
  auto text = RenderPrometheus(region, extra);
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  Exposition parsed = Parse(text.ok() ? *text : "");
  for (const auto& error : parsed.errors) ADD_FAILURE() << error;
  return parsed;
}

// Every histogram's buckets rise, and le="+Inf" equals _count.
void ExpectHistogramsConsistent(const Exposition& parsed) {
  for (size_t r = 0; r < kRouteCount; ++r) {
    const std::string route(RouteName(static_cast<Route>(r)));
    double previous = 0;
    for (double bound : kDurationBucketBounds) {
      std::ostringstream le;
      le << bound;
      double value =
          parsed.Value("appban_http_request_duration_seconds_bucket{le=\"" + le.str() + "\",route=\"" + route + "\"}");
      EXPECT_GE(value, previous) << route << " le=" << le.str();
      previous = value;
    }
    double infinity = parsed.Value("appban_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"" + route + "\"}");
    EXPECT_GE(infinity, previous);
    EXPECT_EQ(infinity, parsed.Value("appban_http_request_duration_seconds_count{route=\"" + route + "\"}"));
  }
}

TEST(Metrics, RenderedTextParsesBackWithSumsOverSlots) {
  auto region = MetricsRegion::Create(3);
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  MetricsSlot first = region->Slot(0);
  MetricsSlot second = region->Slot(1);
  MetricsSlot third = region->Slot(2);
  for (int i = 0; i < 3; ++i) first.RecordRequest(Route::kCheckin, 200, 1ms);
  first.RecordRequest(Route::kCheckin, 404, 1ms);
  second.RecordRequest(Route::kCheckin, 204, 1ms);
  second.RecordRequest(Route::kCheckin, 200, 1ms);
  second.RecordRequest(Route::kAdmin, 503, 1ms);
  third.RecordRequest(Route::kOther, 999, 1ms);  // nonsense status: counted as a server error
  for (int i = 0; i < 4; ++i) third.RecordCheckin();
  first.RecordCheckin();
  first.RecordEvent(EventKind::kRemoved);
  third.RecordEvent(EventKind::kRemoved);
  third.RecordEvent(EventKindFromName("something_new"));
  second.RecordEnrollment(EnrollmentResult::kRateLimited);
  first.SetUp(true, 100);
  third.SetUp(true, 102);

  Exposition parsed = Render(*region);
  EXPECT_EQ(parsed.types["appban_http_requests_total"], "counter");
  EXPECT_EQ(parsed.types["appban_http_request_duration_seconds"], "histogram");
  EXPECT_EQ(parsed.types["appban_open_connections"], "gauge");
  for (const auto& [family, type] : parsed.types) EXPECT_FALSE(parsed.help[family].empty()) << family;

  EXPECT_EQ(parsed.Value("appban_http_requests_total{code=\"2xx\",route=\"checkin\"}"), 5);
  EXPECT_EQ(parsed.Value("appban_http_requests_total{code=\"4xx\",route=\"checkin\"}"), 1);
  EXPECT_EQ(parsed.Value("appban_http_requests_total{code=\"5xx\",route=\"admin\"}"), 1);
  EXPECT_EQ(parsed.Value("appban_http_requests_total{code=\"5xx\",route=\"other\"}"), 1);
  EXPECT_EQ(parsed.Value("appban_http_requests_total{code=\"2xx\",route=\"enroll\"}"), 0);  // fixed series exist at 0
  EXPECT_EQ(parsed.Value("appban_checkins_total{}"), 5);
  EXPECT_EQ(parsed.Value("appban_events_total{kind=\"removed\"}"), 2);
  EXPECT_EQ(parsed.Value("appban_events_total{kind=\"other\"}"), 1);
  EXPECT_EQ(parsed.Value("appban_enrollments_total{result=\"rate_limited\"}"), 1);
  EXPECT_EQ(parsed.Value("appban_worker_up{worker=\"0\"}"), 1);
  EXPECT_EQ(parsed.Value("appban_worker_up{worker=\"1\"}"), 0);
  EXPECT_EQ(parsed.Value("appban_worker_up{worker=\"2\"}"), 1);
  EXPECT_EQ(parsed.Value("appban_http_request_duration_seconds_count{route=\"checkin\"}"), 6);
  ExpectHistogramsConsistent(parsed);
}

TEST(Metrics, HistogramBucketsAreInclusiveAndCumulative) {
  auto region = MetricsRegion::Create(2);
  ASSERT_TRUE(region.ok());
  region->Slot(0).RecordRequest(Route::kPoll, 200, 300us);  // <= 0.0005
  region->Slot(1).RecordRequest(Route::kPoll, 200, 1ms);    // exactly 0.001: "le" is inclusive
  region->Slot(0).RecordRequest(Route::kPoll, 200, 200ms);  // <= 0.25
  region->Slot(1).RecordRequest(Route::kPoll, 200, 100s);   // beyond 60: only +Inf

  Exposition parsed = Render(*region);
  auto bucket = [&](const std::string& le) {
    return parsed.Value("appban_http_request_duration_seconds_bucket{le=\"" + le + "\",route=\"poll\"}");
  };
  EXPECT_EQ(bucket("0.0005"), 1);
  EXPECT_EQ(bucket("0.001"), 2);
  EXPECT_EQ(bucket("0.1"), 2);
  EXPECT_EQ(bucket("0.25"), 3);
  EXPECT_EQ(bucket("60"), 3);
  EXPECT_EQ(bucket("+Inf"), 4);
  EXPECT_EQ(parsed.Value("appban_http_request_duration_seconds_count{route=\"poll\"}"), 4);
  EXPECT_NEAR(parsed.Value("appban_http_request_duration_seconds_sum{route=\"poll\"}"), 100.2013, 1e-9);
  ExpectHistogramsConsistent(parsed);
}

TEST(Metrics, GaugesSumOverSlotsAndGoDown) {
  auto region = MetricsRegion::Create(2);
  ASSERT_TRUE(region.ok());
  MetricsSlot a = region->Slot(0);
  MetricsSlot b = region->Slot(1);
  for (int i = 0; i < 5; ++i) a.ConnectionOpened();
  for (int i = 0; i < 3; ++i) b.ConnectionOpened();
  a.ConnectionClosed();
  a.DeviceConnected();
  b.DeviceConnected();
  b.LongpollStarted();
  b.LongpollStarted();
  b.LongpollEnded();
  a.SetPolicyVersion(7);
  b.SetComplianceCounts({90, 4, 5, 1});

  Exposition parsed = Render(*region);
  EXPECT_EQ(parsed.Value("appban_open_connections{}"), 7);
  EXPECT_EQ(parsed.Value("appban_connected_devices{}"), 2);
  EXPECT_EQ(parsed.Value("appban_longpolls_waiting{}"), 1);
  EXPECT_EQ(parsed.Value("appban_policy_version{}"), 7);
  EXPECT_EQ(parsed.Value("appban_compliance_devices{state=\"compliant\"}"), 90);
  EXPECT_EQ(parsed.Value("appban_compliance_devices{state=\"violating\"}"), 4);
  EXPECT_EQ(parsed.Value("appban_compliance_devices{state=\"pending\"}"), 5);
  EXPECT_EQ(parsed.Value("appban_compliance_devices{state=\"stale\"}"), 1);
}

// Two forked workers count at the same time, each in its own slot and both in a third shared one
// (which proves the counters are atomic across processes, not merely per-process).
TEST(Metrics, ForkedProcessesCountConcurrently) {
  constexpr int kIterations = 200'000;
  auto region = MetricsRegion::Create(3);
  ASSERT_TRUE(region.ok());
  std::vector<pid_t> children;
  for (uint32_t worker = 0; worker < 2; ++worker) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      MetricsSlot own = region->Slot(worker);
      MetricsSlot contended = region->Slot(2);
      own.SetUp(true, static_cast<uint64_t>(getpid()));
      for (int i = 0; i < kIterations; ++i) {
        own.RecordRequest(Route::kCheckin, 200, 2ms);
        own.RecordCheckin();
        contended.RecordEvent(EventKind::kInstallRefused);
      }
      _exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t child : children) {
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  Exposition parsed = Render(*region);
  EXPECT_EQ(parsed.Value("appban_http_requests_total{code=\"2xx\",route=\"checkin\"}"), 2.0 * kIterations);
  EXPECT_EQ(parsed.Value("appban_checkins_total{}"), 2.0 * kIterations);
  EXPECT_EQ(parsed.Value("appban_events_total{kind=\"install_refused\"}"), 2.0 * kIterations);
  EXPECT_EQ(parsed.Value("appban_http_request_duration_seconds_count{route=\"checkin\"}"), 2.0 * kIterations);
  EXPECT_NEAR(parsed.Value("appban_http_request_duration_seconds_sum{route=\"checkin\"}"), 2.0 * kIterations * 0.002,
              1e-6);
  EXPECT_EQ(parsed.Value("appban_worker_up{worker=\"0\"}"), 1);
  EXPECT_EQ(parsed.Value("appban_worker_up{worker=\"1\"}"), 1);
  EXPECT_EQ(region->slot_data(0).pid.load(), static_cast<uint64_t>(children[0]));
  ExpectHistogramsConsistent(parsed);
}

TEST(Metrics, ExtraGaugesAreGroupedEscapedAndValidated) {
  auto region = MetricsRegion::Create(1);
  ASSERT_TRUE(region.ok());
  std::vector<ExtraGauge> extra = {
      {"appban_rule_violating_devices", "Devices violating a rule.", {{"rule", "ban \"wechat\"\\x\n"}}, 3},
      {"appban_store_bytes", "Database size.", {}, 4096},
      {"appban_rule_violating_devices", "", {{"rule", "ban-tiktok"}}, 0.5},
  };
  Exposition parsed = Render(*region, extra);
  EXPECT_EQ(parsed.types["appban_rule_violating_devices"], "gauge");
  EXPECT_EQ(parsed.Value("appban_rule_violating_devices{rule=\"ban \"wechat\"\\x\n\"}"), 3);
  EXPECT_EQ(parsed.Value("appban_rule_violating_devices{rule=\"ban-tiktok\"}"), 0.5);
  EXPECT_EQ(parsed.Value("appban_store_bytes{}"), 4096);

  for (ExtraGauge bad :
       {ExtraGauge{"9lives", "", {}, 1}, ExtraGauge{"bad-name", "", {}, 1},
        ExtraGauge{"ok_name", "", {{"bad label", "x"}}, 1}, ExtraGauge{"ok_name", "", {{"__reserved", "x"}}, 1},
        ExtraGauge{"appban_checkins_total", "", {}, 1}}) {
    std::vector<ExtraGauge> one = {bad};
    auto text = RenderPrometheus(*region, one);
    EXPECT_FALSE(text.ok()) << bad.name;
  }
}

TEST(Metrics, SlotCountIsBounded) {
  EXPECT_FALSE(MetricsRegion::Create(0).ok());
  EXPECT_FALSE(MetricsRegion::Create(kMaxMetricsSlots + 1).ok());
  auto region = MetricsRegion::Create(kMaxMetricsSlots);
  ASSERT_TRUE(region.ok());
  EXPECT_EQ(region->slot_count(), kMaxMetricsSlots);
  MetricsRegion moved = std::move(*region);
  EXPECT_EQ(moved.slot_count(), kMaxMetricsSlots);
}

TEST(Metrics, LabelNamesAreTheDocumentedFixedSets) {
  EXPECT_EQ(RouteName(Route::kEnroll), "enroll");
  EXPECT_EQ(RouteName(Route::kOther), "other");
  EXPECT_EQ(EventKindName(EventKind::kRemoveFailed), "remove_failed");
  EXPECT_EQ(EventKindFromName("bundle_refused"), EventKind::kBundleRefused);
  EXPECT_EQ(EventKindFromName("removed\n"), EventKind::kOther);
  EXPECT_EQ(EnrollmentResultName(EnrollmentResult::kEnrolled), "enrolled");
  EXPECT_EQ(DeviceComplianceName(DeviceCompliance::kStale), "stale");
}

}  // namespace
}  // namespace appban::server
