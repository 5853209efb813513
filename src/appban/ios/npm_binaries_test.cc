// Real Apple-signed Mach-O files nobody here wrote: sentry-cli (universal x86_64 + arm64, signed
// with a Developer ID Application certificate of GetSentry LLC) and esbuild (arm64, ad hoc, signed
// by Go's linker), from the npm packages pinned in tests/fixtures/ios/npm/package-lock.json and
// installed by scripts/setup.sh --test. Every fact asserted is cross-checked in the test with an
// independent Debian tool on the same file: llvm-objdump --macho for the fat header and load
// commands, openssl cms/pkcs7 for the signature, signer, Team ID and the chain to Apple's root,
// openssl dgst for the cdhash.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "appban/common/crypto.h"
#include "appban/ios/app.h"
#include "appban/ios/ios_test_support.h"
#include "appban/ios/trust_anchors.h"

namespace appban::ios {
namespace {

using ::testing::Contains;
using ::testing::ElementsAreArray;
using testing::ExitCode;
using ::testing::HasSubstr;
using testing::Output;

constexpr char kNpmDir[] = APPBAN_SOURCE_DIR "/tests/fixtures/ios/npm/node_modules/";
constexpr char kRoots[] = APPBAN_SOURCE_DIR "/data/apple-roots.pem";

std::string NpmFile(const std::string& relative) { return kNpmDir + relative; }
std::string SentryCli() { return NpmFile("@sentry/cli-darwin/bin/sentry-cli"); }
std::string Esbuild() { return NpmFile("@esbuild/darwin-arm64/bin/esbuild"); }

uint32_t BE32(const std::string& b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at])} << 24) | (uint32_t{static_cast<uint8_t>(b[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(b[at + 2])} << 8) | static_cast<uint8_t>(b[at + 3]);
}

// The blobs of one slice's superblob, found with llvm-objdump's offsets (not appban's): the
// primary CodeDirectory and the CMS signature, written to files for openssl.
struct ExtractedSignature {
  std::string code_directory_path, cms_path;
};
ExtractedSignature Extract(const std::string& file, const std::string& arch, const std::filesystem::path& dir) {
  std::smatch m;
  const std::string fat = Output("llvm-objdump --macho --universal-headers '" + file + "'");
  uint64_t slice_offset = 0;
  if (std::regex_search(fat, m, std::regex("architecture " + arch + "\\n(?:.*\\n){3}\\s+offset (\\d+)"))) {
    slice_offset = std::stoull(m[1]);
  }
  const std::string headers = Output("llvm-objdump --macho --private-headers --arch=" + arch + " '" + file + "'");
  EXPECT_TRUE(
      std::regex_search(headers, m, std::regex("LC_CODE_SIGNATURE\\n.*\\n\\s+dataoff (\\d+)\\n\\s+datasize (\\d+)")))
      << headers.substr(0, 400);
  const std::string bytes = testing::ReadAll(file);
  const std::string blob = bytes.substr(slice_offset + std::stoull(m[1]), std::stoull(m[2]));
  ExtractedSignature out{(dir / (arch + ".cd")).string(), (dir / (arch + ".cms")).string()};
  for (uint32_t i = 0; i < BE32(blob, 8); ++i) {
    uint32_t type = BE32(blob, 12 + 8 * i), offset = BE32(blob, 16 + 8 * i), length = BE32(blob, offset + 4);
    if (type == 0) std::ofstream(out.code_directory_path, std::ios::binary) << blob.substr(offset, length);
    if (type == 0x10000) std::ofstream(out.cms_path, std::ios::binary) << blob.substr(offset + 8, length - 8);
  }
  return out;
}

class NpmBinariesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(SentryCli()) && std::filesystem::exists(Esbuild()))
        << "the darwin binaries are not installed: run scripts/setup.sh --test (npm ci in tests/fixtures/ios/npm)";
    auto roots = TrustAnchors::LoadPem(kRoots);
    ASSERT_TRUE(roots.ok()) << roots.status().ToString();
    roots_ = std::move(*roots);
    dir_ = std::filesystem::temp_directory_path() / ("appban-npm-binaries-" + std::to_string(::getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  TrustAnchors roots_;
  std::filesystem::path dir_;
};

TEST_F(NpmBinariesTest, TheShippedRootIsApplesPublishedRootCa) {
  EXPECT_THAT(roots_.names(), ElementsAreArray({"Apple Root CA"}));
  ASSERT_EQ(roots_.der().size(), 1u);
  EXPECT_EQ(Sha256Hex(AsBytes(roots_.der()[0])), kAppleRootFingerprints[0]);
  // Independently: openssl's fingerprint of the PEM in data/.
  EXPECT_THAT(
      Output(std::string("openssl x509 -in ") + kRoots + " -noout -fingerprint -sha256"),
      HasSubstr("B0:B1:73:0E:CB:C7:FF:45:05:14:2C:49:F1:29:5E:6E:DA:6B:CA:ED:7E:2C:68:C5:BE:91:B5:A1:10:01:F0:24"));
}

TEST_F(NpmBinariesTest, ARootThatIsNotApplesIsRefused) {
  // The first certificate of Debian's CA bundle: a real root, but not one of Apple's.
  const std::string pem = (dir_ / "other.pem").string();
  ASSERT_EQ(ExitCode("openssl x509 -in /etc/ssl/certs/ca-certificates.crt -out '" + pem + "'"), 0);
  auto loaded = TrustAnchors::LoadPem(pem);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.status().message(), HasSubstr("not one of Apple's published root certificates"));
}

TEST_F(NpmBinariesTest, SentryCliSlicesAndLoadCommandsAreWhatLlvmObjdumpReads) {
  auto app = IosApp::Open(SentryCli(), {}, &roots_);
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  EXPECT_EQ(app->input_kind(), "macho");
  ASSERT_TRUE(app->main().macho);
  const auto& slices = app->main().macho->slices;
  ASSERT_EQ(slices.size(), 2u);
  const std::string fat = Output("llvm-objdump --macho --universal-headers '" + SentryCli() + "'");
  for (const MachOSlice& slice : slices) {
    EXPECT_THAT(fat, HasSubstr("architecture " + slice.arch + "\n")) << slice.arch;
    EXPECT_THAT(fat, HasSubstr("offset " + std::to_string(slice.offset) + "\n")) << slice.arch;
    EXPECT_THAT(fat, HasSubstr("size " + std::to_string(slice.size) + "\n")) << slice.arch;

    const std::string headers =
        Output("llvm-objdump --macho --private-headers --arch=" + slice.arch + " '" + SentryCli() + "'");
    // arm64: LC_BUILD_VERSION (platform, minos); x86_64: LC_VERSION_MIN_MACOSX (version).
    std::smatch m;
    if (std::regex_search(
            headers, m,
            std::regex("LC_BUILD_VERSION\\n.*\\n\\s+platform (\\w+)\\n\\s+sdk [\\d.]+\\n\\s+minos ([\\d.]+)"))) {
      EXPECT_EQ(slice.platform, m[1].str());
      EXPECT_EQ(slice.minimum_os, m[2].str());
    } else {
      ASSERT_TRUE(std::regex_search(headers, m, std::regex("LC_VERSION_MIN_MACOSX\\n.*\\n\\s+version ([\\d.]+)")))
          << slice.arch;
      EXPECT_EQ(slice.platform, "macos");
      EXPECT_EQ(slice.minimum_os, m[1].str());
    }
    std::vector<std::string> expected, actual;
    const std::regex dylib("cmd LC_LOAD_DYLIB\\n.*\\n\\s+name (\\S+) \\(offset");
    for (auto it = std::sregex_iterator(headers.begin(), headers.end(), dylib); it != std::sregex_iterator(); ++it) {
      expected.push_back((*it)[1]);
    }
    for (const auto& library : slice.libraries) {
      if (library.kind == "load") actual.push_back(library.path);
    }
    EXPECT_FALSE(expected.empty());
    EXPECT_EQ(actual, expected) << slice.arch;
  }
  EXPECT_TRUE(app->anomalies().empty()) << app->anomalies().front().code;
}

TEST_F(NpmBinariesTest, SentryCliIsSignedWithDeveloperIdAndChainsToAppleRootCa) {
  auto app = IosApp::Open(SentryCli(), {}, &roots_);
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  ASSERT_TRUE(app->main().signature);
  const CodeSignature& s = *app->main().signature;
  EXPECT_TRUE(s.has_cms);
  EXPECT_TRUE(s.cms_verifies) << s.cms_error;
  EXPECT_EQ(s.team_id, "97JCY7859U");
  EXPECT_EQ(s.organization, "GetSentry LLC");
  EXPECT_EQ(s.certificate_kind, "Developer ID Application");
  EXPECT_TRUE(s.chain_verified) << s.chain_note;
  EXPECT_EQ(s.chain_anchor, "Apple Root CA");
  ASSERT_TRUE(s.signing_time);
  EXPECT_EQ(s.chain_checked_at, *s.signing_time);
  for (const CodeDirectory& cd : s.code_directories) EXPECT_TRUE(cd.pages_match()) << cd.hash_type;

  // The signature appban read is the first signed slice's (x86_64): openssl on the same blobs.
  const std::string arch = app->main().macho->slices.front().arch;
  ExtractedSignature blobs = Extract(SentryCli(), arch, dir_);
  const std::string certs = Output("openssl pkcs7 -inform DER -in '" + blobs.cms_path + "' -print_certs -noout");
  EXPECT_THAT(certs, HasSubstr("CN = Developer ID Application: GetSentry LLC (97JCY7859U), OU = 97JCY7859U, "
                               "O = GetSentry LLC"));
  EXPECT_THAT(certs, HasSubstr("issuer=CN = Developer ID Certification Authority"));
  // openssl verifies the signature over the CodeDirectory and the chain to data/apple-roots.pem
  // (-ignore_critical: Apple's critical 1.2.840.113635.100.6.1.13 extension is unknown to it)…
  const std::string verify = "openssl cms -verify -binary -purpose any -ignore_critical -inform DER -in '" +
                             blobs.cms_path + "' -content '" + blobs.code_directory_path + "' -out /dev/null";
  EXPECT_EQ(ExitCode(verify + " -CAfile " + kRoots), 0);
  // … and not to Debian's web roots, where Apple's root is absent.
  EXPECT_NE(ExitCode(verify + " -CAfile /etc/ssl/certs/ca-certificates.crt"), 0);
  // cdhash: the first 20 bytes of the SHA-256 of the primary CodeDirectory.
  ASSERT_FALSE(s.code_directories.empty());
  const CodeDirectory& primary = s.code_directories.front();
  EXPECT_EQ(primary.hash_type, "sha256");
  EXPECT_THAT(Output("openssl dgst -sha256 -r '" + blobs.code_directory_path + "'"), HasSubstr(primary.cdhash));
  EXPECT_EQ(primary.cdhash.size(), 40u);
}

TEST_F(NpmBinariesTest, WithoutTrustAnchorsTheChainIsReportedAsNotVerified) {
  auto app = IosApp::Open(SentryCli());
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  const CodeSignature& s = *app->main().signature;
  EXPECT_TRUE(s.cms_verifies);
  EXPECT_FALSE(s.chain_verified);
  EXPECT_FALSE(s.chain_checked);
  EXPECT_THAT(s.chain_note, HasSubstr("no trust anchor"));
}

TEST_F(NpmBinariesTest, EsbuildIsAdHocSignedAndItsPagesMatch) {
  auto app = IosApp::Open(Esbuild(), {}, &roots_);
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  ASSERT_TRUE(app->main().signature);
  const CodeSignature& s = *app->main().signature;
  EXPECT_FALSE(s.has_cms);
  EXPECT_TRUE(s.team_id.empty());
  EXPECT_FALSE(s.chain_verified);
  EXPECT_THAT(s.chain_note, HasSubstr("ad hoc"));
  ASSERT_FALSE(s.code_directories.empty());
  const CodeDirectory& primary = s.code_directories.front();
  EXPECT_THAT(primary.flag_names, Contains("adhoc"));
  EXPECT_TRUE(primary.pages_match());
  EXPECT_GT(primary.pages_checked, 100u);
  ExtractedSignature blobs = Extract(Esbuild(), "arm64", dir_);
  EXPECT_FALSE(std::filesystem::exists(blobs.cms_path));
  EXPECT_THAT(Output("openssl dgst -sha256 -r '" + blobs.code_directory_path + "'"), HasSubstr(primary.cdhash));
  const std::string headers = Output("llvm-objdump --macho --private-headers '" + Esbuild() + "'");
  EXPECT_THAT(headers, HasSubstr("minos " + app->main().macho->slices.front().minimum_os + "\n"));
}

TEST_F(NpmBinariesTest, AByteChangedInTheCodeOrTheSignatureIsCaught) {
  const std::string original = testing::ReadAll(SentryCli());
  auto app = IosApp::Open(SentryCli());
  ASSERT_TRUE(app.ok());
  const MachOSlice& slice = app->main().macho->slices.front();

  std::string code = original;
  code[slice.offset + 0x5000] ^= 0x01;  // inside __TEXT, covered by a page hash
  auto modified = IosApp::FromBytes(AsBytes(code), "modified", {}, &roots_);
  ASSERT_TRUE(modified.ok());
  EXPECT_FALSE(modified->main().signature->code_directories.front().pages_match());
  EXPECT_TRUE(std::any_of(modified->anomalies().begin(), modified->anomalies().end(),
                          [](const auto& a) { return a.code == "codesign.page_hash_mismatch"; }));

  // A byte of the primary CodeDirectory (the CMS signature's content): its last hash slot.
  std::string signature = original;
  const size_t superblob = slice.offset + *slice.code_signature_offset;
  ASSERT_EQ(BE32(signature, superblob + 12), 0u);  // slot 0 first in the index, as codesign writes it
  const size_t directory = superblob + BE32(signature, superblob + 16);
  signature[directory + BE32(signature, directory + 4) - 1] ^= 0x01;
  auto forged = IosApp::FromBytes(AsBytes(signature), "forged", {}, &roots_);
  ASSERT_TRUE(forged.ok());
  const CodeSignature& s = *forged->main().signature;
  EXPECT_FALSE(s.cms_verifies);
  EXPECT_FALSE(s.chain_verified);
  EXPECT_THAT(s.chain_note, HasSubstr("does not verify"));
}

}  // namespace
}  // namespace appban::ios
