#include "appban/assess/report.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "appban/apk/report_json.h"
#include "appban/common/text.h"

namespace appban::assess {
namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kTextEvidencePerFinding = 3;  // the terminal shows a taste; JSON/HTML show all

Json EvidenceJson(const std::vector<Evidence>& evidence) {
  Json out = Json::array();
  for (const Evidence& e : evidence) {
    out.push_back({{"kind", e.kind},
                   {"value", e.value},
                   {"location", e.location},
                   {"note", e.note.empty() ? Json(nullptr) : Json(e.note)}});
  }
  return out;
}

Json FindingJson(const Finding& finding) {
  return {{"id", finding.id},       {"category", finding.category},       {"severity", SeverityName(finding.severity)},
          {"title", finding.title}, {"description", finding.description}, {"evidence", EvidenceJson(finding.evidence)}};
}

Json RiskJson(const Assessment& a) {
  Json reasons = Json::array();
  for (const RiskReason& reason : a.risk.reasons) {
    reasons.push_back({{"category", reason.category},
                       {"text", reason.text},
                       {"points", reason.points},
                       {"findings", reason.finding_ids}});
  }
  return {{"score", a.risk.score},
          {"level", RiskLevelName(a.risk.level)},
          {"verdict", VerdictName(a.risk.verdict)},
          {"model", a.risk_model},
          {"reasons", std::move(reasons)}};
}

std::string Upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

const char* LevelColour(RiskLevel level) {
  switch (level) {
    case RiskLevel::kLow:
      return "\x1b[32m";
    case RiskLevel::kMedium:
      return "\x1b[33m";
    case RiskLevel::kHigh:
      return "\x1b[31m";
    case RiskLevel::kCritical:
      return "\x1b[1;37;41m";
  }
  return "";
}

const char* SeverityColour(Severity severity) {
  switch (severity) {
    case Severity::kInfo:
      return "\x1b[2m";
    case Severity::kLow:
      return "\x1b[36m";
    case Severity::kMedium:
      return "\x1b[33m";
    case Severity::kHigh:
      return "\x1b[31m";
    case Severity::kCritical:
      return "\x1b[1;31m";
  }
  return "";
}

std::string SarifLevel(Severity severity) {
  switch (severity) {
    case Severity::kCritical:
    case Severity::kHigh:
      return "error";
    case Severity::kMedium:
      return "warning";
    case Severity::kLow:
    case Severity::kInfo:
      return "note";
  }
  return "note";
}

std::string JsonText(const Json& value) { return value.is_string() ? value.get<std::string>() : std::string(); }

}  // namespace

std::string Assessment::version_name() const { return JsonText(app.value("version_name", Json())); }

Assessment Assess(const apk::Apk& apk, const KnowledgeBase& knowledge, const RiskModel& model) {
  Assessment a;
  a.file = apk::FileJson(apk);
  a.app = apk::AppFactsJson(apk);
  a.anomalies = apk::AnomaliesJson(apk.anomalies());
  a.analysis = Analyze(apk, knowledge);
  a.risk = ScoreRisk(a.analysis.findings, model);
  a.risk_model = model.name + (model.version.empty() ? "" : " v" + model.version);
  a.tracker_database = knowledge.trackers.description;
  return a;
}

Json AssessmentJson(const Assessment& a) {
  const Analysis& analysis = a.analysis;
  Json doc;
  doc["schema"] = kAssessSchema;
  doc["file"] = a.file;
  doc["risk"] = RiskJson(a);
  Json findings = Json::array();
  for (const Finding& finding : analysis.findings) findings.push_back(FindingJson(finding));
  doc["findings"] = std::move(findings);

  Json trackers = Json::array();
  for (const TrackerMatch& t : analysis.trackers) {
    trackers.push_back({{"id", t.id},
                        {"name", t.name},
                        {"website", t.website},
                        {"class_count", t.class_count},
                        {"classes", t.classes},
                        {"dex_files", t.dex_files},
                        {"hosts", t.hosts}});
  }
  doc["trackers"] = std::move(trackers);
  doc["tracker_database"] = a.tracker_database;
  Json tracker_hosts = Json::object();
  for (const auto& [host, tracker] : analysis.endpoints.tracker_hosts) tracker_hosts[host] = tracker;
  doc["endpoints"] = {{"hosts", analysis.endpoints.hosts},
                      {"urls", analysis.endpoints.urls},
                      {"ips", analysis.endpoints.ips},
                      {"tracker_hosts", std::move(tracker_hosts)}};
  Json capabilities = Json::array();
  for (const CapabilityResult& c : analysis.capabilities) {
    capabilities.push_back({{"id", c.id},
                            {"title", c.title},
                            {"requested", c.requested},
                            {"used", c.used},
                            {"permissions", c.permissions},
                            {"evidence", EvidenceJson(c.evidence)}});
  }
  doc["capabilities"] = std::move(capabilities);
  const Publisher& p = analysis.publisher;
  doc["publisher"] = {
      {"organization", p.organization},           {"country", p.country},
      {"signer_sha256", p.signer_sha256},         {"v1_only", p.v1_only},
      {"debug_certificate", p.debug_certificate}, {"vendor", p.vendor ? Json(*p.vendor) : Json(nullptr)},
      {"vendor_country", p.vendor_country},       {"matched_by", p.matched_by}};
  doc["obfuscation"] = {{"packers", analysis.packers}, {"obfuscated_class_ratio", analysis.obfuscated_class_ratio}};
  doc["app"] = a.app;
  doc["anomalies"] = a.anomalies;
  return doc;
}

std::string RenderText(const Assessment& a, bool color) {
  auto paint = [color](const char* code, const std::string& text) {
    return color ? std::string(code) + text + "\x1b[0m" : text;
  };
  const Analysis& analysis = a.analysis;
  std::ostringstream out;
  std::string label = TerminalSafe(JsonText(a.app["label"]));
  out << paint("\x1b[1m", TerminalSafe(a.path())) << "  " << TerminalSafe(a.package()) << " "
      << TerminalSafe(JsonText(a.app["version_name"])) << (label.empty() ? "" : " (" + label + ")") << "\n";
  out << "  risk     "
      << paint(LevelColour(a.risk.level), std::to_string(a.risk.score) + "/100 " + Upper(RiskLevelName(a.risk.level)))
      << "   verdict " << paint("\x1b[1m", Upper(VerdictName(a.risk.verdict))) << "   (model " << a.risk_model << ")\n";
  if (!a.risk.reasons.empty()) out << "  reasons\n";
  int n = 1;
  for (const RiskReason& reason : a.risk.reasons) {
    out << "    " << n++ << ". " << TerminalSafe(reason.text);
    if (reason.category != "floor") out << "  (+" << reason.points << ")";
    out << "\n";
  }
  const Publisher& p = analysis.publisher;
  out << "  signer   " << (p.signer_sha256.empty() ? "unsigned" : p.signer_sha256.substr(0, 16) + "…")
      << "  O=" << (p.organization.empty() ? "-" : TerminalSafe(p.organization))
      << " C=" << (p.country.empty() ? "-" : TerminalSafe(p.country)) << (p.v1_only ? "  v1-only" : "")
      << (p.debug_certificate ? "  DEBUG CERTIFICATE" : "");
  if (p.vendor)
    out << "  vendor: " << TerminalSafe(*p.vendor) << " (" << p.vendor_country << ", by " << p.matched_by << ")";
  out << "\n";
  out << "  trackers " << analysis.trackers.size();
  for (size_t i = 0; i < analysis.trackers.size(); ++i) {
    out << (i ? ", " : ": ") << TerminalSafe(analysis.trackers[i].name);
  }
  out << "\n";
  std::vector<std::string> used, requested_only;
  for (const CapabilityResult& c : analysis.capabilities) {
    if (c.used && c.requested)
      used.push_back(c.id);
    else if (c.requested)
      requested_only.push_back(c.id);
  }
  auto join = [](const std::vector<std::string>& items) {
    std::string s;
    for (const auto& item : items) s += (s.empty() ? "" : ", ") + item;
    return s.empty() ? std::string("-") : s;
  };
  out << "  capabilities  requested and used: " << join(used) << "; requested only: " << join(requested_only) << "\n";
  out << "  endpoints " << analysis.endpoints.hosts.size() << " hosts (" << analysis.endpoints.tracker_hosts.size()
      << " tracker), " << analysis.endpoints.urls.size() << " URLs, " << analysis.endpoints.ips.size() << " IPs\n";
  out << "  findings " << analysis.findings.size() << "\n";
  for (const Finding& f : analysis.findings) {
    std::string severity = Upper(SeverityName(f.severity));
    severity.resize(8, ' ');
    out << "    " << paint(SeverityColour(f.severity), severity) << " " << TerminalSafe(f.id) << "  "
        << TerminalSafe(f.title) << "\n";
    for (size_t i = 0; i < f.evidence.size() && i < kTextEvidencePerFinding; ++i) {
      out << "             " << f.evidence[i].kind << ": " << TerminalSafe(f.evidence[i].value);
      if (!f.evidence[i].location.empty()) out << "  (" << TerminalSafe(f.evidence[i].location) << ")";
      out << "\n";
    }
    if (f.evidence.size() > kTextEvidencePerFinding) {
      out << "             … " << f.evidence.size() - kTextEvidencePerFinding << " more (see --format json|html)\n";
    }
  }
  return out.str();
}

Json RenderSarif(const std::vector<Assessment>& assessments, const std::string& tool_version) {
  // Rules: one per distinct finding id, in first-seen order.
  Json rules = Json::array();
  std::map<std::string, size_t> rule_index;
  Json results = Json::array();
  Json artifacts = Json::array();
  for (size_t artifact = 0; artifact < assessments.size(); ++artifact) {
    const Assessment& a = assessments[artifact];
    artifacts.push_back({{"location", {{"uri", SanitizeUtf8(a.path())}}},
                         {"hashes", {{"sha-256", a.file.value("sha256", "")}}},
                         {"properties",
                          {{"package", a.package()},
                           {"risk_score", a.risk.score},
                           {"risk_level", RiskLevelName(a.risk.level)},
                           {"verdict", VerdictName(a.risk.verdict)}}}});
    for (const Finding& f : a.analysis.findings) {
      auto [it, inserted] = rule_index.emplace(f.id, rules.size());
      if (inserted) {
        rules.push_back({{"id", f.id},
                         {"name", f.category},
                         {"shortDescription", {{"text", f.title}}},
                         {"fullDescription", {{"text", f.description.empty() ? f.title : f.description}}},
                         {"defaultConfiguration", {{"level", SarifLevel(f.severity)}}},
                         {"properties", {{"category", f.category}, {"severity", SeverityName(f.severity)}}}});
      }
      Json location = {
          {"physicalLocation", {{"artifactLocation", {{"uri", SanitizeUtf8(a.path())}, {"index", artifact}}}}}};
      if (!f.evidence.empty()) {
        location["logicalLocations"] =
            Json::array({{{"name", f.evidence.front().value},
                          {"kind", f.evidence.front().kind == "method" ? "function" : "type"}}});
      }
      std::string message = f.title;
      if (!f.evidence.empty()) message += " (" + f.evidence.front().value + ")";
      results.push_back(
          {{"ruleId", f.id},
           {"ruleIndex", it->second},
           {"level", SarifLevel(f.severity)},
           {"message", {{"text", message}}},
           {"locations", Json::array({location})},
           {"properties", {{"severity", SeverityName(f.severity)}, {"evidence", EvidenceJson(f.evidence)}}}});
    }
  }
  Json run = {{"tool", {{"driver", {{"name", "appban"}, {"version", tool_version}, {"rules", std::move(rules)}}}}},
              {"artifacts", std::move(artifacts)},
              {"results", std::move(results)}};
  return {
      {"$schema", "https://json.schemastore.org/sarif-2.1.0.json"}, {"version", "2.1.0"}, {"runs", Json::array({run})}};
}

}  // namespace appban::assess
