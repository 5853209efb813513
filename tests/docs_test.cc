// Keeps docs/anomalies.md true to the parsers: every anomaly code the APK readers can emit is
// documented, and every documented code still exists. The codes are taken from the source with a
// small C++ lexer (comments skipped, string literals read with their escapes), not std::regex,
// which trips -Werror in the sanitizer build.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace fs = std::filesystem;

// The parts an anomaly code may start with ("zip.crc_mismatch"); see apk/anomaly.h.
const std::set<std::string, std::less<>> kParts = {"zip", "axml", "arsc", "manifest", "nsc", "dex", "signing"};

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool IsCodeWordChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

// "part.word" with a known part and a word of [a-z0-9_]+.
bool IsCodeWord(std::string_view word) {
  if (word.empty()) return false;
  for (char c : word) {
    if (!IsCodeWordChar(c)) return false;
  }
  return true;
}

bool IsAnomalyCode(std::string_view text) {
  size_t dot = text.find('.');
  return dot != std::string_view::npos && kParts.contains(text.substr(0, dot)) && IsCodeWord(text.substr(dot + 1));
}

struct Literal {
  size_t offset;      // of the opening quote in the source
  std::string value;  // contents with escapes left as written (codes never contain any)
};

// A source file split into its string literals and its code with comments and literals blanked
// out (same length, so offsets agree), which makes parenthesis matching safe.
struct LexedSource {
  std::string code;
  std::vector<Literal> literals;
};

LexedSource Lex(const std::string& source) {
  LexedSource out;
  out.code = source;
  size_t i = 0;
  const size_t n = source.size();
  auto blank = [&](size_t from, size_t to) {
    for (size_t k = from; k < to && k < n; ++k) {
      if (out.code[k] != '\n') out.code[k] = ' ';
    }
  };
  while (i < n) {
    if (source.compare(i, 2, "//") == 0) {
      size_t end = source.find('\n', i);
      if (end == std::string::npos) end = n;
      blank(i, end);
      i = end;
    } else if (source.compare(i, 2, "/*") == 0) {
      size_t end = source.find("*/", i + 2);
      end = end == std::string::npos ? n : end + 2;
      blank(i, end);
      i = end;
    } else if (source[i] == 'R' && i + 1 < n && source[i + 1] == '"' &&
               (i == 0 || !(std::isalnum(static_cast<unsigned char>(source[i - 1])) || source[i - 1] == '_'))) {
      // Raw string R"delim( ... )delim": no escapes.
      size_t open = source.find('(', i + 2);
      if (open == std::string::npos) break;
      std::string closing = ")" + source.substr(i + 2, open - i - 2) + "\"";
      size_t end = source.find(closing, open + 1);
      if (end == std::string::npos) end = n;
      out.literals.push_back({i + 1, source.substr(open + 1, end - open - 1)});
      size_t after = std::min(n, end + closing.size());
      blank(i, after);
      i = after;
    } else if (source[i] == '"' || source[i] == '\'') {
      const char quote = source[i];
      size_t j = i + 1;
      while (j < n && source[j] != quote && source[j] != '\n') j += source[j] == '\\' ? 2 : 1;
      j = std::min(j, n);
      if (quote == '"') out.literals.push_back({i, source.substr(i + 1, j - i - 1)});
      blank(i, j + 1);
      i = j + 1;
    } else {
      ++i;
    }
  }
  return out;
}

// `AddAnomaly(out, prefix + "word", ...)`: the literal is a code argument built from a part prefix
// (res_string_pool.cc); `"... '" + prefix + "' ..."` in a message is not.
bool IsPrefixedCodeWord(const LexedSource& lexed, const Literal& literal) {
  size_t end = literal.offset;
  while (end > 0 && std::isspace(static_cast<unsigned char>(lexed.code[end - 1]))) --end;
  std::string_view before(lexed.code.data(), end);
  if (!before.ends_with("prefix +")) return false;
  before.remove_suffix(std::string_view("prefix +").size());
  while (!before.empty() && std::isspace(static_cast<unsigned char>(before.back()))) before.remove_suffix(1);
  return before.ends_with(",") && IsCodeWord(literal.value);
}

// Offset of the parenthesis closing the one at `open` in blanked code, or npos.
size_t MatchingParen(const std::string& code, size_t open) {
  int depth = 0;
  for (size_t i = open; i < code.size(); ++i) {
    if (code[i] == '(') ++depth;
    if (code[i] == ')' && --depth == 0) return i;
  }
  return std::string::npos;
}

// Every anomaly code the APK readers (src/appban/apk/*.cc, tests excluded) can emit:
//  - literals shaped "part.word";
//  - string-pool codes built as `prefix + "word"` (res_string_pool.cc), expanded with each part
//    passed as a literal to StringPool::Parse(...).
std::set<std::string> CodesInSource(std::vector<std::string>* scanned) {
  const fs::path dir = fs::path(APPBAN_SOURCE_DIR) / "src" / "appban" / "apk";
  std::set<std::string> codes;
  std::set<std::string> prefixed_words;
  std::set<std::string> string_pool_parts;
  for (const auto& item : fs::directory_iterator(dir)) {
    const std::string file = item.path().filename().string();
    if (item.path().extension() != ".cc" || file.ends_with("_test.cc")) continue;
    scanned->push_back(file);
    const LexedSource lexed = Lex(ReadText(item.path()));
    for (const Literal& literal : lexed.literals) {
      if (IsAnomalyCode(literal.value)) codes.insert(literal.value);
      if (IsPrefixedCodeWord(lexed, literal)) prefixed_words.insert(literal.value);
    }
    constexpr std::string_view kCall = "StringPool::Parse(";
    for (size_t at = lexed.code.find(kCall); at != std::string::npos; at = lexed.code.find(kCall, at + 1)) {
      const size_t open = at + kCall.size() - 1;
      const size_t close = MatchingParen(lexed.code, open);
      for (const Literal& literal : lexed.literals) {
        if (literal.offset > open && literal.offset < close && kParts.contains(literal.value)) {
          string_pool_parts.insert(literal.value);
        }
      }
    }
  }
  for (const std::string& part : string_pool_parts) {
    for (const std::string& word : prefixed_words) codes.insert(part + "." + word);
  }
  return codes;
}

// Codes named in the first cell of the doc's table rows: "| `zip.crc_mismatch` | ...".
std::set<std::string> CodesInDoc(const std::string& doc) {
  std::set<std::string> codes;
  std::istringstream lines(doc);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.starts_with("|")) continue;
    const size_t cell_end = line.find('|', 1);
    const std::string cell = line.substr(1, cell_end == std::string::npos ? std::string::npos : cell_end - 1);
    for (size_t open = cell.find('`'); open != std::string::npos; open = cell.find('`', open + 1)) {
      const size_t close = cell.find('`', open + 1);
      if (close == std::string::npos) break;
      const std::string token = cell.substr(open + 1, close - open - 1);
      if (IsAnomalyCode(token)) codes.insert(token);
      open = close;
    }
  }
  return codes;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

TEST(DocsAnomalies, LexerFindsCodesOnlyInCodeLiterals) {
  const std::string source =
      "// \"zip.in_comment\"\n"
      "/* \"dex.in_block_comment\" */\n"
      "Note(\"zip.real_one\", \"where \\\"quoted\\\"\", 'x');\n"
      "AddAnomaly(out, prefix + \"string_count\", w, \"detail\");\n"
      "text = \"prefix '\" + prefix + \"' is odd\";\n";
  const LexedSource lexed = Lex(source);
  std::set<std::string> codes;
  std::set<std::string> prefixed;
  for (const Literal& literal : lexed.literals) {
    if (IsAnomalyCode(literal.value)) codes.insert(literal.value);
    if (IsPrefixedCodeWord(lexed, literal)) prefixed.insert(literal.value);
  }
  EXPECT_EQ(codes, (std::set<std::string>{"zip.real_one"}));
  EXPECT_EQ(prefixed, (std::set<std::string>{"string_count"}));
  EXPECT_EQ(lexed.code.size(), source.size());
}

TEST(DocsAnomalies, EveryCodeInTheSourceIsDocumentedAndViceVersa) {
  std::vector<std::string> scanned;
  const std::set<std::string> in_source = CodesInSource(&scanned);
  const fs::path doc_path = fs::path(APPBAN_SOURCE_DIR) / "docs" / "anomalies.md";
  ASSERT_TRUE(fs::exists(doc_path)) << doc_path;
  const std::set<std::string> in_doc = CodesInDoc(ReadText(doc_path));

  // Sanity: the scan saw the parsers and found codes of several parts, including the
  // prefix-built string-pool ones, so an empty or broken scan cannot pass silently.
  ASSERT_GE(scanned.size(), 6u) << Join(scanned);
  EXPECT_TRUE(in_source.contains("zip.encryption_flag_ignored"));
  EXPECT_TRUE(in_source.contains("arsc.string_pool_truncated"));
  EXPECT_TRUE(in_source.contains("axml.string_pool_truncated"));

  std::vector<std::string> undocumented;
  for (const std::string& code : in_source) {
    if (!in_doc.contains(code)) undocumented.push_back(code);
  }
  std::vector<std::string> stale;
  for (const std::string& code : in_doc) {
    if (!in_source.contains(code)) stale.push_back(code);
  }
  EXPECT_TRUE(undocumented.empty()) << "anomaly codes emitted in src/appban/apk but missing from docs/anomalies.md: "
                                    << Join(undocumented);
  EXPECT_TRUE(stale.empty()) << "codes documented in docs/anomalies.md that no parser emits any more: " << Join(stale);
}

}  // namespace
