// Turning command-line inputs into a list of files: directories are searched recursively for a
// suffix, in a stable (sorted) order; unreadable inputs become failure lines.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "appban/common/status.h"
#include "appban/ios/trust_anchors.h"

namespace appban::cli {

std::vector<std::string> ExpandInputs(const std::vector<std::string>& inputs, const std::string& suffix,
                                      std::vector<std::string>* failures);

// The inputs of inspect/assess: files are kept as given (their content decides APK, IPA or
// Mach-O); a directory that is itself an iOS bundle (.app, .framework, .xcframework, by content)
// is kept as one input; other directories are searched recursively, in sorted order, for *.apk
// and *.ipa files and for iOS bundle directories (not descended into).
std::vector<std::string> ExpandAppInputs(const std::vector<std::string>& inputs, std::vector<std::string>* failures);

// True when `path` is an iOS input: a bundle directory, an IPA or a Mach-O file (by content).
bool IsIosInput(const std::string& path);

// Apple's root certificates from `data_dir`/apple-roots.pem: nullopt when the data directory
// cannot be found or has no such file (chains are then reported as not verified, with that
// reason); an error when the file is there but is not a list of Apple's published roots.
Result<std::optional<ios::TrustAnchors>> LoadAppleRoots(const std::string& data_dir_flag);

// "appban: FILE: not an APK: no central directory" — one line a failure, on stderr.
std::string FailureLine(const std::string& file, const Status& status);

}  // namespace appban::cli
