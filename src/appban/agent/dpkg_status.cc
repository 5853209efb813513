#include "appban/agent/dpkg_status.h"

#include <array>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "appban/common/file.h"
#include "appban/common/text.h"

namespace appban::agent {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view TrimBlanks(std::string_view text) {
  while (!text.empty() && IsBlank(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsBlank(text.back())) text.remove_suffix(1);
  return text;
}

// Untrusted text shown in messages: bounded and terminal-safe.
std::string Quote(std::string_view text) {
  constexpr size_t kMaxShown = 80;
  std::string shown = TerminalSafe(text.substr(0, kMaxShown));
  if (text.size() > kMaxShown) shown += "...";
  return "'" + shown + "'";
}

// The fields the agent keeps; every other field is skipped without copying its value.
enum class Field {
  kOther,
  kPackage,
  kStatus,
  kVersion,
  kArchitecture,
  kEssential,
  kPriority,
  kSource,
  kMaintainer,
  kOrigin,
  kPreDepends,
  kDepends,
};
constexpr size_t kFieldCount = 12;

Field ClassifyField(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, Field>, kFieldCount - 1> kKnown{{
      {"Package", Field::kPackage},
      {"Status", Field::kStatus},
      {"Version", Field::kVersion},
      {"Architecture", Field::kArchitecture},
      {"Essential", Field::kEssential},
      {"Priority", Field::kPriority},
      {"Source", Field::kSource},
      {"Maintainer", Field::kMaintainer},
      {"Origin", Field::kOrigin},
      {"Pre-Depends", Field::kPreDepends},
      {"Depends", Field::kDepends},
  }};
  for (const auto& [known, field] : kKnown) {
    if (EqualsIgnoreCase(name, known)) return field;
  }
  return Field::kOther;
}

template <typename Enum, size_t N>
std::optional<Enum> LookupWord(std::string_view word, const std::array<std::pair<std::string_view, Enum>, N>& table) {
  for (const auto& [name, value] : table) {
    if (word == name) return value;
  }
  return std::nullopt;
}

constexpr std::array<std::pair<std::string_view, DpkgWant>, 5> kWants{{
    {"unknown", DpkgWant::kUnknown},
    {"install", DpkgWant::kInstall},
    {"hold", DpkgWant::kHold},
    {"deinstall", DpkgWant::kDeinstall},
    {"purge", DpkgWant::kPurge},
}};
constexpr std::array<std::pair<std::string_view, DpkgFlag>, 2> kFlags{{
    {"ok", DpkgFlag::kOk},
    {"reinstreq", DpkgFlag::kReinstReq},
}};
constexpr std::array<std::pair<std::string_view, DpkgState>, 8> kStates{{
    {"not-installed", DpkgState::kNotInstalled},
    {"config-files", DpkgState::kConfigFiles},
    {"half-installed", DpkgState::kHalfInstalled},
    {"unpacked", DpkgState::kUnpacked},
    {"half-configured", DpkgState::kHalfConfigured},
    {"triggers-awaited", DpkgState::kTriggersAwaited},
    {"triggers-pending", DpkgState::kTriggersPending},
    {"installed", DpkgState::kInstalled},
}};

// Parses "want flag status"; an error message when it is not exactly three known words.
std::optional<std::string> ParseStatusWords(std::string_view value, DpkgPackage& package) {
  std::array<std::string_view, 3> words;
  size_t count = 0;
  while (true) {
    while (!value.empty() && (IsBlank(value.front()) || value.front() == '\n')) value.remove_prefix(1);
    if (value.empty()) break;
    size_t end = 0;
    while (end < value.size() && !IsBlank(value[end]) && value[end] != '\n') ++end;
    if (count == words.size()) return "Status has more than three words";
    words[count++] = value.substr(0, end);
    value.remove_prefix(end);
  }
  if (count != 3) return "Status must be three words (want flag status), got " + std::to_string(count);
  auto want = LookupWord(words[0], kWants);
  if (!want) return "unknown Status want word " + Quote(words[0]);
  auto flag = LookupWord(words[1], kFlags);
  if (!flag) return "unknown Status flag word " + Quote(words[1]);
  auto state = LookupWord(words[2], kStates);
  if (!state) return "unknown Status state word " + Quote(words[2]);
  package.want = *want;
  package.flag = *flag;
  package.state = *state;
  return std::nullopt;
}

// One stanza being read: the raw values of the kept fields (views into the input, except when a
// continuation line made a value span several lines).
struct Stanza {
  size_t first_line = 0;
  size_t field_count = 0;
  std::array<std::string, kFieldCount> values;  // indexed by Field
  std::array<bool, kFieldCount> present{};
  Field current = Field::kOther;
  size_t current_bytes = 0;

  void Reset() { *this = Stanza{}; }
  bool empty() const { return field_count == 0; }
};

// "libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, foo:any" -> libc6, debconf, debconf-2.0, foo
void AppendDependencyNames(std::string_view value, std::vector<std::string>& names) {
  while (!value.empty()) {
    size_t end = value.find_first_of(",|");
    std::string_view item = value.substr(0, end);
    value = end == std::string_view::npos ? std::string_view() : value.substr(end + 1);
    while (!item.empty() && (IsBlank(item.front()) || item.front() == '\n')) item.remove_prefix(1);
    std::string_view name = item.substr(0, item.find_first_of(" \t\n(:["));
    if (!name.empty()) names.emplace_back(name);
  }
}

class Parser {
 public:
  Parser(std::string_view text, const DpkgStatusLimits& limits) : text_(text), limits_(limits) {}

  Result<DpkgStatus> Run() {
    if (text_.size() > limits_.max_file_bytes) {
      return Status::LimitExceeded("dpkg status is " + std::to_string(text_.size()) + " bytes, limit " +
                                   std::to_string(limits_.max_file_bytes));
    }
    // An empty file (a fresh root) may come as a null view: memchr must not see a null pointer.
    if (text_.empty()) return std::move(result_);
    if (const void* nul = std::memchr(text_.data(), '\0', text_.size()); nul != nullptr) {
      size_t offset = static_cast<size_t>(static_cast<const char*>(nul) - text_.data());
      return Status::Corruption("dpkg status: NUL byte on line " + std::to_string(LineOfOffset(offset)));
    }
    size_t line_number = 0;
    size_t position = 0;
    while (position < text_.size()) {
      ++line_number;
      const char* newline =
          static_cast<const char*>(std::memchr(text_.data() + position, '\n', text_.size() - position));
      size_t end = newline ? static_cast<size_t>(newline - text_.data()) : text_.size();
      std::string_view line = text_.substr(position, end - position);
      position = newline ? end + 1 : end;
      APPBAN_RETURN_IF_ERROR(Line(line, line_number));
    }
    APPBAN_RETURN_IF_ERROR(FinishStanza());
    return std::move(result_);
  }

 private:
  size_t LineOfOffset(size_t offset) const {
    size_t line = 1;
    for (size_t i = 0; i < offset; ++i) line += text_[i] == '\n';
    return line;
  }

  Status Error(size_t line, std::string message) const {
    return Status::Corruption("dpkg status line " + std::to_string(line) + ": " + message);
  }

  Status Line(std::string_view line, size_t number) {
    if (TrimBlanks(line).empty()) return FinishStanza();  // blank or whitespace-only: separator
    if (IsBlank(line.front())) {
      if (stanza_.empty()) return Error(number, "continuation line with no field before it");
      return AddToValue(stanza_.current, "\n", TrimBlanks(line), number);
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Error(number, "expected 'Field: value', got " + Quote(line));
    std::string_view name = line.substr(0, colon);
    if (name.empty() || name.find_first_of(" \t") != std::string_view::npos) {
      return Error(number, "bad field name " + Quote(name));
    }
    if (stanza_.empty()) stanza_.first_line = number;
    if (++stanza_.field_count > limits_.max_fields_per_stanza) {
      return Status::LimitExceeded("dpkg status line " + std::to_string(number) + ": stanza has more than " +
                                   std::to_string(limits_.max_fields_per_stanza) + " fields");
    }
    Field field = ClassifyField(name);
    stanza_.current = field;
    stanza_.current_bytes = 0;
    if (field != Field::kOther && stanza_.present[static_cast<size_t>(field)]) {
      Warn(number, "field " + Quote(name) + " repeated in one stanza; the last one is used");
      stanza_.values[static_cast<size_t>(field)].clear();
    }
    if (field != Field::kOther) stanza_.present[static_cast<size_t>(field)] = true;
    return AddToValue(field, "", TrimBlanks(line.substr(colon + 1)), number);
  }

  Status AddToValue(Field field, std::string_view separator, std::string_view part, size_t number) {
    stanza_.current_bytes += separator.size() + part.size();
    if (stanza_.current_bytes > limits_.max_field_bytes) {
      return Status::LimitExceeded("dpkg status line " + std::to_string(number) + ": field value longer than " +
                                   std::to_string(limits_.max_field_bytes) + " bytes");
    }
    if (field == Field::kOther) return Status::Ok();
    std::string& value = stanza_.values[static_cast<size_t>(field)];
    if (!value.empty() || !separator.empty()) value.append(separator);
    value.append(part);
    return Status::Ok();
  }

  void Warn(size_t line, std::string message) { result_.warnings.push_back({line, std::move(message)}); }

  Status FinishStanza() {
    if (stanza_.empty()) return Status::Ok();
    Stanza stanza = std::move(stanza_);
    stanza_.Reset();
    auto value = [&](Field field) -> std::string& { return stanza.values[static_cast<size_t>(field)]; };
    auto has = [&](Field field) { return stanza.present[static_cast<size_t>(field)]; };

    DpkgPackage package;
    package.line = stanza.first_line;
    package.name = std::move(value(Field::kPackage));
    if (package.name.empty()) {
      Warn(stanza.first_line, "stanza without a Package field skipped");
      return Status::Ok();
    }
    if (package.name.find_first_of(" \t\n") != std::string::npos) {
      Warn(stanza.first_line, "package name " + Quote(package.name) + " contains white space; stanza skipped");
      return Status::Ok();
    }
    if (!has(Field::kStatus)) {
      Warn(stanza.first_line, "package " + Quote(package.name) + " has no Status field; skipped");
      return Status::Ok();
    }
    if (auto problem = ParseStatusWords(value(Field::kStatus), package)) {
      Warn(stanza.first_line, "package " + Quote(package.name) + ": " + *problem + "; skipped");
      return Status::Ok();
    }
    package.version = std::move(value(Field::kVersion));
    package.architecture = std::move(value(Field::kArchitecture));
    package.priority = AsciiLower(value(Field::kPriority));
    package.source = std::move(value(Field::kSource));
    package.maintainer = std::move(value(Field::kMaintainer));
    package.origin = std::move(value(Field::kOrigin));
    const std::string& essential = value(Field::kEssential);
    if (EqualsIgnoreCase(essential, "yes")) {
      package.essential = true;
    } else if (has(Field::kEssential) && !EqualsIgnoreCase(essential, "no")) {
      // dpkg only knows yes/no; treat anything else as essential so we err on the side of not removing.
      Warn(stanza.first_line,
           "package " + Quote(package.name) + ": Essential is " + Quote(essential) + ", treated as yes");
      package.essential = true;
    }
    for (Field field : {Field::kPreDepends, Field::kDepends}) AppendDependencyNames(value(field), package.depends);
    std::string key = package.name + ":" + package.architecture;
    if (!seen_.insert(key).second) {
      Warn(stanza.first_line, "package " + Quote(key) + " listed twice; the first entry is kept");
      return Status::Ok();
    }
    if (result_.packages.size() >= limits_.max_packages) {
      return Status::LimitExceeded("dpkg status lists more than " + std::to_string(limits_.max_packages) + " packages");
    }
    result_.packages.push_back(std::move(package));
    return Status::Ok();
  }

  std::string_view text_;
  const DpkgStatusLimits& limits_;
  DpkgStatus result_;
  Stanza stanza_;
  std::unordered_set<std::string> seen_;
};

}  // namespace

std::string_view DpkgStateName(DpkgState state) {
  for (const auto& [name, value] : kStates) {
    if (value == state) return name;
  }
  return "unknown";
}

std::map<std::string, std::string> ProtectedPackages(const DpkgStatus& status) {
  std::unordered_map<std::string_view, const DpkgPackage*> present;
  for (const auto& package : status.packages) {
    if (package.FilesPresent()) present.emplace(package.name, &package);
  }
  std::map<std::string, std::string> reasons;
  // For every protected package, the Essential/required package it is protected for:
  // "apt, which is Priority: required".
  std::unordered_map<std::string, std::string> root_of;
  std::vector<const DpkgPackage*> queue;
  for (const auto& package : status.packages) {
    if (!package.FilesPresent() || !package.Protected() || reasons.contains(package.name)) continue;
    std::string why = package.essential ? "Essential: yes" : "Priority: required";
    root_of[package.name] = package.name + ", which is " + why;
    reasons.emplace(package.name, std::move(why));
    queue.push_back(&package);
  }
  // Breadth first, so each package is explained by its shortest chain.
  for (size_t next = 0; next < queue.size(); ++next) {
    const DpkgPackage& needer = *queue[next];
    const std::string root = root_of.at(needer.name);
    for (const auto& name : needer.depends) {
      auto it = present.find(name);
      if (it == present.end() || reasons.contains(name)) continue;
      bool direct = !reasons.at(needer.name).starts_with("needed by");
      reasons.emplace(name, direct ? "needed by " + root : "needed by " + needer.name + ", itself needed by " + root);
      root_of[name] = root;
      queue.push_back(it->second);
    }
  }
  return reasons;
}

Result<DpkgStatus> ParseDpkgStatus(std::string_view text, const DpkgStatusLimits& limits) {
  return Parser(text, limits).Run();
}

Result<DpkgStatus> ReadDpkgStatus(const std::string& admindir, const DpkgStatusLimits& limits) {
  std::string path = admindir + "/status";
  // Mapped, not copied: the parser keeps only the few fields it needs.
  auto file = MappedFile::Open(path);
  if (!file.ok()) return file.status().WithContext(path);
  if (file->bytes().size() > limits.max_file_bytes) {
    return Status::LimitExceeded(path + ": " + std::to_string(file->bytes().size()) + " bytes, limit " +
                                 std::to_string(limits.max_file_bytes));
  }
  auto parsed = ParseDpkgStatus(AsStringView(file->bytes()), limits);
  if (!parsed.ok()) return parsed.status().WithContext(path);
  return parsed;
}

}  // namespace appban::agent
