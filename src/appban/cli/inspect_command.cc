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
#include "appban/ios/app.h"
#include "appban/ios/report_json.h"

namespace appban::cli {
namespace {

struct InspectOptions {
  std::vector<std::string> inputs;
  bool json = false;
  unsigned jobs = 0;
  std::string data_dir;
};

// Strings come from the APK: made terminal-safe so a hostile label cannot drive the terminal.
std::string OrDash(const std::string& text) { return text.empty() ? "-" : TerminalSafe(text); }
std::string OrDash(const std::optional<std::string>& text) { return text ? OrDash(*text) : "-"; }
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
  out << "  sdk            min " << (m.min_sdk_codename.empty() ? OrDash(m.min_sdk) : OrDash(m.min_sdk_codename))
      << ", target " << OrDash(m.target_sdk) << ", compile " << OrDash(m.compile_sdk)
      << (m.compile_sdk_source == "platformBuildVersionCode" ? " (platformBuildVersionCode)" : "") << "\n";
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
  if (!m.implied_permissions.empty())
    out << "  implied        " << m.implied_permissions.size() << " granted with them\n";
  for (const auto& p : m.implied_permissions) {
    out << "    " << TerminalSafe(p.name) << " (" << TerminalSafe(p.reason);
    if (p.max_sdk) out << ", maxSdkVersion " << *p.max_sdk;
    out << ")\n";
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

std::string Join(const std::vector<std::string>& items, std::string_view separator = ", ") {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : std::string(separator)) + TerminalSafe(item);
  return out.empty() ? "-" : out;
}

void PrintIosText(const ios::IosApp& app, std::ostream& out) {
  out << TerminalSafe(app.path()) << "  (iOS " << app.input_kind() << ")\n";
  if (!app.sha256().empty()) out << "  sha256         " << app.sha256() << "  (" << app.file_size() << " bytes)\n";
  for (const ios::Bundle& b : app.bundles()) {
    out << "  " << b.kind << (b.kind.size() < 14 ? std::string(15 - b.kind.size(), ' ') : " ") << TerminalSafe(b.path)
        << "\n";
    if (b.info) {
      out << "    bundle id    " << OrDash(b.info->bundle_id) << "\n";
      out << "    version      " << OrDash(b.info->short_version) << " (" << OrDash(b.info->version) << "), minimum OS "
          << OrDash(b.info->minimum_os) << ", devices " << Join(b.info->device_families) << "\n";
      if (!b.info->usage_descriptions.empty()) {
        out << "    usage        ";
        std::vector<std::string> keys;
        for (const auto& [key, text] : b.info->usage_descriptions) keys.push_back(key);
        out << Join(keys) << "\n";
      }
      if (b.info->ats && b.info->ats->arbitrary_loads) out << "    ATS          NSAllowsArbitraryLoads\n";
    }
    if (b.macho) {
      for (const auto& slice : b.macho->slices) {
        out << "    " << slice.arch << (slice.arch.size() < 13 ? std::string(13 - slice.arch.size(), ' ') : " ")
            << slice.file_type << ", " << OrDash(slice.platform) << " " << OrDash(slice.minimum_os) << ", "
            << slice.libraries.size() << " libraries, " << slice.imported_symbol_count << " imports"
            << (slice.encrypted() ? ", ENCRYPTED (cryptid " + std::to_string(slice.crypt_id) + ")" : "") << "\n";
      }
    }
    if (b.signature) {
      const auto& s = *b.signature;
      out << "    signature    " << (s.has_cms ? "certificate" : "ad hoc") << ", team " << OrDash(s.team_id)
          << (s.organization.empty() ? "" : " (" + TerminalSafe(s.organization) + ")")
          << (s.has_cms ? (s.cms_verifies ? ", CMS verifies" : ", CMS DOES NOT VERIFY") : "") << "\n";
      if (s.has_cms) out << "    chain        " << TerminalSafe(s.chain_note) << "\n";
      for (const auto& cd : s.code_directories) {
        out << "      " << cd.hash_type << " cdhash " << cd.cdhash << "  " << TerminalSafe(cd.identifier)
            << (cd.pages_match() ? "" : "  PAGE HASH MISMATCH") << "\n";
      }
    }
    if (b.profile) {
      out << "    profile      " << b.profile->type << ", team " << OrDash(b.profile->team_id) << ", expires "
          << OrDash(b.profile->expiration_date) << (b.profile->expired ? " (EXPIRED)" : "") << "\n";
      out << "    profile by   " << TerminalSafe(OrDash(b.profile->signer_name)) << ", "
          << (b.profile->signed_by_apple ? "Apple's provisioning service"
              : b.profile->chain.checked ? "NOT Apple's provisioning service"
                                         : "not checked")
          << "; chain " << TerminalSafe(b.profile->chain.note) << "\n";
    }
    if (b.privacy_manifest) {
      out << "    privacy      tracking "
          << (b.privacy_manifest->tracking ? (*b.privacy_manifest->tracking ? "yes" : "no") : "-") << ", domains "
          << Join(b.privacy_manifest->tracking_domains) << "\n";
    }
  }
  out << "  anomalies      " << app.anomalies().size() << "\n";
  for (const auto& anomaly : app.anomalies()) {
    out << "    " << anomaly.code << " at " << TerminalSafe(anomaly.where) << ": " << TerminalSafe(anomaly.detail)
        << "\n";
  }
}

int RunInspect(const InspectOptions& options) {
  auto roots = LoadAppleRoots(options.data_dir);
  if (!roots.ok()) {
    std::cerr << "appban: " << roots.status().ToString() << "\n";
    return 2;
  }
  const ios::TrustAnchors* anchors = roots->has_value() ? &**roots : nullptr;
  std::vector<std::string> failures;
  std::vector<std::string> files = ExpandAppInputs(options.inputs, &failures);
  std::vector<std::string> outputs(files.size());
  std::vector<std::string> errors(files.size());
  ParallelFor(files.size(), options.jobs, [&](size_t i) {
    if (IsIosInput(files[i])) {
      auto app = ios::IosApp::Open(files[i], {}, anchors);
      if (!app.ok()) {
        errors[i] = FailureLine(files[i], app.status());
        return;
      }
      std::ostringstream out;
      if (options.json) {
        out << DumpJson(ios::InspectDocument(*app), 2) << "\n";
      } else {
        PrintIosText(*app, out);
      }
      outputs[i] = out.str();
      return;
    }
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
  CLI::App* cmd = app.add_subcommand("inspect", "Read the facts of APKs and iOS apps (IPA, .app, framework, Mach-O)");
  cmd->add_option(
         "files", options->inputs,
         "APK, IPA or Mach-O files, .app/.framework/.xcframework directories, or directories searched for them")
      ->required();
  cmd->add_flag("--json", options->json,
                "Print one JSON document per file (schema appban.inspect/1 for APKs, appban.inspect.ios/1 for iOS)");
  cmd->add_option("-j,--jobs", options->jobs, "Files read in parallel (default: all cores)");
  cmd->add_option("--data-files", options->data_dir,
                  "Directory of appban's data files (apple-roots.pem: the roots code signatures are checked against)");
  cmd->callback([options, action] { *action = [options] { return RunInspect(*options); }; });
}

}  // namespace appban::cli
