// appban assess FILE... : risk assessment with evidence, in text, JSON, SARIF or HTML.
// appban trackers check FILE : validate a tracker signature file before using it.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "appban/apk/apk.h"
#include "appban/assess/ios_assess.h"
#include "appban/assess/report.h"
#include "appban/cli/commands.h"
#include "appban/cli/input_files.h"
#include "appban/common/data_dir.h"
#include "appban/common/file.h"
#include "appban/common/mutex.h"
#include "appban/common/parallel.h"
#include "appban/common/text.h"
#include "appban/common/time.h"
#include "appban/ios/app.h"

namespace appban::cli {
namespace {

constexpr const char* kToolVersion = "0.1.0";
// Exit status when --fail-on trips; 1 stays "a file could not be read".
constexpr int kExitRiskGate = 3;

struct AssessOptions {
  std::vector<std::string> inputs;
  std::string format = "text";
  std::string output;
  std::string trackers;
  std::string risk_model;
  std::string data_dir;
  std::string fail_on;
  unsigned jobs = 0;
  bool no_progress = false;
};

// A one-line progress bar on stderr, redrawn in place; only when stderr is a terminal.
class Progress {
 public:
  Progress(size_t total, bool enabled) : total_(total), enabled_(enabled && total > 1 && ::isatty(2)) {}
  void Tick(const std::string& name) {
    if (!enabled_) return;
    MutexLock lock(mutex_);
    ++done_;
    constexpr int kWidth = 30;
    int filled = static_cast<int>(kWidth * done_ / total_);
    std::fprintf(stderr, "\r[%s%s] %zu/%zu %-40.40s", std::string(filled, '#').c_str(),
                 std::string(kWidth - filled, '.').c_str(), done_, total_, TerminalSafe(name).c_str());
    if (done_ == total_) std::fprintf(stderr, "\r%*s\r", 90, "");
    std::fflush(stderr);
  }

 private:
  Mutex mutex_;  // Tick runs on the worker threads of ParallelFor
  const size_t total_;
  size_t done_ GUARDED_BY(mutex_) = 0;
  const bool enabled_;
};

std::string SummaryTable(const std::vector<std::optional<assess::Assessment>>& results,
                         const std::vector<std::string>& files) {
  std::ostringstream out;
  char line[512];
  std::snprintf(line, sizeof line, "%-5s %-12s %-13s %-8s %-9s %s\n", "SCORE", "LEVEL", "VERDICT", "TRACKERS",
                "FINDINGS", "PACKAGE / FILE");
  out << "\n" << line;
  size_t counts[3] = {0, 0, 0};
  size_t unreadable = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    if (!results[i]) {
      ++unreadable;
      std::snprintf(line, sizeof line, "%-5s %-12s %-13s %-8s %-9s %s\n", "-", "-", "unreadable", "-", "-",
                    TerminalSafe(files[i]).c_str());
      out << line;
      continue;
    }
    const auto& a = *results[i];
    ++counts[static_cast<int>(a.risk.verdict)];
    std::snprintf(line, sizeof line, "%-5d %-12s %-13s %-8zu %-9zu %s  %s\n", a.risk.score,
                  std::string(assess::RiskLevelName(a.risk.level)).c_str(),
                  std::string(assess::VerdictName(a.risk.verdict)).c_str(), a.analysis.trackers.size(),
                  a.analysis.findings.size(), TerminalSafe(a.package()).c_str(), TerminalSafe(a.path()).c_str());
    out << line;
  }
  // Every file counts somewhere: an unreadable one is neither acceptable nor silently dropped.
  out << results.size() << " file(s): " << counts[2] << " unacceptable, " << counts[1] << " review, " << counts[0]
      << " acceptable, " << unreadable << " unreadable\n";
  return out.str();
}

int RunAssess(const AssessOptions& options) {
  if (options.format != "text" && options.format != "json" && options.format != "sarif" && options.format != "html") {
    std::cerr << "appban: --format must be text, json, sarif or html\n";
    return 2;
  }
  std::optional<assess::RiskLevel> fail_on;
  if (!options.fail_on.empty()) {
    auto level = assess::ParseRiskLevel(options.fail_on);
    if (!level.ok()) {
      std::cerr << "appban: --fail-on: " << level.status().message() << "\n";
      return 2;
    }
    fail_on = *level;
  }
  auto data_dir = ResolveDataDir(options.data_dir);
  if (!data_dir.ok()) {
    std::cerr << "appban: " << data_dir.status().message() << "\n";
    return 2;
  }
  auto knowledge = assess::LoadKnowledgeBase(*data_dir, options.trackers);
  if (!knowledge.ok()) {
    std::cerr << "appban: " << knowledge.status().ToString() << "\n";
    return 2;
  }
  auto model = assess::LoadRiskModel(options.risk_model.empty() ? *data_dir + "/risk-model.toml" : options.risk_model);
  if (!model.ok()) {
    std::cerr << "appban: risk model: " << model.status().message() << "\n";
    return 2;
  }

  auto ios_knowledge = assess::LoadIosKnowledge(*data_dir);
  if (!ios_knowledge.ok()) {
    std::cerr << "appban: " << ios_knowledge.status().ToString() << "\n";
    return 2;
  }

  auto roots = LoadAppleRoots(*data_dir);
  if (!roots.ok()) {
    std::cerr << "appban: " << roots.status().ToString() << "\n";
    return 2;
  }
  const ios::TrustAnchors* anchors = roots->has_value() ? &**roots : nullptr;

  std::vector<std::string> failures;
  std::vector<std::string> files = ExpandAppInputs(options.inputs, &failures);
  std::vector<std::optional<assess::Assessment>> results(files.size());
  std::vector<std::string> errors(files.size());
  Progress progress(files.size(), !options.no_progress);
  ParallelFor(files.size(), options.jobs, [&](size_t i) {
    if (IsIosInput(files[i])) {
      auto app = ios::IosApp::Open(files[i], {}, anchors);
      if (app.ok()) {
        results[i] = assess::AssessIos(*app, *knowledge, *ios_knowledge, *model);
      } else {
        errors[i] = FailureLine(files[i], app.status());
      }
      progress.Tick(files[i]);
      return;
    }
    auto apk = apk::Apk::Open(files[i]);
    if (apk.ok()) {
      results[i] = assess::Assess(*apk, *knowledge, *model);
    } else {
      errors[i] = FailureLine(files[i], apk.status());
    }
    progress.Tick(files[i]);
  });
  std::vector<assess::Assessment> assessed;
  for (size_t i = 0; i < files.size(); ++i) {
    if (!errors[i].empty()) failures.push_back(errors[i]);
    if (results[i]) assessed.push_back(*results[i]);
  }

  bool to_terminal = options.output.empty() && ::isatty(1);
  std::string rendered;
  if (options.format == "text") {
    for (const auto& a : assessed) rendered += assess::RenderText(a, to_terminal) + "\n";
    if (files.size() > 1) rendered += SummaryTable(results, files);
  } else if (options.format == "json") {
    for (const auto& a : assessed) rendered += DumpJson(assess::AssessmentJson(a), 2) + "\n";
  } else if (options.format == "sarif") {
    rendered = DumpJson(assess::RenderSarif(assessed, kToolVersion), 2) + "\n";
  } else {
    rendered = assess::RenderHtml(assessed, kToolVersion, static_cast<UnixSeconds>(std::time(nullptr)));
  }
  if (options.output.empty()) {
    std::cout << rendered << std::flush;
    if (options.format != "text" && files.size() > 1) std::cerr << SummaryTable(results, files);
  } else {
    Status written = WriteFileAtomically(options.output, rendered);
    if (!written.ok()) {
      std::cerr << "appban: " << written.ToString() << "\n";
      return 1;
    }
    if (files.size() > 1 || options.format != "text") std::cerr << SummaryTable(results, files);
  }
  for (const std::string& failure : failures) std::cerr << failure << "\n";
  if (!failures.empty()) return 1;
  if (fail_on) {
    for (const auto& a : assessed) {
      if (a.risk.level >= *fail_on) {
        std::cerr << "appban: " << a.path() << ": risk " << assess::RiskLevelName(a.risk.level)
                  << " is at or above --fail-on " << assess::RiskLevelName(*fail_on) << "\n";
        return kExitRiskGate;
      }
    }
  }
  return 0;
}

int RunTrackersCheck(const std::string& path) {
  auto set = assess::LoadTrackers(path);
  if (!set.ok()) {
    std::cerr << "appban: " << path << ": " << set.status().message() << "\n";
    return 1;
  }
  std::cout << path << ": " << set->trackers.size() << " tracker signatures valid";
  size_t with_code = 0, with_network = 0;
  for (const auto& t : set->trackers) {
    with_code += t.code_signature.empty() ? 0 : 1;
    with_network += t.network_signature.empty() ? 0 : 1;
  }
  std::cout << " (" << with_code << " with a code signature, " << with_network << " with a network signature)\n";
  for (const auto& skipped : set->skipped) std::cout << "  skipped: " << skipped << "\n";
  return 0;
}

}  // namespace

void AddAssessCommand(CLI::App& app, CommandAction* action) {
  auto options = std::make_shared<AssessOptions>();
  CLI::App* cmd =
      app.add_subcommand("assess", "Assess the privacy and security risk of APKs and iOS apps, with evidence");
  cmd->add_option("files", options->inputs,
                  "APK, IPA or Mach-O files, .app/.framework directories, or directories searched for them")
      ->required();
  cmd->add_option("--format", options->format, "One of text (default), json, sarif or html");
  cmd->add_option("-o,--output", options->output, "Write the report to this file (atomically) instead of stdout");
  cmd->add_option("--trackers", options->trackers, "Tracker signatures in the Exodus format (default: shipped set)");
  cmd->add_option("--risk-model", options->risk_model, "Risk model TOML file (default: data/risk-model.toml)");
  cmd->add_option("--data-files", options->data_dir, "Directory of appban's data files");
  cmd->add_option("--fail-on", options->fail_on,
                  "Exit with status 3 if any app reaches this level (low|medium|high|critical)");
  cmd->add_option("-j,--jobs", options->jobs, "Files assessed in parallel (default: all cores)");
  cmd->add_flag("--no-progress", options->no_progress, "No progress bar even on a terminal");
  cmd->callback([options, action] { *action = [options] { return RunAssess(*options); }; });

  auto path = std::make_shared<std::string>();
  CLI::App* trackers = app.add_subcommand("trackers", "Tracker signature files");
  trackers->require_subcommand(1);
  CLI::App* check = trackers->add_subcommand("check", "Validate a tracker file of the Exodus shape");
  check->add_option("file", *path, "Tracker JSON file")->required();
  check->callback([path, action] { *action = [path] { return RunTrackersCheck(*path); }; });
}

}  // namespace appban::cli
