#include "discovery_schema.h"

#include <cmath>
#include <limits>

#include "appban/common/file.h"

namespace appban::testing {
namespace {

constexpr uint64_t kMaxDiscoveryBytes = 8ull << 20;
constexpr int kMaxDepth = 64;

std::string At(const std::string& path) { return path.empty() ? "" : " at '" + path + "'"; }

std::string Child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string Describe(const Json& value) {
  std::string text = value.dump();
  return text.size() > 80 ? text.substr(0, 80) + "…" : text;
}

bool IsIntegerText(const std::string& text) {
  if (text.empty() || text.size() > 20) return false;
  size_t i = text[0] == '-' ? 1 : 0;
  if (i == text.size()) return false;
  for (; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
  }
  return true;
}

}  // namespace

Result<DiscoverySchemas> DiscoverySchemas::Load(const std::string& path) {
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kMaxDiscoveryBytes));
  APPBAN_ASSIGN_OR_RETURN(Json document, ParseJsonBounded(text, kMaxDiscoveryBytes, kMaxDepth, path));
  auto schemas = document.find("schemas");
  if (schemas == document.end() || !schemas->is_object()) return Status::Corruption(path + ": no schemas");
  DiscoverySchemas out;
  out.schemas_ = *schemas;
  return out;
}

std::optional<std::string> DiscoverySchemas::Validate(std::string_view schema_name, const Json& value) const {
  auto schema = schemas_.find(std::string(schema_name));
  if (schema == schemas_.end()) return "no schema " + std::string(schema_name);
  return ValidateNode(*schema, value, "", 0);
}

std::optional<std::string> DiscoverySchemas::ValidateNode(const Json& schema, const Json& value,
                                                          const std::string& path, int depth) const {
  if (depth > kMaxDepth) return "Invalid JSON payload received. Too deep" + At(path) + ".";
  if (auto ref = schema.find("$ref"); ref != schema.end()) {
    auto target = schemas_.find(ref->get<std::string>());
    if (target == schemas_.end()) return "schema refers to unknown " + ref->get<std::string>();
    return ValidateNode(*target, value, path, depth + 1);
  }
  const std::string type = schema.value("type", "");
  const std::string format = schema.value("format", "");
  auto wrong_type = [&](std::string_view expected) -> std::optional<std::string> {
    return "Invalid value" + At(path) + " (" + std::string(expected) + "), " + Describe(value);
  };
  if (type == "any") return std::nullopt;
  if (type == "boolean") {
    if (!value.is_boolean()) return wrong_type("TYPE_BOOL");
    return std::nullopt;
  }
  if (type == "integer") {
    // int32/uint32: a JSON integer, or (as the proto3 JSON mapping accepts) a decimal string.
    int64_t number = 0;
    if (value.is_number_integer()) {
      number = value.get<int64_t>();
    } else if (value.is_string() && IsIntegerText(value.get<std::string>())) {
      number = std::stoll(value.get<std::string>());
    } else {
      return wrong_type(format == "uint32" ? "TYPE_UINT32" : "TYPE_INT32");
    }
    if (number < std::numeric_limits<int32_t>::min() || number > std::numeric_limits<int32_t>::max()) {
      return wrong_type("TYPE_INT32");
    }
    return std::nullopt;
  }
  if (type == "number") {
    if (!value.is_number()) return wrong_type("TYPE_DOUBLE");
    return std::nullopt;
  }
  if (type == "string") {
    if (format == "int64" || format == "uint64") {
      // 64-bit integers travel as strings; proto3 JSON also accepts a number.
      if (value.is_number_integer() || (value.is_string() && IsIntegerText(value.get<std::string>()))) {
        return std::nullopt;
      }
      return wrong_type("TYPE_INT64");
    }
    if (!value.is_string()) return wrong_type("TYPE_STRING");
    if (auto values = schema.find("enum"); values != schema.end()) {
      for (const Json& allowed : *values) {
        if (allowed == value) return std::nullopt;
      }
      return "Invalid value" + At(path) + " (TYPE_ENUM), " + Describe(value);
    }
    return std::nullopt;
  }
  if (type == "array") {
    if (!value.is_array()) return wrong_type("TYPE_LIST");
    auto items = schema.find("items");
    if (items == schema.end()) return std::nullopt;
    for (size_t i = 0; i < value.size(); ++i) {
      if (auto error = ValidateNode(*items, value[i], path + "[" + std::to_string(i) + "]", depth + 1)) return error;
    }
    return std::nullopt;
  }
  if (type == "object") {
    if (!value.is_object()) return wrong_type("TYPE_MESSAGE");
    auto properties = schema.find("properties");
    auto additional = schema.find("additionalProperties");
    if (properties == schema.end() && additional == schema.end()) return std::nullopt;  // free-form (Struct)
    for (const auto& [key, child] : value.items()) {
      if (properties != schema.end()) {
        if (auto property = properties->find(key); property != properties->end()) {
          if (auto error = ValidateNode(*property, child, Child(path, key), depth + 1)) return error;
          continue;
        }
      }
      if (additional != schema.end()) {
        if (auto error = ValidateNode(*additional, child, Child(path, key), depth + 1)) return error;
        continue;
      }
      return "Invalid JSON payload received. Unknown name \"" + key + "\"" + At(path) + ": Cannot find field.";
    }
    return std::nullopt;
  }
  return "schema has unsupported type \"" + type + "\"" + At(path);
}

}  // namespace appban::testing
