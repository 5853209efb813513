#include "appban/store/match_records.h"

#include <charconv>

namespace appban::store {
namespace {

void AppendField(std::string& out, std::string_view bytes) {
  out += std::to_string(bytes.size());
  out += ':';
  out += bytes;
}

// Reads the field at `*offset` and advances past it; `what` names the field in errors.
Result<std::string_view> ReadField(std::string_view text, size_t* offset, const char* what) {
  size_t start = *offset;
  size_t length = 0;
  // At most 7 digits: max_field_bytes is far below 10^7, so a longer prefix is corrupt.
  size_t colon = text.substr(start, 8).find(':');
  if (colon != std::string_view::npos) colon += start;
  if (colon == std::string_view::npos || colon == start) {
    return Status::Corruption("match records: " + std::string(what) + " at offset " + std::to_string(start) +
                              ": expected <length>:");
  }
  if (text[start] == '0' && colon - start > 1) {  // one spelling per length
    return Status::Corruption("match records: " + std::string(what) + " at offset " + std::to_string(start) +
                              ": length has a leading zero");
  }
  const char* digits_end = text.data() + colon;
  auto [end, error] = std::from_chars(text.data() + start, digits_end, length);
  if (error != std::errc() || end != digits_end) {
    return Status::Corruption("match records: " + std::string(what) + " at offset " + std::to_string(start) +
                              ": length is not a decimal number");
  }
  if (length > kMatchRecordLimits.max_field_bytes) {
    return Status::Corruption("match records: " + std::string(what) + " at offset " + std::to_string(start) +
                              ": length " + std::to_string(length) + " exceeds the limit of " +
                              std::to_string(kMatchRecordLimits.max_field_bytes));
  }
  size_t body = colon + 1;
  if (length > text.size() - body) {
    return Status::Corruption("match records: " + std::string(what) + " at offset " + std::to_string(start) +
                              ": runs past the end of the text");
  }
  *offset = body + length;
  return text.substr(body, length);
}

}  // namespace

std::string EncodeMatchRecords(std::span<const policy::InstalledApp> apps) {
  std::string out;
  out.reserve(apps.size() * 40);
  for (const policy::InstalledApp& app : apps) {
    AppendField(out, policy::PlatformName(app.platform));
    AppendField(out, app.id);
    AppendField(out, app.signer_sha256);
    AppendField(out, app.team_id);
  }
  return out;
}

Status ForEachMatchRecord(std::string_view text, const std::function<void(const MatchRecord&)>& visit) {
  if (text.size() > kMatchRecordLimits.max_text_bytes) {
    return Status::Corruption("match records: " + std::to_string(text.size()) + " bytes exceed the limit of " +
                              std::to_string(kMatchRecordLimits.max_text_bytes));
  }
  size_t offset = 0;
  size_t count = 0;
  while (offset < text.size()) {
    if (++count > kMatchRecordLimits.max_records) {
      return Status::Corruption("match records: more than " + std::to_string(kMatchRecordLimits.max_records) +
                                " records");
    }
    size_t record_start = offset;
    APPBAN_ASSIGN_OR_RETURN(std::string_view platform_name, ReadField(text, &offset, "platform"));
    auto platform = policy::ParsePlatform(platform_name);
    if (!platform.ok()) {
      return Status::Corruption("match records: record at offset " + std::to_string(record_start) +
                                ": unknown platform");
    }
    MatchRecord record;
    record.platform = *platform;
    APPBAN_ASSIGN_OR_RETURN(record.id, ReadField(text, &offset, "id"));
    APPBAN_ASSIGN_OR_RETURN(record.signer_sha256, ReadField(text, &offset, "signer_sha256"));
    APPBAN_ASSIGN_OR_RETURN(record.team_id, ReadField(text, &offset, "team_id"));
    if (record.id.empty()) {
      return Status::Corruption("match records: record at offset " + std::to_string(record_start) + ": empty id");
    }
    visit(record);
  }
  return Status::Ok();
}

}  // namespace appban::store
