// The HTML report: one self-contained page (inline CSS, no scripts, no external assets) that an
// analyst can attach to a decision file. Every string from the APK is escaped.
#include <algorithm>
#include <sstream>

#include "appban/assess/report.h"
#include "appban/common/text.h"

namespace appban::assess {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kStyle = R"css(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
section.app{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:20px;margin:0 0 24px}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{background:#f0f3f6;font-weight:600}code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;word-break:break-all}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:700;color:#fff}
.low{background:#2da44e}.medium{background:#bf8700}.high{background:#cf222e}.critical{background:#82071e}
.acceptable{background:#2da44e}.review{background:#bf8700}.unacceptable{background:#82071e}
.sev-info{color:#57606a}.sev-low{color:#0969da}.sev-medium{color:#9a6700}.sev-high{color:#cf222e}.sev-critical{color:#82071e;font-weight:700}
.score{font-size:40px;font-weight:800;margin-right:12px}.muted{color:#57606a}.yes{color:#cf222e;font-weight:600}.no{color:#57606a}
details{margin:4px 0}summary{cursor:pointer}
)css";

std::string E(std::string_view text) { return HtmlEscape(text); }
std::string S(const Json& value) {
  if (value.is_string()) return E(value.get<std::string>());
  if (value.is_null()) return "&ndash;";
  return E(value.dump());
}

void Evidence(std::ostream& out, const std::vector<assess::Evidence>& evidence) {
  if (evidence.empty()) return;
  out << "<details><summary>" << evidence.size() << " evidence item" << (evidence.size() == 1 ? "" : "s")
      << "</summary><table><tr><th>kind</th><th>value</th><th>location</th></tr>";
  for (const auto& e : evidence) {
    out << "<tr><td>" << E(e.kind) << "</td><td class=mono>" << E(e.value);
    if (!e.note.empty()) out << "<br><span class=muted>" << E(e.note) << "</span>";
    out << "</td><td class=mono>" << E(e.location) << "</td></tr>";
  }
  out << "</table></details>";
}

void AppSection(std::ostream& out, const Assessment& a, size_t index) {
  const Analysis& analysis = a.analysis;
  std::string level(RiskLevelName(a.risk.level)), verdict(VerdictName(a.risk.verdict));
  out << "<section class=app id=app-" << index << ">";
  out << "<h1>" << S(a.app["label"]) << " <span class=muted>" << E(a.package()) << " " << S(a.app["version_name"])
      << "</span></h1>";
  out << "<p class=muted>File <code>" << E(a.path()) << "</code> &middot; SHA-256 <code>" << S(a.file["sha256"])
      << "</code> &middot; " << S(a.file["size"]) << " bytes</p>";
  out << "<p><span class=score>" << a.risk.score << "</span><span class=\"badge " << level << "\">risk " << level
      << "</span> <span class=\"badge " << verdict << "\">" << verdict << "</span> <span class=muted>model "
      << E(a.risk_model) << "</span></p>";

  out << "<h2>Reasons</h2><ol>";
  for (const RiskReason& reason : a.risk.reasons) {
    out << "<li>" << E(reason.text);
    if (reason.category != "floor") out << " <span class=muted>(+" << reason.points << " points)</span>";
    out << "<br><span class=muted>findings:</span> ";
    for (size_t i = 0; i < reason.finding_ids.size(); ++i) {
      out << (i ? ", " : "") << "<a href=\"#f-" << index << "-" << E(reason.finding_ids[i]) << "\"><code>"
          << E(reason.finding_ids[i]) << "</code></a>";
    }
    out << "</li>";
  }
  if (a.risk.reasons.empty()) out << "<li>No finding carries weight in the risk model.</li>";
  out << "</ol>";

  out << "<h2>Signer and publisher</h2><table><tr><th>certificate SHA-256</th><th>subject</th><th>issuer</th>"
         "<th>valid</th><th>key</th><th>schemes</th></tr>";
  for (const Json& signer : a.app["signers"]) {
    std::string schemes;
    for (const Json& s : signer["schemes"]) schemes += (schemes.empty() ? "" : ", ") + s.get<std::string>();
    out << "<tr><td class=mono>" << S(signer["sha256"]) << "</td><td>" << S(signer["subject"]) << "</td><td>"
        << S(signer["issuer"]) << "</td><td>" << S(signer["not_before"]) << " &ndash; " << S(signer["not_after"])
        << "</td><td>" << S(signer["key_algorithm"]) << " " << S(signer["key_bits"]) << "</td><td>" << E(schemes)
        << "</td></tr>";
  }
  if (a.app["signers"].empty()) out << "<tr><td colspan=6>unsigned</td></tr>";
  out << "</table>";
  const Publisher& p = analysis.publisher;
  out << "<p>Organisation <b>" << (p.organization.empty() ? "&ndash;" : E(p.organization)) << "</b>, country <b>"
      << (p.country.empty() ? "&ndash;" : E(p.country)) << "</b>"
      << (p.v1_only ? " &middot; <span class=yes>v1-only signing</span>" : "")
      << (p.debug_certificate ? " &middot; <span class=yes>debug certificate</span>" : "");
  if (p.vendor)
    out << " &middot; vendor registry: <b>" << E(*p.vendor) << "</b> (" << E(p.vendor_country) << ", matched by "
        << E(p.matched_by) << ")";
  out << "</p>";

  out << "<h2>Trackers (" << analysis.trackers.size() << ")</h2>";
  if (!analysis.trackers.empty()) {
    out << "<table><tr><th>tracker</th><th>classes</th><th>DEX files</th><th>hosts</th></tr>";
    for (const TrackerMatch& t : analysis.trackers) {
      out << "<tr><td>" << E(t.name) << "<br><span class=muted>" << E(t.website) << "</span></td><td>" << t.class_count
          << "<details><summary>matched classes</summary><div class=mono>";
      for (const auto& c : t.classes) out << E(c) << "<br>";
      out << "</div></details></td><td class=mono>";
      for (const auto& d : t.dex_files) out << E(d) << " ";
      out << "</td><td class=mono>";
      for (const auto& h : t.hosts) out << E(h) << "<br>";
      out << "</td></tr>";
    }
    out << "</table>";
  } else {
    out << "<p>No tracker signature of the database matched this app's code or network endpoints.</p>";
  }

  out << "<h2>Capabilities and permissions</h2><table><tr><th>capability</th><th>requested</th><th>used in code</th>"
         "<th>permissions</th><th>evidence</th></tr>";
  for (const CapabilityResult& c : analysis.capabilities) {
    out << "<tr><td>" << E(c.title) << " <code>" << E(c.id)
        << "</code></td><td class=" << (c.requested ? "yes>yes" : "no>no")
        << "</td><td class=" << (c.used ? "yes>yes" : "no>no") << "</td><td class=mono>";
    for (const auto& perm : c.permissions) out << E(perm) << "<br>";
    out << "</td><td>";
    Evidence(out, c.evidence);
    out << "</td></tr>";
  }
  out << "</table><details><summary>All " << a.app["permissions"].size() << " requested permissions</summary><ul>";
  for (const Json& perm : a.app["permissions"]) out << "<li><code>" << S(perm["name"]) << "</code></li>";
  out << "</ul></details>";

  const Endpoints& endpoints = analysis.endpoints;
  out << "<h2>Network endpoints</h2><p>" << endpoints.hosts.size() << " hosts, " << endpoints.urls.size() << " URLs, "
      << endpoints.ips.size() << " IP literals.</p>";
  if (!endpoints.hosts.empty()) {
    out << "<table><tr><th>host</th><th>tracker</th></tr>";
    for (const auto& host : endpoints.hosts) {
      auto tracker = endpoints.tracker_hosts.find(host);
      out << "<tr><td class=mono>" << E(host) << "</td><td>"
          << (tracker == endpoints.tracker_hosts.end() ? "" : E(tracker->second)) << "</td></tr>";
    }
    out << "</table>";
  }
  if (!endpoints.urls.empty()) {
    out << "<details><summary>URLs</summary><div class=mono>";
    for (const auto& url : endpoints.urls) out << E(url) << "<br>";
    out << "</div></details>";
  }

  out << "<h2>Findings (" << analysis.findings.size() << ")</h2>";
  if (analysis.findings.empty())
    out << "<p>No findings.</p>";
  else
    out << "<table><tr><th>severity</th><th>finding</th></tr>";
  for (const Finding& f : analysis.findings) {
    std::string severity(SeverityName(f.severity));
    out << "<tr id=\"f-" << index << "-" << E(f.id) << "\"><td class=sev-" << severity << ">" << severity
        << "</td><td><b>" << E(f.title) << "</b> <code>" << E(f.id) << "</code><br>" << E(f.description);
    Evidence(out, f.evidence);
    out << "</td></tr>";
  }
  if (!analysis.findings.empty()) out << "</table>";

  out << "<h2>Package anomalies (" << a.anomalies.size() << ")</h2>";
  if (!a.anomalies.empty()) {
    out << "<table><tr><th>code</th><th>where</th><th>detail</th></tr>";
    for (const Json& anomaly : a.anomalies) {
      out << "<tr><td><code>" << S(anomaly["code"]) << "</code></td><td class=mono>" << S(anomaly["where"])
          << "</td><td>" << S(anomaly["detail"]) << "</td></tr>";
    }
    out << "</table>";
  } else {
    out << "<p>None: the package follows its formats.</p>";
  }
  out << "<p class=muted>min SDK " << S(a.app["min_sdk"]) << ", target SDK " << S(a.app["target_sdk"]) << " &middot; "
      << S(a.app["dex"]["classes"]) << " classes in " << a.app["dex"]["files"].size() << " DEX file(s)</p>";
  out << "</section>";
}

}  // namespace

std::string RenderHtml(const std::vector<Assessment>& assessments, const std::string& tool_version,
                       UnixSeconds generated_at) {
  std::ostringstream out;
  out << "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
         "<meta name=viewport content=\"width=device-width,initial-scale=1\">"
         "<title>appban assessment"
      << (assessments.size() == 1 ? " — " + E(assessments.front().package()) : std::string()) << "</title><style>"
      << kStyle << "</style></head><body><main>";
  if (assessments.size() > 1) {
    out << "<section class=app><h1>Assessment summary</h1><table><tr><th>app</th><th>package</th><th>score</th>"
           "<th>level</th><th>verdict</th><th>trackers</th><th>findings</th></tr>";
    for (size_t i = 0; i < assessments.size(); ++i) {
      const Assessment& a = assessments[i];
      std::string level(RiskLevelName(a.risk.level)), verdict(VerdictName(a.risk.verdict));
      out << "<tr><td><a href=\"#app-" << i << "\">" << E(a.path()) << "</a></td><td><code>" << E(a.package())
          << "</code></td><td>" << a.risk.score << "</td><td><span class=\"badge " << level << "\">" << level
          << "</span></td><td><span class=\"badge " << verdict << "\">" << verdict << "</span></td><td>"
          << a.analysis.trackers.size() << "</td><td>" << a.analysis.findings.size() << "</td></tr>";
    }
    out << "</table></section>";
  }
  for (size_t i = 0; i < assessments.size(); ++i) AppSection(out, assessments[i], i);
  // The footer says when and with what this page was made, so a printed copy can be dated and
  // reproduced: the tracker database of each app (one line per distinct database).
  std::vector<std::string> databases;
  for (const Assessment& a : assessments) {
    if (!a.tracker_database.empty() &&
        std::find(databases.begin(), databases.end(), a.tracker_database) == databases.end())
      databases.push_back(a.tracker_database);
  }
  out << "<footer><p class=muted>Generated by appban " << E(tool_version) << " on " << E(FormatTimestamp(generated_at));
  if (!databases.empty()) {
    out << " &middot; tracker database ";
    for (size_t i = 0; i < databases.size(); ++i) out << (i ? "; " : "") << E(databases[i]);
  }
  out << ". Facts were read statically from the package bytes; no code was run.</p></footer></main></body></html>\n";
  return out.str();
}

}  // namespace appban::assess
