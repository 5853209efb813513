// Signer extraction checked against independent sources: `apksigner verify --print-certs -v` on
// androguard's copies of apksig's test APKs and on APKs signed here with fresh openssl keys,
// `openssl x509` for certificate facts, and hand-built APK Signing Blocks whose content the test
// controls.
#include "appban/apk/signing.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "appban/apk/zip.h"
#include "appban/common/bytes.h"

namespace appban::apk {
namespace {

namespace fs = std::filesystem;

const fs::path kApksig = "/usr/share/doc/androguard/examples/signing/apksig";

std::vector<uint8_t> ReadFileBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string ShellQuote(const std::string& arg) {
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a command (arguments are quoted) and returns its stdout; stderr is discarded.
std::string RunCommand(const std::vector<std::string>& argv, int* exit_code = nullptr) {
  std::string command;
  for (const auto& arg : argv) command += ShellQuote(arg) + " ";
  command += "2>/dev/null";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  std::string out;
  std::array<char, 4096> chunk{};
  size_t n;
  while (pipe && (n = fread(chunk.data(), 1, chunk.size(), pipe.get())) > 0) out.append(chunk.data(), n);
  int status = pipe ? pclose(pipe.release()) : -1;
  if (exit_code) *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// ---- What apksigner says. ----
struct ApksignerSigner {
  std::string dn, sha256, key_algorithm;
  int key_bits = 0;
};
struct ApksignerReport {
  bool verifies = false;
  std::map<std::string, bool> schemes;  // "v1", "v2", "v3", "v3.1"
  std::vector<ApksignerSigner> signers;
  bool used_min_sdk = false;
};

ApksignerReport ParseApksigner(const std::string& text) {
  ApksignerReport report;
  std::istringstream lines(text);
  std::string line;
  auto value_after = [&](const std::string& key) -> std::optional<std::string> {
    auto pos = line.find(key);
    if (pos == std::string::npos) return std::nullopt;
    return line.substr(pos + key.size());
  };
  while (std::getline(lines, line)) {
    if (line == "Verifies") report.verifies = true;
    for (auto [label, scheme] :
         {std::pair{"v1 scheme", "v1"}, {"v2 scheme", "v2"}, {"v3 scheme", "v3"}, {"v3.1 scheme", "v3.1"}}) {
      if (line.starts_with(std::string("Verified using ") + label)) report.schemes[scheme] = line.ends_with("true");
    }
    if (!line.starts_with("Signer #")) continue;
    size_t index = std::stoul(line.substr(8)) - 1;
    if (report.signers.size() <= index) report.signers.resize(index + 1);
    ApksignerSigner& s = report.signers[index];
    if (auto v = value_after(" certificate DN: ")) s.dn = *v;
    if (auto v = value_after(" certificate SHA-256 digest: ")) s.sha256 = *v;
    if (auto v = value_after(" key algorithm: ")) s.key_algorithm = *v;
    if (auto v = value_after(" key size (bits): ")) s.key_bits = std::stoi(*v);
  }
  return report;
}

// apksigner refuses APKs whose manifest minSdkVersion predates their newest scheme unless told
// the minimum SDK; retry with the SDK levels that introduced v2 and v3.
ApksignerReport RunApksigner(const fs::path& apk) {
  for (const char* min_sdk : {"", "24", "28"}) {
    std::vector<std::string> argv = {"apksigner", "verify", "--print-certs", "-v"};
    if (*min_sdk) argv.insert(argv.end(), {"--min-sdk-version", min_sdk});
    argv.push_back(apk.string());
    ApksignerReport report = ParseApksigner(RunCommand(argv));
    report.used_min_sdk = *min_sdk != '\0';
    if (report.verifies) return report;
  }
  return {};
}

struct Read {
  SigningInfo info;
  Anomalies anomalies;
  std::vector<uint8_t> bytes;  // keeps the archive's bytes alive
};

Read ReadApk(const fs::path& path) {
  Read out;
  out.bytes = ReadFileBytes(path);
  Limits limits;
  auto zip = ZipArchive::Open(out.bytes, limits);
  EXPECT_TRUE(zip.ok()) << path << ": " << zip.status().ToString();
  if (!zip.ok()) return out;
  auto info = ReadSigningInfo(*zip, limits, &out.anomalies);
  EXPECT_TRUE(info.ok()) << path << ": " << info.status().ToString();
  if (info.ok()) out.info = std::move(*info);
  return out;
}

bool HasAnomaly(const Anomalies& anomalies, std::string_view code) {
  return std::any_of(anomalies.begin(), anomalies.end(), [&](const Anomaly& a) { return a.code == code; });
}

std::string AnomalyCodes(const Anomalies& anomalies) {
  std::string out;
  for (const auto& a : anomalies) out += a.code + " (" + a.detail + ")\n";
  return out;
}

const Signer* FindSigner(const SigningInfo& info, const std::string& sha256) {
  for (const Signer& s : info.signers) {
    if (s.certificate.sha256 == sha256) return &s;
  }
  return nullptr;
}

bool HasScheme(const Signer& signer, std::string_view scheme) {
  return std::find(signer.schemes.begin(), signer.schemes.end(), scheme) != signer.schemes.end();
}

void ExpectMatchesApksigner(const fs::path& apk) {
  SCOPED_TRACE(apk.filename().string());
  ApksignerReport expected = RunApksigner(apk);
  ASSERT_TRUE(expected.verifies) << "apksigner does not verify " << apk;
  ASSERT_FALSE(expected.signers.empty());
  Read got = ReadApk(apk);
  ASSERT_FALSE(got.info.signers.empty()) << AnomalyCodes(got.anomalies);

  for (const ApksignerSigner& want : expected.signers) {
    const Signer* signer = FindSigner(got.info, want.sha256);
    ASSERT_NE(signer, nullptr) << "missing signer " << want.dn << " " << want.sha256;
    EXPECT_EQ(signer->certificate.subject, want.dn);
    EXPECT_EQ(signer->certificate.key_algorithm, want.key_algorithm);
    if (want.key_bits != 0) {
      EXPECT_EQ(signer->certificate.key_bits, want.key_bits);
    }
    // apksigner verified it, so its v2/v3 signatures over the signed data verify.
    if (!HasScheme(*signer, "v1") || signer->schemes.size() > 1) {
      EXPECT_TRUE(signer->signed_data_verified) << AnomalyCodes(got.anomalies);
    }
  }
  // apksigner lists the signers of the newest verified scheme; with one signer it is our first.
  if (expected.signers.size() == 1) {
    EXPECT_EQ(got.info.signers.front().certificate.sha256, expected.signers[0].sha256);
  }

  // With a raised --min-sdk-version apksigner skips v1, so v1 is only comparable without it.
  if (!expected.used_min_sdk) {
    EXPECT_EQ(got.info.v1, expected.schemes["v1"]);
  }
  EXPECT_EQ(got.info.v2, expected.schemes["v2"]);
  EXPECT_EQ(got.info.v3, expected.schemes["v3"]);
  if (expected.schemes.count("v3.1")) {
    EXPECT_EQ(got.info.v31, expected.schemes["v3.1"]);
  }
}

class SigningGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SigningGoldenTest, SignersAndSchemesMatchApksigner) {
  fs::path apk = kApksig / GetParam();
  if (!fs::exists(apk)) GTEST_SKIP() << "androguard examples not installed";
  ExpectMatchesApksigner(apk);
}

INSTANTIATE_TEST_SUITE_P(
    Androguard, SigningGoldenTest,
    ::testing::Values("golden-aligned-v1-out.apk", "golden-aligned-v2-out.apk", "golden-aligned-v3-out.apk",
                      "golden-aligned-v1v2-out.apk", "golden-aligned-v2v3-out.apk", "golden-aligned-v1v2v3-out.apk",
                      "golden-aligned-v1v2v3-lineage-out.apk", "golden-aligned-v2v3-lineage-out.apk",
                      "golden-aligned-v3-lineage-out.apk", "golden-unaligned-v1v2v3-out.apk",
                      "golden-legacy-aligned-v1v2v3-lineage-out.apk", "golden-rsa-out.apk",
                      "golden-rsa-minSdkVersion-24-out.apk", "v1-only-two-signers.apk", "v2-only-two-signers.apk",
                      "v1-only-with-dsa-sha256-1.2.840.10040.4.1-2048.apk",
                      "v1-only-with-ecdsa-sha256-1.2.840.10045.4.3.2-p384.apk",
                      "v1-only-with-rsa-pkcs1-sha256-1.2.840.113549.1.1.11-4096.apk",
                      "v1-only-pkcs7-cert-bag-first-cert-not-used.apk", "v1-only-with-rsa-1024-cert-not-der.apk",
                      "v1-only-with-rsa-1024-cert-not-der2.apk", "v2-only-with-dsa-sha256-3072.apk",
                      "v2-only-with-ecdsa-sha256-p521.apk", "v2-only-with-rsa-pkcs1-sha512-4096.apk",
                      "v3-only-with-ecdsa-sha512-p256.apk", "v3-only-with-rsa-pkcs1-sha512-8192.apk",
                      "v1v2v3-with-rsa-2048-lineage-3-signers.apk", "../TestActivity_signed_both.apk"),
    [](const auto& info) {
      std::string name = fs::path(info.param).stem().string();
      for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return name;
    });

TEST(SigningTest, LineageListsOlderCertificatesOldestFirst) {
  fs::path apk = kApksig / "v1v2v3-with-rsa-2048-lineage-3-signers.apk";
  if (!fs::exists(apk)) GTEST_SKIP();
  Read got = ReadApk(apk);
  ASSERT_FALSE(got.info.signers.empty());
  const Signer& newest = got.info.signers.front();
  EXPECT_TRUE(HasScheme(newest, "v3"));
  ASSERT_TRUE(newest.min_sdk.has_value());
  // The file name says: three signers in the lineage, so two come before the current one.
  ASSERT_EQ(newest.lineage.size(), 2u);
  for (const Certificate& old : newest.lineage) EXPECT_NE(old.sha256, newest.certificate.sha256);
  // The v1/v2 signer is the oldest certificate of the lineage (signed before any rotation).
  for (const Signer& s : got.info.signers) {
    if (HasScheme(s, "v2")) {
      EXPECT_EQ(s.certificate.sha256, newest.lineage.front().sha256);
    }
  }
  EXPECT_FALSE(HasAnomaly(got.anomalies, "signing.signers_differ_across_schemes")) << AnomalyCodes(got.anomalies);
}

// ---- Androguard's deliberately broken APKs: each named trick gives its anomaly. ----
struct BrokenCase {
  const char* file;
  const char* anomaly;
};

class SigningBrokenTest : public ::testing::TestWithParam<BrokenCase> {};

TEST_P(SigningBrokenTest, ReportsAnomaly) {
  fs::path apk = kApksig / GetParam().file;
  if (!fs::exists(apk)) GTEST_SKIP();
  Read got = ReadApk(apk);
  EXPECT_TRUE(HasAnomaly(got.anomalies, GetParam().anomaly)) << AnomalyCodes(got.anomalies);
}

INSTANTIATE_TEST_SUITE_P(
    Androguard, SigningBrokenTest,
    ::testing::Values(BrokenCase{"v2-only-apk-sig-block-size-mismatch.apk", "signing.block_size_mismatch"},
                      BrokenCase{"v3-only-with-rsa-pkcs1-sha512-4096-apk-sig-block-size-mismatch.apk",
                                 "signing.block_size_mismatch"},
                      BrokenCase{"v2-only-unknown-pair-in-apk-sig-block.apk", "signing.unknown_block_id"},
                      BrokenCase{"v2-only-no-certs-in-sig.apk", "signing.signer_without_certificate"},
                      BrokenCase{"v2-only-cert-and-public-key-mismatch.apk", "signing.certificate_public_key_mismatch"},
                      BrokenCase{"v2-stripped.apk", "signing.v2_stripped"},
                      BrokenCase{"v2v3-signed-v3-block-stripped.apk", "signing.v3_stripped"}),
    [](const auto& info) {
      std::string name = fs::path(info.param.file).stem().string();
      for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return name;
    });

// apksig's test APKs whose v2/v3 signature over the signed data is broken, and good twins.
struct VerifyCase {
  const char* file;
  bool verifies;
};

class SigningVerifyTest : public ::testing::TestWithParam<VerifyCase> {};

TEST_P(SigningVerifyTest, SignedDataSignature) {
  fs::path apk = kApksig / GetParam().file;
  if (!fs::exists(apk)) GTEST_SKIP();
  Read got = ReadApk(apk);
  ASSERT_EQ(got.info.signers.size(), 1u) << AnomalyCodes(got.anomalies);
  EXPECT_EQ(got.info.signers[0].signed_data_verified, GetParam().verifies);
  EXPECT_EQ(HasAnomaly(got.anomalies, "signing.signature_does_not_verify"), !GetParam().verifies)
      << AnomalyCodes(got.anomalies);
}

INSTANTIATE_TEST_SUITE_P(
    Androguard, SigningVerifyTest,
    ::testing::Values(VerifyCase{"v2-only-with-rsa-pkcs1-sha256-2048-sig-does-not-verify.apk", false},
                      VerifyCase{"v2-only-with-rsa-pkcs1-sha256-2048.apk", true},
                      VerifyCase{"v2-only-with-rsa-pss-sha256-2048-sig-does-not-verify.apk", false},
                      VerifyCase{"v2-only-with-rsa-pss-sha256-2048.apk", true},
                      VerifyCase{"v2-only-with-rsa-pss-sha512-4096.apk", true},
                      VerifyCase{"v2-only-with-ecdsa-sha256-p256-sig-does-not-verify.apk", false},
                      VerifyCase{"v2-only-with-ecdsa-sha512-p384.apk", true},
                      VerifyCase{"v2-only-with-dsa-sha256-1024-sig-does-not-verify.apk", false},
                      VerifyCase{"v2-only-with-dsa-sha256-1024.apk", true},
                      VerifyCase{"v3-only-with-dsa-sha256-2048-sig-does-not-verify.apk", false},
                      VerifyCase{"v3-only-with-ecdsa-sha512-p521-sig-does-not-verify.apk", false},
                      VerifyCase{"v3-only-with-rsa-pkcs1-sha256-3072-sig-does-not-verify.apk", false},
                      VerifyCase{"v3-only-with-rsa-pkcs1-sha256-3072.apk", true},
                      // Content digests are out of scope: a digest mismatch still has a valid
                      // signature over the signed data.
                      VerifyCase{"v2-only-with-ecdsa-sha256-p256-digest-mismatch.apk", true},
                      VerifyCase{"v2-only-with-ignorable-unsupported-sig-algs.apk", true}),
    [](const auto& info) {
      std::string name = fs::path(info.param.file).stem().string();
      for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return name;
    });

TEST(SigningTest, UnsignedApkHasNoSigners) {
  fs::path apk = kApksig / "golden-aligned-in.apk";
  if (!fs::exists(apk)) GTEST_SKIP();
  Read got = ReadApk(apk);
  EXPECT_TRUE(got.info.signers.empty());
  EXPECT_FALSE(got.info.v1 || got.info.v2 || got.info.v3 || got.info.v31);
  EXPECT_FALSE(got.info.v1_only());
}

TEST(SigningTest, WrongMagicMeansNoV2) {
  fs::path apk = kApksig / "v2-only-wrong-apk-sig-block-magic.apk";
  if (!fs::exists(apk)) GTEST_SKIP();
  Read got = ReadApk(apk);
  EXPECT_FALSE(got.info.v2);
}

// ---- APKs signed here with fresh openssl keys, checked against apksigner and openssl. ----
class FreshKeys : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kApksig / "golden-aligned-in.apk")) GTEST_SKIP();
    dir_ = fs::temp_directory_path() / ("appban_signing_test_" + std::to_string(std::random_device()()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  // Makes a self-signed key; `options` are openssl genpkey options.
  void MakeKey(const std::string& name, const std::vector<std::string>& options, const std::string& subject) {
    std::vector<std::string> genpkey = {"openssl", "genpkey"};
    genpkey.insert(genpkey.end(), options.begin(), options.end());
    genpkey.insert(genpkey.end(), {"-out", Path(name + ".pem")});
    RunCommand(genpkey);
    RunCommand({"openssl", "pkcs8", "-topk8", "-nocrypt", "-in", Path(name + ".pem"), "-outform", "DER", "-out",
                Path(name + ".pk8")});
    RunCommand({"openssl", "req", "-new", "-x509", "-utf8", "-key", Path(name + ".pem"), "-subj", subject, "-days",
                "3650", "-sha256", "-out", Path(name + ".crt")});
    ASSERT_TRUE(fs::exists(Path(name + ".crt")));
  }
  std::string Sign(const std::string& key, const std::string& out, const std::vector<std::string>& options) {
    std::vector<std::string> argv = {"apksigner", "sign", "--key", Path(key + ".pk8"), "--cert", Path(key + ".crt")};
    argv.insert(argv.end(), options.begin(), options.end());
    argv.insert(argv.end(), {"--out", Path(out), (kApksig / "golden-aligned-in.apk").string()});
    int exit_code = -1;
    RunCommand(argv, &exit_code);
    EXPECT_EQ(exit_code, 0) << "apksigner sign failed for " << out;
    return Path(out);
  }
  std::string OpenSslX509(const std::string& key, const std::vector<std::string>& options) {
    std::vector<std::string> argv = {"openssl", "x509", "-in", Path(key + ".crt"), "-noout"};
    argv.insert(argv.end(), options.begin(), options.end());
    return Trim(RunCommand(argv));
  }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

// "SHA1 Fingerprint=AB:CD:..." -> "abcd..."
std::string FingerprintHex(const std::string& line) {
  std::string out;
  for (char c : line.substr(line.find('=') + 1)) {
    if (c != ':') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// "notBefore=2026-11-27 22:32:20Z" -> "2026-11-27T22:32:20Z"
std::string IsoFromOpenSsl(const std::string& line) {
  std::string value = line.substr(line.find('=') + 1);
  std::replace(value.begin(), value.end(), ' ', 'T');
  return value;
}

TEST_F(FreshKeys, RsaV1OnlyAndEcV2V3MatchApksignerAndOpenssl) {
  MakeKey("rsa", {"-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"},
          "/C=DE/O=Appban Test Signers/CN=Appban RSA");
  MakeKey("ec", {"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"}, "/C=FR/O=Appban EC/CN=Appban EC");
  std::string v1 =
      Sign("rsa", "v1.apk",
           {"--v1-signing-enabled", "true", "--v2-signing-enabled", "false", "--v3-signing-enabled", "false"});
  std::string v2v3 = Sign("ec", "v2v3.apk",
                          {"--min-sdk-version", "24", "--v1-signing-enabled", "false", "--v2-signing-enabled", "true",
                           "--v3-signing-enabled", "true"});
  ExpectMatchesApksigner(v1);
  ExpectMatchesApksigner(v2v3);

  Read rsa = ReadApk(v1);
  ASSERT_EQ(rsa.info.signers.size(), 1u);
  EXPECT_TRUE(rsa.info.v1_only());
  const Certificate& cert = rsa.info.signers[0].certificate;
  EXPECT_EQ(rsa.info.signers[0].schemes, std::vector<std::string>{"v1"});
  EXPECT_EQ(cert.sha1, FingerprintHex(OpenSslX509("rsa", {"-fingerprint", "-sha1"})));
  EXPECT_EQ(cert.sha256, FingerprintHex(OpenSslX509("rsa", {"-fingerprint", "-sha256"})));
  EXPECT_EQ(cert.serial_hex, FingerprintHex(OpenSslX509("rsa", {"-serial"})));
  EXPECT_EQ(cert.not_before, IsoFromOpenSsl(OpenSslX509("rsa", {"-startdate", "-dateopt", "iso_8601"})));
  EXPECT_EQ(cert.not_after, IsoFromOpenSsl(OpenSslX509("rsa", {"-enddate", "-dateopt", "iso_8601"})));
  EXPECT_EQ(cert.subject_organization, "Appban Test Signers");
  EXPECT_EQ(cert.subject_country, "DE");
  EXPECT_EQ(cert.issuer, cert.subject);
  EXPECT_TRUE(cert.self_signed);
  EXPECT_FALSE(cert.debug);

  Read ec = ReadApk(v2v3);
  ASSERT_EQ(ec.info.signers.size(), 1u);
  EXPECT_FALSE(ec.info.v1_only());
  EXPECT_EQ(ec.info.signers[0].schemes, (std::vector<std::string>{"v2", "v3"}));
  EXPECT_EQ(ec.info.signers[0].min_sdk, 24);
  EXPECT_EQ(ec.info.signers[0].certificate.key_algorithm, "EC");
  EXPECT_EQ(ec.info.signers[0].certificate.key_bits, 256);
  EXPECT_TRUE(ec.anomalies.empty()) << AnomalyCodes(ec.anomalies);
}

TEST_F(FreshKeys, DistinguishedNamesWithSpecialCharactersMatchApksigner) {
  MakeKey("odd", {"-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"},
          "/C=US/ST=New York/L=New  York/O=Foo, Inc./OU=R&D \"Lab\"/OU=a+b=c;d/CN=Ünïcode Name "
          "/emailAddress=x@example.com");
  ExpectMatchesApksigner(Sign("odd", "odd.apk", {}));
}

TEST_F(FreshKeys, AndroidDebugCertificateIsFlagged) {
  MakeKey("debug", {"-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"}, "/C=US/O=Android/CN=Android Debug");
  Read got = ReadApk(Sign("debug", "debug.apk", {}));
  ASSERT_FALSE(got.info.signers.empty());
  EXPECT_TRUE(got.info.signers[0].certificate.debug);
  EXPECT_TRUE(got.info.any_debug());
  EXPECT_EQ(got.info.signers[0].schemes, (std::vector<std::string>{"v1", "v2", "v3"}));
}

TEST_F(FreshKeys, DifferentV1AndV2SignersAreReported) {
  // Re-signing keeps nothing of the old signature; splice instead: v1 files from one signer,
  // APK Signing Block from another is what a repackager that forgets a scheme leaves behind.
  // Build it at the signer-list level, which is what the check looks at.
  MakeKey("a", {"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"}, "/CN=A");
  MakeKey("b", {"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"}, "/CN=B");
  Read a = ReadApk(Sign("a", "a.apk", {"--v2-signing-enabled", "false", "--v3-signing-enabled", "false"}));
  Read b = ReadApk(Sign("b", "b.apk",
                        {"--v1-signing-enabled", "false", "--min-sdk-version", "24", "--v3-signing-enabled", "false"}));
  ASSERT_EQ(a.info.signers.size(), 1u);
  ASSERT_EQ(b.info.signers.size(), 1u);
  Anomalies anomalies;
  SigningInfo info = GroupSigners({SchemeSigner{"v1", a.info.signers[0].certificate, {}, {}, {}, false},
                                   SchemeSigner{"v2", b.info.signers[0].certificate, {}, {}, {}, true}},
                                  &anomalies);
  EXPECT_EQ(info.signers.size(), 2u);
  EXPECT_TRUE(HasAnomaly(anomalies, "signing.signers_differ_across_schemes"));
}

// ---- Hand-built APK Signing Blocks over raw bytes (no ZIP reader involved). ----
std::vector<uint8_t> PemToDer(const fs::path& pem) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(fopen(pem.c_str(), "r"), fclose);
  if (!file) return {};
  std::unique_ptr<X509, void (*)(X509*)> cert(PEM_read_X509(file.get(), nullptr, nullptr, nullptr), X509_free);
  if (!cert) return {};
  unsigned char* der = nullptr;
  int length = i2d_X509(cert.get(), &der);
  std::vector<uint8_t> out(der, der + std::max(length, 0));
  OPENSSL_free(der);
  return out;
}

std::vector<uint8_t> PublicKeyDer(const std::vector<uint8_t>& cert_der) {
  const unsigned char* p = cert_der.data();
  std::unique_ptr<X509, void (*)(X509*)> cert(d2i_X509(nullptr, &p, static_cast<long>(cert_der.size())), X509_free);
  if (!cert) return {1, 2, 3};  // the test passes a garbage certificate on purpose
  unsigned char* der = nullptr;
  int length = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert.get()), &der);
  std::vector<uint8_t> out(der, der + std::max(length, 0));
  OPENSSL_free(der);
  return out;
}

struct Builder {
  std::vector<uint8_t> bytes;
  Builder& U32(uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  Builder& U64(uint64_t v) {
    for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  Builder& Raw(const std::vector<uint8_t>& v) {
    bytes.insert(bytes.end(), v.begin(), v.end());
    return *this;
  }
  Builder& Prefixed(const std::vector<uint8_t>& v) { return U32(static_cast<uint32_t>(v.size())).Raw(v); }
};

// A v2 (no SDK range) or v3 signer with one certificate and optional additional attributes.
// Signs `data` the way a v2/v3 signer does (RSA PKCS#1 v1.5 or ECDSA, SHA-256) with the PKCS#8
// key in `key_file`; returns the algorithm ID and signature, or garbage when there is no key.
std::pair<uint32_t, std::vector<uint8_t>> SignWith(const fs::path& key_file, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> key_der = key_file.empty() ? std::vector<uint8_t>() : ReadFileBytes(key_file);
  const unsigned char* p = key_der.data();
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key(
      key_der.empty() ? nullptr : d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(key_der.size())), EVP_PKEY_free);
  if (!key) return {0x0103, std::vector<uint8_t>(64, 0x55)};
  uint32_t id = EVP_PKEY_get_base_id(key.get()) == EVP_PKEY_RSA ? 0x0103 : 0x0201;
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  size_t length = 0;
  EXPECT_EQ(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()), 1);
  EXPECT_EQ(EVP_DigestSign(ctx.get(), nullptr, &length, data.data(), data.size()), 1);
  std::vector<uint8_t> signature(length);
  EXPECT_EQ(EVP_DigestSign(ctx.get(), signature.data(), &length, data.data(), data.size()), 1);
  signature.resize(length);
  return {id, signature};
}

// A v2 (no SDK range) or v3 signer with one certificate and optional additional attributes,
// signed with `key_file` when given.
std::vector<uint8_t> SchemeSignerBytes(const std::vector<uint8_t>& cert, bool v3,
                                       const std::vector<uint8_t>& attributes = {}, const fs::path& key_file = {}) {
  Builder digest;
  digest.Prefixed(Builder().U32(0x0103).Prefixed(std::vector<uint8_t>(32, 0xaa)).bytes);
  Builder signed_data;
  signed_data.Prefixed(digest.bytes).Prefixed(Builder().Prefixed(cert).bytes);
  if (v3) signed_data.U32(28).U32(0x7fffffff);
  signed_data.Prefixed(attributes);
  auto [algorithm, signature] = SignWith(key_file, signed_data.bytes);
  Builder signer;
  signer.Prefixed(signed_data.bytes);
  if (v3) signer.U32(28).U32(0x7fffffff);
  signer.Prefixed(Builder().Prefixed(Builder().U32(algorithm).Prefixed(signature).bytes).bytes);
  signer.Prefixed(PublicKeyDer(cert));
  return signer.bytes;
}

std::vector<uint8_t> SchemeBlock(const std::vector<std::vector<uint8_t>>& signers) {
  Builder list;
  for (const auto& s : signers) list.Prefixed(s);
  return Builder().Prefixed(list.bytes).bytes;
}

// A file: some "entries" bytes, the signing block, then a fake central directory. Returns the file
// and sets `cd_offset`.
std::vector<uint8_t> FileWithBlock(const std::vector<std::pair<uint32_t, std::vector<uint8_t>>>& pairs,
                                   uint64_t* cd_offset) {
  Builder body;
  for (const auto& [id, value] : pairs) body.U64(value.size() + 4).U32(id).Raw(value);
  uint64_t size = body.bytes.size() + 8 + 16;
  Builder file;
  file.Raw(std::vector<uint8_t>(100, 'x')).U64(size).Raw(body.bytes).U64(size);
  std::string magic = "APK Sig Block 42";
  file.Raw(std::vector<uint8_t>(magic.begin(), magic.end()));
  *cd_offset = file.bytes.size();
  file.Raw({'P', 'K', 1, 2});
  return file.bytes;
}

class SyntheticBlock : public ::testing::Test {
 protected:
  void SetUp() override {
    old_cert_ = PemToDer(kApksig / "rsa-2048.x509.pem");
    new_cert_ = PemToDer(kApksig / "ec-p256.x509.pem");
    if (old_cert_.empty() || new_cert_.empty()) GTEST_SKIP() << "androguard example keys not installed";
  }
  std::string OpensslSha256(const std::string& pem) {
    return FingerprintHex(
        Trim(RunCommand({"openssl", "x509", "-in", (kApksig / pem).string(), "-noout", "-fingerprint", "-sha256"})));
  }
  std::vector<uint8_t> old_cert_, new_cert_;
  const fs::path old_key_ = kApksig / "rsa-2048.pk8";
  const fs::path new_key_ = kApksig / "ec-p256.pk8";
  Limits limits_;
  Anomalies anomalies_;
};

TEST_F(SyntheticBlock, V2SignerIsRead) {
  uint64_t cd = 0;
  auto file = FileWithBlock({{0x7109871a, SchemeBlock({SchemeSignerBytes(old_cert_, false, {}, old_key_)})}}, &cd);
  auto block = ParseSigningBlock(file, cd, limits_, &anomalies_);
  ASSERT_TRUE(block.ok()) << block.status().ToString();
  EXPECT_TRUE(block->present);
  EXPECT_TRUE(block->v2_present);
  ASSERT_EQ(block->signers.size(), 1u);
  EXPECT_EQ(block->signers[0].scheme, "v2");
  EXPECT_EQ(block->signers[0].certificate.sha256, OpensslSha256("rsa-2048.x509.pem"));
  EXPECT_EQ(block->signers[0].certificate.subject, "CN=rsa-2048");
  EXPECT_TRUE(block->signers[0].signed_data_verified);
  EXPECT_TRUE(anomalies_.empty()) << AnomalyCodes(anomalies_);
}

TEST_F(SyntheticBlock, LineageFromProofOfRotation) {
  auto node = [](const std::vector<uint8_t>& cert) {
    Builder signed_data;
    signed_data.Prefixed(cert).U32(0x0103);
    return Builder().Prefixed(signed_data.bytes).U32(0).U32(0x0103).Prefixed({1, 2, 3}).bytes;
  };
  Builder por;
  por.U32(1).Prefixed(node(old_cert_)).Prefixed(node(new_cert_));
  auto attributes = Builder().Prefixed(Builder().U32(0x3ba06f8c).Raw(por.bytes).bytes).bytes;
  uint64_t cd = 0;
  auto file = FileWithBlock({{0xf05368c0, SchemeBlock({SchemeSignerBytes(new_cert_, true, attributes, new_key_)})},
                             {0x7109871a, SchemeBlock({SchemeSignerBytes(old_cert_, false, {}, old_key_)})}},
                            &cd);
  auto block = ParseSigningBlock(file, cd, limits_, &anomalies_);
  ASSERT_TRUE(block.ok());
  SigningInfo info = GroupSigners(block->signers, &anomalies_);
  ASSERT_EQ(info.signers.size(), 2u);
  EXPECT_EQ(info.signers[0].certificate.sha256, OpensslSha256("ec-p256.x509.pem"));  // v3 first
  EXPECT_EQ(info.signers[0].schemes, std::vector<std::string>{"v3"});
  EXPECT_EQ(info.signers[0].min_sdk, 28);
  ASSERT_EQ(info.signers[0].lineage.size(), 1u);
  EXPECT_EQ(info.signers[0].lineage[0].sha256, OpensslSha256("rsa-2048.x509.pem"));
  EXPECT_EQ(info.signers[1].schemes, std::vector<std::string>{"v2"});
  // v2 signed by the old key, v3 by the new one, linked by the lineage: a normal rotation.
  EXPECT_FALSE(HasAnomaly(anomalies_, "signing.signers_differ_across_schemes")) << AnomalyCodes(anomalies_);
  EXPECT_TRUE(info.v2 && info.v3 && !info.v1);
  EXPECT_TRUE(info.signers[0].signed_data_verified);
  EXPECT_TRUE(info.signers[1].signed_data_verified);
}

TEST_F(SyntheticBlock, SignedDataChangedAfterSigningDoesNotVerify) {
  auto signer = SchemeSignerBytes(old_cert_, false, {}, old_key_);
  // The first digest's bytes sit at a fixed place: signed data length, digests length, digest
  // entry length, algorithm ID, digest length.
  signer[4 + 4 + 4 + 4 + 4] ^= 0xff;
  uint64_t cd = 0;
  auto file = FileWithBlock({{0x7109871a, SchemeBlock({signer})}}, &cd);
  auto block = ParseSigningBlock(file, cd, limits_, &anomalies_);
  ASSERT_TRUE(block.ok());
  ASSERT_EQ(block->signers.size(), 1u);
  EXPECT_FALSE(block->signers[0].signed_data_verified);
  EXPECT_TRUE(HasAnomaly(anomalies_, "signing.signature_does_not_verify"));
  SigningInfo info = GroupSigners(block->signers, &anomalies_);
  EXPECT_FALSE(info.signers[0].signed_data_verified);
}

TEST_F(SyntheticBlock, GarbageCertificateIsSkippedAndReported) {
  uint64_t cd = 0;
  std::vector<uint8_t> garbage(300, 0x30);
  auto file = FileWithBlock({{0x7109871a, SchemeBlock({SchemeSignerBytes(garbage, false)})}}, &cd);
  auto block = ParseSigningBlock(file, cd, limits_, &anomalies_);
  ASSERT_TRUE(block.ok());
  EXPECT_TRUE(block->signers.empty());
  EXPECT_TRUE(HasAnomaly(anomalies_, "signing.unparseable_certificate")) << AnomalyCodes(anomalies_);
}

TEST_F(SyntheticBlock, SizeMismatchAndOversizeAndTruncation) {
  uint64_t cd = 0;
  auto good = FileWithBlock({{0x7109871a, SchemeBlock({SchemeSignerBytes(old_cert_, false, {}, old_key_)})}}, &cd);
  {
    auto file = good;
    file[100] ^= 1;  // the leading size field
    Anomalies anomalies;
    auto block = ParseSigningBlock(file, cd, limits_, &anomalies);
    ASSERT_TRUE(block.ok());
    EXPECT_FALSE(block->present);
    EXPECT_TRUE(HasAnomaly(anomalies, "signing.block_size_mismatch"));
  }
  {
    auto file = good;
    file[cd - 24 + 5] = 0x7f;  // the trailing size claims far more than the file holds
    Anomalies anomalies;
    auto block = ParseSigningBlock(file, cd, limits_, &anomalies);
    ASSERT_TRUE(block.ok());
    EXPECT_FALSE(block->present);
    EXPECT_TRUE(HasAnomaly(anomalies, "signing.block_truncated"));
  }
  {
    Limits small;
    small.max_signing_block_bytes = 256;
    auto block = ParseSigningBlock(good, cd, small, &anomalies_);
    EXPECT_EQ(block.status().code(), StatusCode::kLimitExceeded);
  }
  // Every truncation point and every single-byte corruption of the block: no crash, no error
  // other than a clean result.
  for (uint64_t cut = 0; cut <= cd; cut += 7) {
    std::vector<uint8_t> file(good.begin(), good.begin() + static_cast<long>(cut));
    Anomalies anomalies;
    EXPECT_TRUE(ParseSigningBlock(file, std::min<uint64_t>(cd, cut), limits_, &anomalies).ok());
  }
  for (uint64_t at = 100; at < cd; at += 3) {
    auto file = good;
    file[at] = static_cast<uint8_t>(file[at] + 0x41);
    Anomalies anomalies;
    EXPECT_TRUE(ParseSigningBlock(file, cd, limits_, &anomalies).ok()) << "byte " << at;
  }
}

TEST_F(SyntheticBlock, UnknownAndKnownExtraPairs) {
  uint64_t cd = 0;
  auto file = FileWithBlock({{0x7109871a, SchemeBlock({SchemeSignerBytes(old_cert_, false, {}, old_key_)})},
                             {0x71777777, {'c', 'h', 'a', 'n'}},
                             {0x42726577, std::vector<uint8_t>(16, 0)},
                             {0x6dff800d, {1, 2, 3}}},
                            &cd);
  auto block = ParseSigningBlock(file, cd, limits_, &anomalies_);
  ASSERT_TRUE(block.ok());
  ASSERT_EQ(block->entries.size(), 4u);
  EXPECT_EQ(block->entries[1].kind, "unknown");
  EXPECT_EQ(block->entries[2].kind, "padding");
  EXPECT_EQ(block->entries[3].kind, "source_stamp_v2");
  EXPECT_EQ(std::count_if(anomalies_.begin(), anomalies_.end(),
                          [](const Anomaly& a) { return a.code == "signing.unknown_block_id"; }),
            1);
}

TEST_F(SyntheticBlock, SignerLimit) {
  uint64_t cd = 0;
  auto signer = SchemeSignerBytes(old_cert_, false, {}, old_key_);
  auto file = FileWithBlock({{0x7109871a, SchemeBlock({signer, signer})}}, &cd);
  Limits one;
  one.max_signers = 1;
  EXPECT_EQ(ParseSigningBlock(file, cd, one, &anomalies_).status().code(), StatusCode::kLimitExceeded);
}

TEST_F(SyntheticBlock, BlockNotAdjacentToCentralDirectory) {
  uint64_t cd = 0;
  auto file = FileWithBlock({{0x7109871a, SchemeBlock({SchemeSignerBytes(old_cert_, false, {}, old_key_)})}}, &cd);
  file.insert(file.begin() + static_cast<long>(cd), 8, 0);  // gap between block and directory
  auto block = ParseSigningBlock(file, cd + 8, limits_, &anomalies_);
  ASSERT_TRUE(block.ok());
  EXPECT_FALSE(block->present);
  EXPECT_TRUE(HasAnomaly(anomalies_, "signing.block_not_at_central_directory")) << AnomalyCodes(anomalies_);
}

TEST(SigningTest, Pkcs7GarbageIsCorruptionNotCrash) {
  Limits limits;
  Anomalies anomalies;
  std::vector<uint8_t> garbage = {0x30, 0x82, 0x01, 0x00, 0x06, 0x09};
  EXPECT_FALSE(ParsePkcs7Signer(garbage, "META-INF/X.RSA", limits, &anomalies).ok());
  EXPECT_FALSE(ParsePkcs7Signer({}, "META-INF/X.RSA", limits, &anomalies).ok());
  EXPECT_FALSE(ParseCertificate(garbage).ok());
}

}  // namespace
}  // namespace appban::apk
