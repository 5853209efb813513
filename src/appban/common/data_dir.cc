#include "appban/common/data_dir.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace appban {

Result<std::string> ResolveDataDir(const std::string& override_dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!override_dir.empty()) {
    if (fs::is_directory(override_dir, error)) return override_dir;
    return Status::NotFound("data directory " + override_dir + " does not exist");
  }
  if (const char* env = std::getenv("APPBAN_DATA_DIR"); env != nullptr && *env != '\0') {
    if (fs::is_directory(env, error)) return std::string(env);
    return Status::NotFound(std::string("APPBAN_DATA_DIR=") + env + " is not a directory");
  }
  fs::path exe = fs::read_symlink("/proc/self/exe", error);
  if (!error) {
    fs::path installed = exe.parent_path().parent_path() / "share" / "appban";
    if (fs::is_directory(installed, error)) return installed.string();
  }
#ifdef APPBAN_SOURCE_DATA_DIR
  if (fs::is_directory(APPBAN_SOURCE_DATA_DIR, error)) return std::string(APPBAN_SOURCE_DATA_DIR);
#endif
  return Status::NotFound("no appban data directory found; set APPBAN_DATA_DIR or pass --data-dir");
}

}  // namespace appban
