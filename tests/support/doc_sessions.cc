#include "support/doc_sessions.h"

#include <fstream>
#include <regex>
#include <sstream>

namespace appban::testing {
namespace {

std::string RightTrimmed(std::string text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\r')) text.pop_back();
  return text;
}

// A printed line as a pattern: "…" is any text, hex runs of 12 or more digits (and of 6 or more
// before "…") and ISO times any such run.
std::regex LinePattern(const std::string& printed) {
  static const std::regex kSpecial(R"([.^$|()\[\]{}*+?\\])");
  std::string pattern;
  size_t start = 0;
  const std::string ellipsis = "…";
  while (true) {
    size_t at = printed.find(ellipsis, start);
    std::string piece = std::regex_replace(printed.substr(start, at - start), kSpecial, "\\$&");
    piece = std::regex_replace(piece, std::regex("[0-9a-f]{12,}"), "[0-9a-f]{12,}");
    // A hash's first digits before "…" ("key_id":"408a2411…) stand for any hash.
    if (at != std::string::npos) piece = std::regex_replace(piece, std::regex("[0-9a-f]{6,11}$"), "[0-9a-f]{6,}");
    piece = std::regex_replace(piece, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"),
                               R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)");
    pattern += piece;
    if (at == std::string::npos) break;
    pattern += ".*";
    start = at + ellipsis.size();
  }
  return std::regex(pattern);
}

}  // namespace

std::vector<Session> ReadSessions(const std::filesystem::path& markdown) {
  std::ifstream in(markdown);
  std::vector<Session> sessions;
  bool in_block = false;
  Session* current = nullptr;  // the session whose output the block's next lines are
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.starts_with("```")) {
      in_block = !in_block;
      current = nullptr;
      continue;
    }
    if (!in_block) continue;
    if (line.starts_with("$ ")) {
      sessions.push_back({number, line.substr(2), {}});
      current = &sessions.back();
    } else if (current != nullptr) {
      current->printed.push_back(RightTrimmed(line));
    }
  }
  return sessions;
}

std::vector<Session> SessionsUnder(const std::filesystem::path& markdown, const std::string& heading) {
  std::ifstream in(markdown);
  int start = 0, end = 0, number = 0;
  bool in_block = false;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.starts_with("```")) in_block = !in_block;
    if (in_block) continue;
    if (start == 0 && RightTrimmed(line) == heading) {
      start = number;
    } else if (start != 0 && end == 0 && line.starts_with("## ")) {
      end = number;
    }
  }
  std::vector<Session> under;
  if (start == 0) return under;
  for (Session& session : ReadSessions(markdown)) {
    if (session.line > start && (end == 0 || session.line < end)) under.push_back(std::move(session));
  }
  return under;
}

std::string CodeBlockUnder(const std::filesystem::path& markdown, const std::string& heading,
                           const std::string& language) {
  std::ifstream in(markdown);
  bool under = false, in_block = false;
  std::string script;
  for (std::string line; std::getline(in, line);) {
    if (!under) {
      under = RightTrimmed(line) == heading;
      continue;
    }
    if (!in_block && RightTrimmed(line) == "```" + language) {
      in_block = true;
    } else if (in_block && line.starts_with("```")) {
      return script;
    } else if (in_block) {
      script += line + "\n";
    }
  }
  return "";
}

std::string Mismatch(const std::vector<std::string>& printed, const std::string& output) {
  std::vector<std::string> actual;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) actual.push_back(RightTrimmed(line));
  size_t next = 0;
  for (const std::string& expected : printed) {
    std::string trimmed = expected.substr(
        expected.find_first_not_of(' ') == std::string::npos ? expected.size() : expected.find_first_not_of(' '));
    if (trimmed == "..." || expected.empty()) continue;
    std::regex pattern = LinePattern(expected);
    while (next < actual.size() && !std::regex_match(actual[next], pattern)) ++next;
    if (next == actual.size()) return "the printed line\n  " + expected + "\nis not in the output (in order)";
    ++next;
  }
  return "";
}

}  // namespace appban::testing
