#include "appban/common/json.h"

namespace appban {
namespace {

Status RefuseFloats(const Json& value) {
  switch (value.type()) {
    case Json::value_t::number_float:
      return Status::InvalidArgument("canonical JSON holds integers only, found " + value.dump());
    case Json::value_t::object:
      for (const auto& [key, member] : value.items()) {
        Status status = RefuseFloats(member);
        if (!status.ok()) return status.WithContext(key);
      }
      return Status::Ok();
    case Json::value_t::array:
      for (const auto& element : value) APPBAN_RETURN_IF_ERROR(RefuseFloats(element));
      return Status::Ok();
    default:
      return Status::Ok();
  }
}

}  // namespace

Result<std::string> CanonicalJson(const Json& value) {
  APPBAN_RETURN_IF_ERROR(RefuseFloats(value));
  try {
    // nlohmann::json keeps object members in a std::map, so dump() already emits them sorted by
    // byte-wise key comparison; strict error handling refuses invalid UTF-8 instead of replacing it.
    return value.dump(-1, ' ', false, Json::error_handler_t::strict);
  } catch (const Json::exception& error) {
    return Status::InvalidArgument(std::string("cannot write canonical JSON: ") + error.what());
  }
}

Result<Json> ParseJsonBounded(std::string_view text, uint64_t max_bytes, int max_depth, std::string_view what) {
  if (text.size() > max_bytes) {
    return Status::LimitExceeded(std::string(what) + ": " + std::to_string(text.size()) +
                                 " bytes exceeds the limit of " + std::to_string(max_bytes));
  }
  // Depth pre-scan outside string literals, so nesting is bounded before recursion starts.
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        return Status::LimitExceeded(std::string(what) + ": JSON nests deeper than " + std::to_string(max_depth) +
                                     " levels");
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  try {
    return Json::parse(text);
  } catch (const Json::exception& error) {
    return Status::Corruption(std::string(what) + ": not valid JSON: " + error.what());
  }
}

std::string StringOr(const Json& json, std::string_view key, std::string_view fallback) {
  if (!json.is_object()) return std::string(fallback);
  auto it = json.find(key);
  return it != json.end() && it->is_string() ? it->get<std::string>() : std::string(fallback);
}

int64_t IntOr(const Json& json, std::string_view key, int64_t fallback) {
  if (!json.is_object()) return fallback;
  auto it = json.find(key);
  return it != json.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

}  // namespace appban
