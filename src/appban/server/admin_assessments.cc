// Admin API: assessments — upload an APK to be assessed, list them, read a stored report.
//
// An upload is checked on the io_context thread (media type, size) and then handed, body and all,
// to the worker's AssessmentPool: hashing, parsing, assessing and storing run on a pool thread,
// which builds the response; the pool sends it on the io_context thread. Only plain values cross
// over (the body, the actor, the time); the job touches no WorkerContext member.
#include "appban/server/admin_handlers.h"

#include <string>
#include <utility>

#include "appban/apk/apk.h"
#include "appban/assess/report.h"
#include "appban/common/crypto.h"
#include "appban/common/text.h"
#include "appban/policy/model.h"
#include "appban/server/assessment_pool.h"
#include "appban/server/config.h"

namespace appban::server::admin {
namespace {

// What the pool needs of an upload request.
struct Upload {
  std::string bytes;         // the APK, moved out of the request
  store::AuditRecord audit;  // the uploader and the time the request was received
};

// Runs on a pool thread: the answer to one upload.
HttpResponse AssessUpload(AssessmentPool& pool, const Upload& upload) {
  std::string sha256 = Sha256Hex(AsBytes(upload.bytes));
  auto existing = pool.WithFleet([&](store::FleetStore& fleet) { return fleet.GetAssessment(sha256); });
  if (existing.ok()) return JsonResponse(200, AssessmentSummaryJson(*existing));
  if (existing.status().code() != StatusCode::kNotFound) return ErrorFrom(existing.status());

  // Read in place: the upload is already in memory. The content hash names it in the report (the
  // uploader's file name is never sent).
  auto apk = apk::Apk::FromBytes(AsBytes(upload.bytes), sha256 + ".apk");
  if (!apk.ok())
    return ErrorResponse(422, "apk_invalid", "the upload is not a readable APK: " + apk.status().ToString());
  auto knowledge = pool.Knowledge();
  if (!knowledge.ok()) return ErrorResponse(500, "internal", knowledge.status().message());
  assess::Assessment assessment = assess::Assess(*apk, (*knowledge)->knowledge, (*knowledge)->model);
  auto report = assess::AssessmentJson(assessment);

  store::Assessment record;
  record.sha256 = sha256;
  record.package = assessment.package();
  record.version = assessment.version_name();
  record.score = assessment.risk.score;
  record.band = std::string(assess::VerdictName(assessment.risk.verdict));
  record.report_json = report.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  record.uploaded_by = upload.audit.actor;
  record.uploaded_at = upload.audit.at;
  record.file_size = static_cast<int64_t>(upload.bytes.size());
  auto stored = pool.WithFleet([&](store::FleetStore& fleet) { return fleet.PutAssessment(record, upload.audit); });
  if (!stored.ok()) return ErrorFrom(stored.status());
  Json summary = AssessmentSummaryJson(record);
  summary["level"] = assess::RiskLevelName(assessment.risk.level);
  return JsonResponse(*stored ? 201 : 200, summary);
}

}  // namespace

void UploadAssessment(Call& call, net::Responder respond) {
  std::string content_type = AsciiLower(call.request.Header("content-type"));
  if (size_t semicolon = content_type.find(';'); semicolon != std::string::npos) content_type.resize(semicolon);
  while (!content_type.empty() && content_type.back() == ' ') content_type.pop_back();
  if (content_type != "application/vnd.android.package-archive" && content_type != "application/octet-stream") {
    return respond(ErrorResponse(415, "unsupported_media_type",
                                 "Content-Type must be application/vnd.android.package-archive or "
                                 "application/octet-stream (the APK as the raw body), not " +
                                     Quoted(content_type)));
  }
  if (call.request.body.empty()) return respond(BadRequest("request body: empty; send the APK file as the body"));
  if (call.request.body.size() > call.config().limits.apk_max_bytes) {
    return respond(ErrorResponse(413, "body_too_large", "the APK exceeds limits.apk_max_bytes"));
  }
  AssessmentPool* pool = call.context.assessments;
  if (pool == nullptr) return respond(ErrorResponse(503, "unavailable", "this worker does not assess uploads"));

  Upload upload{std::move(call.request.body), call.Audit()};
  auto refused = pool->Submit([upload = std::move(upload)](AssessmentPool& on) { return AssessUpload(on, upload); },
                              std::move(respond));
  if (refused) {
    HttpResponse busy = ErrorResponse(503, "unavailable",
                                      "every assessment slot of this worker is taken; retry in " +
                                          std::to_string(AssessmentPool::kRetryAfterSeconds) + " s");
    busy.headers.emplace_back("Retry-After", std::to_string(AssessmentPool::kRetryAfterSeconds));
    (*refused)(std::move(busy));
  }
}

HttpResponse ListAssessments(Call& call) {
  auto page = ReadPageRequest(call.request, "assessments", CursorKey::kAssessment);
  if (!page.ok()) return ErrorFrom(page.status());
  std::optional<store::AssessmentKey> after;
  if (!page->after.empty()) {  // "<uploaded_at>:<sha256>", checked by ReadPageRequest
    size_t colon = page->after.find(':');
    after = store::AssessmentKey{std::stoll(page->after.substr(0, colon)), page->after.substr(colon + 1)};
  }
  auto list = call.context.fleet->ListAssessmentsAfter(after, page->limit + 1);
  if (!list.ok()) return ErrorFrom(list.status());
  Json next = FinishPage("assessments", *page, *list,
                         [](const store::Assessment& a) { return std::to_string(a.uploaded_at) + ":" + a.sha256; });
  Json items = Json::array();
  for (const auto& a : *list) items.push_back(AssessmentSummaryJson(a));
  return JsonResponse(200, Json{{"assessments", items}, {"next_cursor", next}});
}

HttpResponse GetAssessment(Call& call) {
  auto sha = NormalizeHex(call.params[0], 64, "assessment SHA-256");
  if (!sha.ok()) return BadRequest("path: " + sha.status().message());
  auto assessment = call.context.fleet->GetAssessment(*sha);
  if (!assessment.ok()) return ErrorFrom(assessment.status());
  HttpResponse response;
  response.body = assessment->report_json;  // stored as produced: appban.assess/1
  return response;
}

}  // namespace appban::server::admin
