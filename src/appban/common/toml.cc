#include "appban/common/toml.h"

#include <sstream>

#include "appban/common/file.h"

namespace appban {
namespace {

// Refuses a stretch of key text with more than `max_dots` dots (TomlLimits::max_key_dots says why).
// Strings and comments are skipped, so dots inside them never count; a number or date-time holds
// one dot. Found by fuzz/risk_model_fuzz.cc-style probing of the risk model.
Status CheckKeyDots(std::string_view text, const std::string& source, size_t max_dots) {
  size_t dots = 0;
  size_t line = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '#') {  // comment: skip to the end of the line, which is handled as a separator below
      size_t end = text.find('\n', i);
      if (end == std::string_view::npos) break;
      i = end - 1;
    } else if (c == '"' || c == '\'') {
      const bool triple = text.substr(i, 3) == std::string_view(std::string(3, c));
      const bool escapes = c == '"';  // basic strings have escapes, literal strings do not
      size_t j = i + (triple ? 3 : 1);
      bool closed = false;
      while (j < text.size()) {
        if (escapes && text[j] == '\\') {
          j += 2;
          continue;
        }
        if (text[j] == '\n') {
          if (!triple) break;  // a one-line string ends here (toml++ reports it); so does our scan
          ++line;
        }
        if (text[j] == c && (!triple || text.substr(j, 3) == std::string_view(std::string(3, c)))) {
          j += triple ? 3 : 1;
          // A multi-line string may end with one or two quotes of its own before the delimiter.
          for (int extra = 0; triple && extra < 2 && j < text.size() && text[j] == c; ++extra) ++j;
          closed = true;
          break;
        }
        ++j;
      }
      if (!closed && (j >= text.size())) break;  // unterminated: toml++ refuses it
      i = j - 1;
    } else if (c == '.') {
      if (++dots > max_dots) {
        return Status::InvalidArgument(source + ":" + std::to_string(line) + ": key has more than " +
                                       std::to_string(max_dots + 1) + " dotted parts");
      }
    } else if (c == '=' || c == ',' || c == '{' || c == '}' || c == '[' || c == ']' || c == '\n') {
      dots = 0;
      if (c == '\n') ++line;
    }
  }
  return Status::Ok();
}

}  // namespace

Result<toml::table> ParseToml(std::string_view text, const std::string& source, const TomlLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return Status::LimitExceeded(source + ": larger than " + std::to_string(limits.max_bytes) + " bytes");
  }
  if (limits.max_key_dots > 0) APPBAN_RETURN_IF_ERROR(CheckKeyDots(text, source, limits.max_key_dots));
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& error) {
    std::ostringstream message;
    message << source << ":" << error.source().begin.line << ": " << error.description();
    return Status::InvalidArgument(message.str());
  }
}

Result<toml::table> ReadTomlFile(const std::string& path, const TomlLimits& limits) {
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, limits.max_bytes));
  return ParseToml(text, path, limits);
}

TomlField::TomlField(const std::string& source, std::string path, const toml::key& key, const toml::node& node)
    : path_(std::move(path)),
      location_(source + ":" + std::to_string(key.source().begin.line)),
      where_(location_ + ": " + path_),
      node_(&node) {}

Status TomlField::Error(std::string_view problem, StatusCode code) const {
  return Status(code, where_ + ": " + std::string(problem));
}

Result<std::string> TomlField::String() const {
  const auto* value = node_->as_string();
  if (value == nullptr) return Error("must be a string");
  return value->get();
}

Result<bool> TomlField::Bool() const {
  const auto* value = node_->as_boolean();
  if (value == nullptr) return Error("must be true or false");
  return value->get();
}

Result<int64_t> TomlField::Integer(int64_t min, int64_t max) const {
  const auto* value = node_->as_integer();
  if (value == nullptr) return Error("must be an integer");
  const int64_t number = value->get();
  if (number < min || number > max) {
    return Error(std::to_string(number) + " is outside " + std::to_string(min) + ".." + std::to_string(max));
  }
  return number;
}

Result<std::vector<std::string>> TomlField::Strings() const {
  const auto* array = node_->as_array();
  if (array == nullptr) return Error("must be an array of strings");
  std::vector<std::string> out;
  out.reserve(array->size());
  for (const auto& element : *array) {
    const auto* text = element.as_string();
    if (text == nullptr) return Error("must be an array of strings");
    out.push_back(text->get());
  }
  return out;
}

Result<const toml::table*> TomlField::Table() const {
  const auto* table = node_->as_table();
  if (table == nullptr) return Error("must be a table ([" + path_ + "])");
  return table;
}

std::vector<TomlField> TomlFields(const toml::table& table, const std::string& source, std::string_view prefix) {
  std::vector<TomlField> fields;
  fields.reserve(table.size());
  for (const auto& [key, node] : table) {
    std::string path = prefix.empty() ? std::string(key.str()) : std::string(prefix) + "." + std::string(key.str());
    fields.emplace_back(source, std::move(path), key, node);
  }
  return fields;
}

}  // namespace appban
