#include "appban/agent/agent_client.h"

#include <gtest/gtest.h>

namespace appban::agent {
namespace {

constexpr char kHex[] = "935537a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d";

// The first-start banner prints "SHA256 93:55:…" in upper case: an administrator pastes exactly
// that, or what `openssl x509 -fingerprint -sha256` prints, or plain hex.
TEST(NormalizeSha256Fingerprint, AcceptsEveryPrintedForm) {
  const std::string colons_upper =
      "93:55:37:A1:B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90:A1:B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D";
  for (const std::string& printed : {std::string(kHex), std::string("SHA256 ") + colons_upper, colons_upper,
                                     std::string("sha256 Fingerprint=") + colons_upper, std::string("SHA256:") + kHex,
                                     std::string("  ") + kHex + "\n"}) {
    Result<std::string> normal = NormalizeSha256Fingerprint(printed);
    ASSERT_TRUE(normal.ok()) << printed << ": " << normal.status().ToString();
    EXPECT_EQ(*normal, kHex) << printed;
  }
}

TEST(NormalizeSha256Fingerprint, RefusesWhatIsNotAFingerprint) {
  Result<std::string> short_one = NormalizeSha256Fingerprint("93:55:37");
  ASSERT_FALSE(short_one.ok());
  EXPECT_NE(short_one.status().message().find("64 hex digits"), std::string::npos) << short_one.status().ToString();
  EXPECT_NE(short_one.status().message().find("has 6"), std::string::npos) << short_one.status().ToString();

  Result<std::string> not_hex = NormalizeSha256Fingerprint(std::string(kHex).replace(10, 1, "z"));
  ASSERT_FALSE(not_hex.ok());
  EXPECT_NE(not_hex.status().message().find("not a SHA-256 fingerprint"), std::string::npos);

  EXPECT_FALSE(NormalizeSha256Fingerprint("SHA1 " + std::string(kHex)).ok());
}

}  // namespace
}  // namespace appban::agent

namespace appban::agent {
namespace {

// A fleet enrolling at once: the pause grows, honours the server's Retry-After, stays bounded,
// and differs between machines so they do not come back in step.
TEST(EnrollRetryPause, GrowsHonoursRetryAfterIsBoundedAndSpreadsMachines) {
  using std::chrono::milliseconds;
  EXPECT_GE(EnrollRetryPause(1, 0, 7), milliseconds(1000));
  EXPECT_LE(EnrollRetryPause(1, 0, 7), milliseconds(1250));
  EXPECT_GE(EnrollRetryPause(3, 0, 7), milliseconds(4000));
  EXPECT_GE(EnrollRetryPause(1, 30, 7), milliseconds(30000)) << "Retry-After is a floor";
  for (int attempt = 1; attempt < 40; ++attempt) {
    EXPECT_LE(EnrollRetryPause(attempt, 0, 7), milliseconds(75000)) << attempt;
  }
  int differing = 0;
  for (uint32_t machine = 0; machine < 100; ++machine) {
    if (EnrollRetryPause(2, 0, machine) != EnrollRetryPause(2, 0, machine + 1)) ++differing;
  }
  EXPECT_GT(differing, 50);
}

}  // namespace
}  // namespace appban::agent
