// `appban login` (or a shell session running it) in the background for the tests of the device
// authorization grant: it runs until someone signs in at the provider, so its output is read while
// it waits (OidcProvider::DeviceSignIn does the person's half).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace appban::testing {

class LoginProcess {
 public:
  // Starts argv with stdin from /dev/null and stdout/stderr in `dir`/login.out and login.err.
  LoginProcess(const std::vector<std::string>& argv, const std::filesystem::path& dir);
  LoginProcess(const LoginProcess&) = delete;
  LoginProcess& operator=(const LoginProcess&) = delete;
  ~LoginProcess();  // kills it if it still runs

  // The URI `appban login` told the person to open ("" when it printed none within 30 s).
  std::string VerificationUri() const;
  // Waits for the command to end (at most 90 s).
  CommandResult Wait();

 private:
  std::filesystem::path out_, err_;
  pid_t pid_ = -1;
};

}  // namespace appban::testing
