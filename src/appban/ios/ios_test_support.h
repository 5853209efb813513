// Helpers shared by the ios part's tests: where the fixtures built by tests/fixtures/ios/build.sh
// are, and a small Mach-O writer whose every field can be falsified.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace appban::ios::testing {

inline std::string FixturePath(const std::string& name) {
  const char* dir = std::getenv("APPBAN_FIXTURES");
  return std::string(dir ? dir : APPBAN_BINARY_DIR "/fixtures") + "/ios/" + name;
}

// What a shell command prints (stdout and stderr), for cross-checks with Debian's tools.
inline std::string Output(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen((command + " 2>&1").c_str(), "r"), pclose);
  std::string out;
  char buffer[65536];
  size_t n;
  while (pipe && (n = fread(buffer, 1, sizeof buffer, pipe.get())) > 0) out.append(buffer, n);
  return out;
}
// A shell command's exit status as std::system gives it, its output discarded.
inline int ExitCode(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()); }

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void PutLE(std::string* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}
inline void PutBE(std::string* out, uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

// A thin 64-bit arm64 Mach-O with the given load commands (each a complete command).
inline std::string ThinMachO(const std::vector<std::string>& commands, uint32_t filetype = 2,
                             std::optional<uint32_t> ncmds = std::nullopt,
                             std::optional<uint32_t> sizeofcmds = std::nullopt) {
  std::string body;
  for (const auto& c : commands) body += c;
  std::string out;
  PutLE(&out, 0xfeedfacf, 4);
  PutLE(&out, 0x0100000c, 4);  // CPU_TYPE_ARM64
  PutLE(&out, 0, 4);
  PutLE(&out, filetype, 4);
  PutLE(&out, ncmds.value_or(static_cast<uint32_t>(commands.size())), 4);
  PutLE(&out, sizeofcmds.value_or(static_cast<uint32_t>(body.size())), 4);
  PutLE(&out, 0x200085, 4);  // NOUNDEFS|DYLDLINK|TWOLEVEL|PIE
  PutLE(&out, 0, 4);
  return out + body;
}

inline std::string Command(uint32_t cmd, const std::string& payload) {
  std::string out;
  size_t size = (8 + payload.size() + 7) / 8 * 8;
  PutLE(&out, cmd, 4);
  PutLE(&out, size, 4);
  out += payload;
  out.resize(size, '\0');
  return out;
}

inline std::string DylibCommand(uint32_t cmd, const std::string& path) {
  std::string payload;
  PutLE(&payload, 24, 4);  // name offset
  PutLE(&payload, 0, 4);
  PutLE(&payload, 0x10000, 4);
  PutLE(&payload, 0x10000, 4);
  payload += path;
  payload.push_back('\0');
  return Command(cmd, payload);
}

}  // namespace appban::ios::testing
