// Reading a credential from a file, and the private directory connectors keep their state in: a service-account key, an
// MDM API key, a profile-signing key. Credentials are named by path in the configuration, never inline, and a file
// others may read is refused, so a credential cannot quietly sit world-readable on the server. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "appban/common/status.h"

namespace appban::mdm {

// Reads the whole file. Refuses (kPermissionDenied) a path that is a symbolic link or not a regular
// file, or a file its group or others may read or write ("must be mode 0600"); kLimitExceeded over
// `max_bytes`; kNotFound when it cannot be opened. `what` names the credential in errors
// ("the service-account key"); the contents never appear in one.
Result<std::string> ReadCredentialFile(const std::string& path, uint64_t max_bytes, std::string_view what);

// Creates `path` mode 0700 unless it exists: the connectors' state directory (DATA_DIR/mdm).
Status EnsurePrivateDirectory(const std::string& path);

}  // namespace appban::mdm
