// appban inspect FILE... [--json]: the facts of each APK, read from its bytes.
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "appban/apk/apk.h"
#include "appban/apk/report_json.h"
#include "appban/cli/commands.h"
#include "appban/cli/input_files.h"
#include "appban/common/parallel.h"
#include "appban/common/text.h"

namespace appban::cli {
namespace {

struct InspectOptions {
  std::vector<std::string> inputs;
  bool json = false;
  unsigned jobs = 0;
};

// Strings come from the APK: made terminal-safe so a hostile label cannot drive the terminal.
std::string OrDash(const std::string& text) { return text.empty() ? "-" : TerminalSafe(text); }
template <typename T>
std::string OrDash(const std::optional<T>& value) {
  return value ? std::to_string(*value) : "-";
}

void PrintText(const apk::Apk& apk, std::ostream& out) {
  const apk::Manifest& m = apk.manifest();
  out << TerminalSafe(apk.path()) << "\n";
  out << "  package        " << TerminalSafe(m.package) << "\n";
  out << "  label          " << OrDash(m.label) << "\n";
  out << "  version        " << OrDash(m.version_name) << " (code " << OrDash(m.version_code) << ")\n";
  out << "  sdk            min " << OrDash(m.min_sdk) << ", target " << OrDash(m.target_sdk) << ", compile "
      << OrDash(m.compile_sdk) << "\n";
  out << "  sha256         " << apk.sha256() << "  (" << apk.file_size() << " bytes, " << apk.zip().entries().size()
      << " entries)\n";
  out << "  dex            " << apk.dex_files().size() << " file(s), " << apk.total_dex_classes() << " classes, "
      << apk.total_dex_methods() << " method refs, " << apk.total_dex_strings() << " strings\n";
  out << "  permissions    " << m.permissions.size() << " requested, " << m.declared_permissions.size()
      << " declared\n";
  for (const auto& p : m.permissions) {
    out << "    " << TerminalSafe(p.name);
    if (p.max_sdk) out << " (maxSdkVersion " << *p.max_sdk << ")";
    if (p.sdk23_only) out << " (sdk-23)";
    out << "\n";
  }
  size_t exported = 0;
  for (const auto& c : m.components) exported += c.exported ? 1 : 0;
  out << "  components     " << m.components.size() << " (" << exported << " exported)\n";
  out << "  flags          debuggable=" << (m.flags.debuggable ? "yes" : "no")
      << " allowBackup=" << (m.flags.allow_backup ? "yes" : "no") << " usesCleartextTraffic="
      << (m.flags.uses_cleartext_traffic ? (*m.flags.uses_cleartext_traffic ? "yes" : "no") : "default")
      << " networkSecurityConfig=" << (m.flags.network_security_config ? "yes" : "no")
      << " testOnly=" << (m.flags.test_only ? "yes" : "no") << "\n";
  const apk::SigningInfo& signing = apk.signing();
  out << "  signing        " << (signing.signers.empty() ? "unsigned" : "") << (signing.v1 ? "v1 " : "")
      << (signing.v2 ? "v2 " : "") << (signing.v3 ? "v3 " : "") << (signing.v31 ? "v3.1 " : "")
      << (signing.v1_only() ? "(v1 only) " : "") << (signing.any_debug() ? "(debug certificate)" : "") << "\n";
  for (const auto& signer : signing.signers) {
    out << "    " << signer.certificate.sha256 << "  " << TerminalSafe(signer.certificate.subject) << "\n";
  }
  if (!apk.native_libraries().by_abi.empty()) {
    out << "  native         ";
    bool first = true;
    for (const auto& [abi, files] : apk.native_libraries().by_abi) {
      out << (first ? "" : ", ") << TerminalSafe(abi) << " (" << files.size() << ")";
      first = false;
    }
    out << "\n";
  }
  out << "  anomalies      " << apk.anomalies().size() << "\n";
  for (const auto& anomaly : apk.anomalies()) {
    out << "    " << anomaly.code << " at " << TerminalSafe(anomaly.where) << ": " << TerminalSafe(anomaly.detail)
        << "\n";
  }
}

int RunInspect(const InspectOptions& options) {
  std::vector<std::string> failures;
  std::vector<std::string> files = ExpandInputs(options.inputs, ".apk", &failures);
  std::vector<std::string> outputs(files.size());
  std::vector<std::string> errors(files.size());
  ParallelFor(files.size(), options.jobs, [&](size_t i) {
    auto apk = apk::Apk::Open(files[i]);
    if (!apk.ok()) {
      errors[i] = FailureLine(files[i], apk.status());
      return;
    }
    std::ostringstream out;
    if (options.json) {
      out << DumpJson(apk::InspectDocument(*apk), 2) << "\n";
    } else {
      PrintText(*apk, out);
    }
    outputs[i] = out.str();
  });
  for (size_t i = 0; i < files.size(); ++i) {
    std::cout << outputs[i];
    if (!errors[i].empty()) failures.push_back(errors[i]);
  }
  std::cout.flush();
  for (const std::string& failure : failures) std::cerr << failure << "\n";
  return failures.empty() ? 0 : 1;
}

}  // namespace

void AddInspectCommand(CLI::App& app, CommandAction* action) {
  auto options = std::make_shared<InspectOptions>();
  CLI::App* cmd = app.add_subcommand("inspect", "Read the facts of APK files (manifest, DEX, signers, native code)");
  cmd->add_option("files", options->inputs, "APK files, or directories searched for *.apk")->required();
  cmd->add_flag("--json", options->json, "Print one JSON document per file (schema appban.inspect/1)");
  cmd->add_option("-j,--jobs", options->jobs, "Files read in parallel (default: all cores)");
  cmd->callback([options, action] { *action = [options] { return RunInspect(*options); }; });
}

}  // namespace appban::cli
