// Admin API: CSV exports for spreadsheets (csv.h defuses formula cells). Each export is the whole
// list in one answer, read from the store a page at a time, and refused with 400 (naming the limit)
// beyond AdminExportLimits: a file that silently stopped would be mistaken for the whole fleet.
#include <string>

#include "appban/server/admin_handlers.h"
#include "appban/server/csv.h"

namespace appban::server::admin {
namespace {

constexpr size_t kReadPage = 1000;
constexpr size_t kMaxExportRows = 200000;  // ~30 MB of devices; twice the fleet the issue plans for

HttpResponse CsvResponse(std::string body, std::string_view filename) {
  HttpResponse response;
  response.content_type = "text/csv; charset=utf-8";
  response.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + std::string(filename) + "\"");
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  response.body = std::move(body);
  return response;
}

HttpResponse TooMany(std::string_view what) {
  return BadRequest(std::string("more than ") + std::to_string(kMaxExportRows) + " " + std::string(what) +
                    " to export in one file; use the paged JSON list (GET /v1/admin/" + std::string(what) + ")");
}

std::string TimeCell(const std::optional<UnixSeconds>& at) { return at ? FormatTimestamp(*at) : ""; }

}  // namespace

HttpResponse ExportDevicesCsv(Call& call) {
  std::string body = CsvRow({"id", "hostname", "platform", "source", "group", "agent_version", "enrolled_at",
                             "last_seen", "applied_version", "revoked_at", "cannot_enforce"});
  // The same search as the JSON list (GET /v1/admin/devices?hostname=…&app=…).
  auto filter = ReadDeviceFilter(call.request);
  if (!filter.ok()) return ErrorFrom(filter.status());
  std::string after;
  size_t rows = 0;
  while (true) {
    auto devices = call.context.fleet->ListDevicesWhere(*filter, after, kReadPage);
    if (!devices.ok()) return ErrorFrom(devices.status());
    for (const store::Device& d : *devices) {
      if (++rows > kMaxExportRows) return TooMany("devices");
      body += CsvRow({d.id, d.hostname, d.platform, d.source, d.group, d.agent_version, FormatTimestamp(d.enrolled_at),
                      d.last_seen > 0 ? FormatTimestamp(d.last_seen) : "", std::to_string(d.applied_version),
                      TimeCell(d.revoked_at), d.cannot_enforce});
    }
    if (devices->size() < kReadPage) break;
    after = devices->back().id;
  }
  return CsvResponse(std::move(body), "appban-devices.csv");
}

HttpResponse ExportAuditCsv(Call& call) {
  std::string body = CsvRow({"seq", "at", "actor", "action", "object", "identity", "hash"});
  int64_t after = 0;
  size_t rows = 0;
  while (true) {
    auto entries = call.context.store->ReadAuditAfter(after, kReadPage);
    if (!entries.ok()) return ErrorFrom(entries.status());
    for (const store::AuditEntry& e : *entries) {
      if (++rows > kMaxExportRows) return TooMany("audit");
      body +=
          CsvRow({std::to_string(e.seq), FormatTimestamp(e.at), e.actor, e.action, e.object, e.identity_json, e.hash});
    }
    if (entries->size() < kReadPage) break;
    after = entries->back().seq;
  }
  return CsvResponse(std::move(body), "appban-audit.csv");
}

HttpResponse ExportComplianceCsv(Call& call) {
  // The same numbers as GET /v1/admin/compliance, one row per published rule.
  HttpResponse view = FleetComplianceView(call);
  if (view.status != 200) return view;
  auto json = ParseJsonBounded(view.body, view.body.size() + 1, 16, "compliance");
  if (!json.ok()) return ErrorFrom(json.status());
  constexpr std::string_view kCounts[] = {"targeted", "compliant", "remediated", "violating",      "waived",
                                          "mismatch", "pending",   "stale",      "cannot_enforce", "not_applicable"};
  std::string body =
      CsvRow({"rule_id", "action", "first_published_at", "targeted", "compliant", "remediated", "violating", "waived",
              "mismatch", "pending", "stale", "cannot_enforce", "not_applicable"});
  const Json& rules = (*json)["rules"];
  for (const Json& rule : rules) {
    std::string row = CsvCell(StringOr(rule, "rule_id")) + "," + CsvCell(StringOr(rule, "action")) + "," +
                      CsvCell(StringOr(rule, "first_published_at"));
    for (std::string_view count : kCounts) row += "," + std::to_string(IntOr(rule, count));
    body += row + "\r\n";
  }
  return CsvResponse(std::move(body), "appban-compliance.csv");
}

}  // namespace appban::server::admin
