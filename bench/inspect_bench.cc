// Times, in one process and one run, on the same APK:
//   inspect   the full `appban inspect` work (Apk::Open: ZIP, manifest, resources, every DEX,
//             signers, native libs) plus rendering the JSON document;
//   assess    the full `appban assess` work: inspect plus every detector, the risk model and the
//             JSON report (with the shipped data files);
//   inflate   zlib alone inflating the APK's classes*.dex and AndroidManifest.xml entries (the
//             physical floor the issue compares against: bytes must be inflated to be read).
// Prints the median of N runs of each, the ratio, and the inflated DEX size (for the memory
// target). Peak memory is measured separately by bench/inspect_compare.sh with /usr/bin/time.
// Usage: appban_inspect_bench APK [RUNS]
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "appban/apk/apk.h"
#include "appban/apk/report_json.h"
#include "appban/assess/report.h"
#include "appban/common/data_dir.h"
#include "appban/common/file.h"
#include "appban/common/text.h"

namespace {

using Clock = std::chrono::steady_clock;

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

bool IsInflatedForInspect(const std::string& name) {
  return name == "AndroidManifest.xml" || (name.starts_with("classes") && name.ends_with(".dex"));
}

// Raw DEFLATE with zlib, into a preallocated buffer of the declared size (as fast as zlib goes).
bool ZlibInflate(appban::Bytes input, std::vector<unsigned char>& output) {
  z_stream stream{};
  if (inflateInit2(&stream, -MAX_WBITS) != Z_OK) return false;
  stream.next_in = const_cast<Bytef*>(input.data());
  stream.avail_in = static_cast<uInt>(input.size());
  stream.next_out = output.data();
  stream.avail_out = static_cast<uInt>(output.size());
  int rc = inflate(&stream, Z_FINISH);
  inflateEnd(&stream);
  return rc == Z_STREAM_END;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s APK [RUNS]\n", argv[0]);
    return 2;
  }
  std::string path = argv[1];
  int runs = argc > 2 ? std::max(1, std::atoi(argv[2])) : 20;

  auto mapped = appban::MappedFile::Open(path);
  if (!mapped.ok()) {
    std::fprintf(stderr, "%s\n", mapped.status().ToString().c_str());
    return 1;
  }
  auto zip = appban::apk::ZipArchive::Open(mapped->bytes(), {});
  if (!zip.ok()) {
    std::fprintf(stderr, "%s\n", zip.status().ToString().c_str());
    return 1;
  }
  struct Job {
    appban::Bytes compressed;
    std::vector<unsigned char> output;
    bool deflated;
  };
  std::vector<Job> jobs;
  uint64_t dex_bytes = 0, compressed_bytes = 0;
  for (const auto& entry : zip->entries()) {
    if (!IsInflatedForInspect(entry.name) || zip->Find(entry.name) != &entry) continue;
    auto data = appban::SubSpan(mapped->bytes(), entry.data_offset, entry.compressed_size);
    if (!data) return 1;
    jobs.push_back({*data, std::vector<unsigned char>(entry.uncompressed_size), entry.is_deflated()});
    if (entry.name.ends_with(".dex")) dex_bytes += entry.uncompressed_size;
    compressed_bytes += entry.compressed_size;
  }

  auto data_dir = appban::ResolveDataDir();
  auto knowledge = data_dir.ok() ? appban::assess::LoadKnowledgeBase(*data_dir)
                                 : appban::Result<appban::assess::KnowledgeBase>(data_dir.status());
  auto model = data_dir.ok() ? appban::assess::LoadRiskModel(*data_dir + "/risk-model.toml")
                             : appban::Result<appban::assess::RiskModel>(data_dir.status());
  if (!knowledge.ok() || !model.ok()) {
    std::fprintf(stderr, "cannot load assessment data: %s %s\n", knowledge.status().ToString().c_str(),
                 model.status().ToString().c_str());
    return 1;
  }

  std::vector<double> inflate_ms, inspect_ms, assess_ms;
  size_t json_size = 0, assess_json_size = 0;
  for (int run = 0; run < runs; ++run) {
    auto start = Clock::now();
    for (Job& job : jobs) {
      if (job.deflated) {
        if (!ZlibInflate(job.compressed, job.output)) {
          std::fprintf(stderr, "zlib inflate failed\n");
          return 1;
        }
      } else {
        std::copy(job.compressed.begin(), job.compressed.end(), job.output.begin());
      }
    }
    inflate_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());

    start = Clock::now();
    auto apk = appban::apk::Apk::Open(path);
    if (!apk.ok()) {
      std::fprintf(stderr, "inspect failed: %s\n", apk.status().ToString().c_str());
      return 1;
    }
    json_size = appban::apk::InspectDocument(*apk).dump().size();
    inspect_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());

    start = Clock::now();
    auto assessed_apk = appban::apk::Apk::Open(path);
    if (!assessed_apk.ok()) return 1;
    auto assessment = appban::assess::Assess(*assessed_apk, *knowledge, *model);
    assess_json_size = appban::DumpJson(appban::assess::AssessmentJson(assessment)).size();
    assess_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  double inflate = Median(inflate_ms), inspect = Median(inspect_ms), assess = Median(assess_ms);
  std::printf("apk               %s\n", path.c_str());
  std::printf("entries inflated  %zu (%.1f MB compressed -> %.1f MB DEX)\n", jobs.size(), compressed_bytes / 1e6,
              dex_bytes / 1e6);
  std::printf("runs              %d (median)\n", runs);
  std::printf("zlib inflate      %.2f ms\n", inflate);
  std::printf("appban inspect    %.2f ms  (json %zu bytes)\n", inspect, json_size);
  std::printf("ratio             %.2fx of zlib inflate\n", inspect / inflate);
  std::printf("appban assess     %.2f ms  (json %zu bytes)\n", assess, assess_json_size);
  std::printf("assess/inspect    %.2fx\n", assess / inspect);
  std::printf("inflated_dex_bytes %llu\n", static_cast<unsigned long long>(dex_bytes));
  return 0;
}
