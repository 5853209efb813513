// Shell sessions in the documentation ("$ command" in a fenced block, then what it prints) and the
// check that a command printed what the documentation shows: the printed lines must appear in the
// output line by line and in order. A line "..." stands for lines left out; "…" inside a line for
// text left out. Hashes and times that change from run to run match any such value: a hex run of
// 12 or more digits, one of 6 or more cut short by "…", an ISO 8601 time.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace appban::testing {

struct Session {
  int line = 0;         // in the Markdown file, 1-based
  std::string command;  // after "$ "
  std::vector<std::string> printed;
};

// Every "$ command" in a fenced block of `markdown`, with the lines printed under it.
std::vector<Session> ReadSessions(const std::filesystem::path& markdown);

// The sessions under the heading line `heading` (exactly as written, e.g. "## Worked example"),
// up to the next heading of level 2 ("## …").
std::vector<Session> SessionsUnder(const std::filesystem::path& markdown, const std::string& heading);

// The text of the first ````language` block (e.g. "sh", "yaml") under the heading line `heading`
// ("" when there is none): a script or file the documentation tells the reader to use.
std::string CodeBlockUnder(const std::filesystem::path& markdown, const std::string& heading,
                           const std::string& language);

// Empty when every printed line (but "...") matches a line of `output`, in order; else what is
// missing.
std::string Mismatch(const std::vector<std::string>& printed, const std::string& output);

}  // namespace appban::testing
