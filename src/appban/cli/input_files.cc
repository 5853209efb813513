#include "appban/cli/input_files.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "appban/common/data_dir.h"
#include "appban/common/file.h"
#include "appban/ios/app.h"
#include "appban/ios/macho.h"

namespace appban::cli {

std::vector<std::string> ExpandInputs(const std::vector<std::string>& inputs, const std::string& suffix,
                                      std::vector<std::string>* failures) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  for (const std::string& input : inputs) {
    std::error_code error;
    if (!fs::is_directory(input, error)) {
      files.push_back(input);  // opening it reports a missing or unreadable file
      continue;
    }
    std::vector<std::string> found;
    auto options = fs::directory_options::skip_permission_denied;
    for (fs::recursive_directory_iterator it(input, options, error), end; !error && it != end; it.increment(error)) {
      if (it->is_regular_file(error) && it->path().string().ends_with(suffix)) found.push_back(it->path().string());
    }
    if (error) failures->push_back("appban: " + input + ": " + error.message());
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

std::vector<std::string> ExpandAppInputs(const std::vector<std::string>& inputs, std::vector<std::string>* failures) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  for (const std::string& input : inputs) {
    std::error_code error;
    if (!fs::is_directory(input, error) || ios::IsIosBundleDirectory(input)) {
      files.push_back(input);
      continue;
    }
    std::vector<std::string> found;
    auto options = fs::directory_options::skip_permission_denied;
    fs::recursive_directory_iterator it(input, options, error), end;
    for (; !error && it != end; it.increment(error)) {
      const std::string path = it->path().string();
      if (it->is_directory(error)) {
        if (ios::IsIosBundleDirectory(path)) {
          found.push_back(path);
          it.disable_recursion_pending();
        }
      } else if (it->is_regular_file(error) && (path.ends_with(".apk") || path.ends_with(".ipa"))) {
        found.push_back(path);
      }
    }
    if (error) failures->push_back("appban: " + input + ": " + error.message());
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

bool IsIosInput(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) return ios::IsIosBundleDirectory(path);
  auto mapped = MappedFile::Open(path);
  if (!mapped.ok()) return false;
  return ios::LooksLikeMachO(mapped->bytes()) || ios::LooksLikeIpa(mapped->bytes());
}

std::string FailureLine(const std::string& file, const Status& status) {
  // NotRecognized messages already say what the file is not ("not an APK: ...").
  std::string what = status.code() == StatusCode::kNotRecognized ? status.message() : status.ToString();
  return "appban: " + file + ": " + what;
}

Result<std::optional<ios::TrustAnchors>> LoadAppleRoots(const std::string& data_dir_flag) {
  auto data_dir = ResolveDataDir(data_dir_flag);
  if (!data_dir.ok()) {
    if (!data_dir_flag.empty()) return data_dir.status();
    return std::optional<ios::TrustAnchors>();
  }
  const std::string path = *data_dir + "/apple-roots.pem";
  std::error_code error;
  if (!std::filesystem::exists(path, error)) return std::optional<ios::TrustAnchors>();
  APPBAN_ASSIGN_OR_RETURN(ios::TrustAnchors anchors, ios::TrustAnchors::LoadPem(path));
  return std::optional<ios::TrustAnchors>(std::move(anchors));
}

}  // namespace appban::cli
