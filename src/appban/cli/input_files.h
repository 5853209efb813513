// Turning command-line inputs into a list of files: directories are searched recursively for a
// suffix, in a stable (sorted) order; unreadable inputs become failure lines.
#pragma once

#include <string>
#include <vector>

#include "appban/common/status.h"

namespace appban::cli {

std::vector<std::string> ExpandInputs(const std::vector<std::string>& inputs, const std::string& suffix,
                                      std::vector<std::string>* failures);

// "appban: FILE: not an APK: no central directory" — one line a failure, on stderr.
std::string FailureLine(const std::string& file, const Status& status);

}  // namespace appban::cli
