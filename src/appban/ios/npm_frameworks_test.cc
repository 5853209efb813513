// A real iOS SDK xcframework nobody here wrote: SmartlookAnalytics.xcframework (session-recording
// analytics, Smartlook.com s.r.o.) as Smartlook's React Native wrapper ships it in the npm package
// react-native-smartlook-analytics, pinned in tests/fixtures/ios/npm/package-lock.json and
// installed by scripts/setup.sh --test. Four libraries (ios-arm64, ios-arm64_x86_64-simulator,
// tvos-arm64, tvos-arm64_x86_64-simulator), each a framework around a static library (an ar
// archive of Mach-O objects, universal for the simulators), with a privacy manifest; the
// xcframework is signed in codesign's detached form (_CodeSignature/) with an Apple Development
// certificate of Smartlook's team. Every fact asserted is cross-checked in the test with an
// independent tool on the same file: Python's plistlib for the plists, llvm-objdump --macho for
// the slices, members and load commands, llvm-nm for classes and imports, openssl for the
// signature.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "appban/ios/app.h"
#include "appban/ios/ios_test_support.h"
#include "appban/ios/trust_anchors.h"

namespace appban::ios {
namespace {

using ::testing::Contains;
using testing::ExitCode;
using ::testing::HasSubstr;
using testing::Output;
using Json = nlohmann::json;

constexpr char kXcframework[] = APPBAN_SOURCE_DIR
    "/tests/fixtures/ios/npm/node_modules/react-native-smartlook-analytics/ios/SmartlookAnalytics.xcframework";
constexpr char kRoots[] = APPBAN_SOURCE_DIR "/data/apple-roots.pem";

std::string InXcframework(const std::string& relative) { return std::string(kXcframework) + "/" + relative; }

// A plist (XML or binary) as Python's plistlib reads it, in JSON.
Json Plist(const std::string& path) {
  return Json::parse(
      Output("python3 -c 'import json, plistlib, sys; "
             "print(json.dumps(plistlib.load(open(sys.argv[1], \"rb\")), default=str))' '" +
             path + "'"));
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

const Bundle* FindBundle(const IosApp& app, const std::string& path) {
  for (const Bundle& bundle : app.bundles()) {
    if (bundle.path == path) return &bundle;
  }
  return nullptr;
}

class NpmFrameworksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(InXcframework("Info.plist")))
        << "the React Native SDK packages are not installed: run scripts/setup.sh --test (npm ci in "
           "tests/fixtures/ios/npm)";
    auto roots = TrustAnchors::LoadPem(kRoots);
    ASSERT_TRUE(roots.ok()) << roots.status().ToString();
    roots_ = std::move(*roots);
    auto app = IosApp::Open(kXcframework, {}, &roots_);
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    app_ = std::make_unique<IosApp>(std::move(*app));
    dir_ = std::filesystem::temp_directory_path() / ("appban-npm-frameworks-" + std::to_string(::getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  TrustAnchors roots_;
  std::unique_ptr<IosApp> app_;
  std::filesystem::path dir_;
};

TEST_F(NpmFrameworksTest, EveryLibraryTheXcframeworkDeclaresIsReadWithItsArchitecturesAndPlatform) {
  EXPECT_EQ(app_->input_kind(), "xcframework");
  EXPECT_EQ(app_->main().path, "SmartlookAnalytics.xcframework");
  const Json info = Plist(InXcframework("Info.plist"));
  ASSERT_EQ(info["CFBundlePackageType"], "XFWK");
  const Json& libraries = info["AvailableLibraries"];
  ASSERT_EQ(libraries.size(), 4u);
  EXPECT_EQ(app_->bundles().size(), 1 + libraries.size());
  for (const Json& library : libraries) {
    const std::string path =
        library["LibraryIdentifier"].get<std::string>() + "/" + library["LibraryPath"].get<std::string>();
    const Bundle* bundle = FindBundle(*app_, path);
    ASSERT_NE(bundle, nullptr) << path;
    EXPECT_EQ(bundle->kind, "framework");
    EXPECT_EQ(bundle->executable_path,
              library["LibraryIdentifier"].get<std::string>() + "/" + library["BinaryPath"].get<std::string>());
    ASSERT_TRUE(bundle->macho) << path << ": " << bundle->macho_error;
    std::set<std::string> archs;
    for (const MachOSlice& slice : bundle->macho->slices) {
      archs.insert(slice.arch);
      std::string platform = library["SupportedPlatform"];
      if (library.contains("SupportedPlatformVariant")) platform += library["SupportedPlatformVariant"];
      EXPECT_EQ(slice.platform, platform) << path << " " << slice.arch;
      EXPECT_EQ(slice.file_type, "static-library") << path;
    }
    EXPECT_EQ(archs, library["SupportedArchitectures"].get<std::set<std::string>>()) << path;
  }
  EXPECT_TRUE(app_->anomalies().empty()) << app_->anomalies().front().code << " at " << app_->anomalies().front().where;
}

// Each slice is an ar archive of Mach-O objects: the member count, platform, minimum OS and
// auto-linked frameworks (LC_LINKER_OPTION) are what llvm-objdump prints member by member.
TEST_F(NpmFrameworksTest, StaticLibrarySlicesAreWhatLlvmObjdumpReadsMemberByMember) {
  size_t slices_checked = 0;
  for (const Bundle& bundle : app_->bundles()) {
    if (!bundle.macho) continue;
    const std::string file = InXcframework(bundle.executable_path);
    const std::string fat = Output("llvm-objdump --macho --universal-headers '" + file + "'");
    EXPECT_EQ(bundle.macho->fat, fat.find("fat_magic") != std::string::npos) << file;
    for (const MachOSlice& slice : bundle.macho->slices) {
      ++slices_checked;
      const std::string label = bundle.executable_path + " " + slice.arch;
      if (bundle.macho->fat) {
        EXPECT_THAT(fat, HasSubstr("architecture " + slice.arch + "\n")) << label;
        EXPECT_THAT(fat, HasSubstr("offset " + std::to_string(slice.offset) + "\n")) << label;
        EXPECT_THAT(fat, HasSubstr("size " + std::to_string(slice.size) + "\n")) << label;
      }
      const std::string headers =
          Output("llvm-objdump --macho --private-headers " +
                 (bundle.macho->fat ? "--arch=" + slice.arch + " " : std::string()) + "'" + file + "'");
      size_t members = 0;
      std::set<std::string> builds, autolinked;
      std::vector<std::string> lines = Lines(headers);
      // Plain string matching: std::regex over the 200,000 lines would take a minute.
      auto value_after = [](const std::string& line, const std::string& key) -> std::optional<std::string> {
        size_t at = line.find_first_not_of(' ');
        if (at == std::string::npos || line.compare(at, key.size(), key) != 0) return std::nullopt;
        return line.substr(at + key.size());
      };
      for (size_t i = 0; i < lines.size(); ++i) {
        if (lines[i].ends_with(".o):")) ++members;
        if (auto platform = value_after(lines[i], "platform "); platform && i + 2 < lines.size()) {
          if (auto minos = value_after(lines[i + 2], "minos ")) builds.insert(*platform + " " + *minos);
        }
        if (auto option = value_after(lines[i], "string #");
            option && option->ends_with(" -framework") && i + 1 < lines.size()) {
          if (auto name = value_after(lines[i + 1], "string #")) {
            const std::string framework = name->substr(name->find(' ') + 1);
            autolinked.insert(framework + ".framework/" + framework);
          }
        }
      }
      EXPECT_GT(members, 10u) << label;
      EXPECT_EQ(slice.archive_members, members) << label;
      // Every member was built for the same platform and minimum OS: the slice's.
      EXPECT_EQ(builds, std::set<std::string>{slice.platform + " " + slice.minimum_os}) << label;
      std::set<std::string> libraries;
      for (const LinkedLibrary& library : slice.libraries) {
        EXPECT_EQ(library.kind, "autolink") << label;
        if (library.path.ends_with(".framework/" + library.path.substr(0, library.path.find('.')))) {
          libraries.insert(library.path);
        }
      }
      EXPECT_THAT(autolinked, Contains("UIKit.framework/UIKit")) << label;
      EXPECT_EQ(libraries, autolinked) << label;
      EXPECT_FALSE(slice.code_signature_offset) << label;  // objects are not signed; the bundle is
      EXPECT_THAT(headers, ::testing::Not(HasSubstr("LC_CODE_SIGNATURE"))) << label;
    }
  }
  EXPECT_EQ(slices_checked, 6u);  // arm64 ×2, arm64 + x86_64 ×2
}

// The ObjC classes the library defines and the symbols it leaves for the app's link (imports
// no member defines) are what llvm-nm lists.
TEST_F(NpmFrameworksTest, ClassesAndImportsAreWhatLlvmNmReads) {
  const Bundle* bundle = FindBundle(*app_, "ios-arm64/SmartlookAnalytics.framework");
  ASSERT_NE(bundle, nullptr);
  ASSERT_TRUE(bundle->macho);
  const MachOSlice& slice = bundle->macho->slices.front();
  const std::string file = InXcframework(bundle->executable_path);
  std::set<std::string> defined, undefined;
  for (const std::string& line : Lines(Output("llvm-nm --extern-only --defined-only -j '" + file + "'"))) {
    if (!line.empty() && !line.ends_with(".o):")) defined.insert(line);
  }
  for (const std::string& line : Lines(Output("llvm-nm --extern-only --undefined-only -j '" + file + "'"))) {
    if (!line.empty() && !line.ends_with(".o):")) undefined.insert(line);
  }
  std::vector<std::string> imports;
  std::set_difference(undefined.begin(), undefined.end(), defined.begin(), defined.end(), std::back_inserter(imports));
  ASSERT_GT(imports.size(), 100u);
  ASSERT_LT(imports.size(), 20'000u);  // below Limits::max_imported_symbols_kept: all kept
  EXPECT_EQ(slice.imported_symbols, imports);
  EXPECT_EQ(slice.imported_symbol_count, imports.size());
  EXPECT_THAT(imports, Contains("_OBJC_CLASS_$_UIView"));
  size_t classes = 0;
  for (const std::string& name : defined) {
    if (!name.starts_with("_OBJC_CLASS_$_")) continue;
    ++classes;
    EXPECT_THAT(slice.objc_classes, Contains(name.substr(14)));
  }
  EXPECT_GT(classes, 10u);
  EXPECT_THAT(slice.objc_classes, Contains("SLExceptionsHandler"));
  // Swift classes (_TtC18SmartlookAnalytics…) name their module.
  EXPECT_THAT(slice.swift_modules, Contains("SmartlookAnalytics"));
  // The SDK's collection endpoints are among its strings (as strings(1) finds them too).
  EXPECT_THAT(slice.strings, Contains("manager.eu.smartlook.cloud"));
  EXPECT_THAT(Output("strings -n 6 '" + file + "'"), HasSubstr("manager.eu.smartlook.cloud\n"));
}

TEST_F(NpmFrameworksTest, InfoPlistsAndPrivacyManifestsAreWhatPlistlibReads) {
  size_t checked = 0;
  for (const Bundle& bundle : app_->bundles()) {
    if (bundle.kind != "framework") continue;
    ++checked;
    ASSERT_TRUE(bundle.info) << bundle.path;
    const Json info = Plist(InXcframework(bundle.path + "/Info.plist"));
    EXPECT_EQ(bundle.info->format, "binary") << bundle.path;  // Xcode writes a built bundle's plist binary
    EXPECT_EQ(bundle.info->bundle_id, info["CFBundleIdentifier"]) << bundle.path;
    EXPECT_EQ(bundle.info->bundle_id, "com.smartlook.sdk.SmartlookAnalytics");
    EXPECT_EQ(bundle.info->short_version, info["CFBundleShortVersionString"]) << bundle.path;
    EXPECT_EQ(bundle.info->version, info["CFBundleVersion"]) << bundle.path;
    EXPECT_EQ(bundle.info->executable, info["CFBundleExecutable"]) << bundle.path;
    EXPECT_EQ(bundle.info->package_type, "FMWK");
    EXPECT_EQ(bundle.info->minimum_os, info["MinimumOSVersion"]) << bundle.path;
    EXPECT_EQ(bundle.info->supported_platforms, info["CFBundleSupportedPlatforms"].get<std::vector<std::string>>());

    ASSERT_TRUE(bundle.privacy_manifest) << bundle.path;
    const PrivacyManifest& manifest = *bundle.privacy_manifest;
    EXPECT_EQ(manifest.path, bundle.path + "/PrivacyInfo.xcprivacy");
    const Json privacy = Plist(InXcframework(manifest.path));
    ASSERT_TRUE(manifest.tracking);
    EXPECT_EQ(*manifest.tracking, privacy["NSPrivacyTracking"].get<bool>());
    EXPECT_EQ(manifest.tracking_domains,
              privacy.value("NSPrivacyTrackingDomains", Json::array()).get<std::vector<std::string>>());
    const Json& collected = privacy["NSPrivacyCollectedDataTypes"];
    ASSERT_EQ(manifest.collected_data.size(), collected.size());
    for (size_t i = 0; i < collected.size(); ++i) {
      EXPECT_EQ(manifest.collected_data[i].type, collected[i]["NSPrivacyCollectedDataType"]);
      EXPECT_EQ(manifest.collected_data[i].linked, collected[i]["NSPrivacyCollectedDataTypeLinked"]);
      EXPECT_EQ(manifest.collected_data[i].tracking, collected[i]["NSPrivacyCollectedDataTypeTracking"]);
      EXPECT_EQ(manifest.collected_data[i].purposes,
                collected[i]["NSPrivacyCollectedDataTypePurposes"].get<std::vector<std::string>>());
    }
    const Json& apis = privacy["NSPrivacyAccessedAPITypes"];
    ASSERT_EQ(manifest.accessed_apis.size(), apis.size());
    for (size_t i = 0; i < apis.size(); ++i) {
      EXPECT_EQ(manifest.accessed_apis[i].category, apis[i]["NSPrivacyAccessedAPIType"]);
      EXPECT_EQ(manifest.accessed_apis[i].reasons,
                apis[i]["NSPrivacyAccessedAPITypeReasons"].get<std::vector<std::string>>());
    }
  }
  EXPECT_EQ(checked, 4u);
  // What an analyst reads from it: no tracking declared, a user ID and product interaction
  // collected (not linked), for analytics among other purposes.
  const PrivacyManifest& manifest = *app_->bundles()[1].privacy_manifest;
  EXPECT_FALSE(*manifest.tracking);
  EXPECT_TRUE(manifest.tracking_domains.empty());
  ASSERT_EQ(manifest.collected_data.size(), 3u);
  EXPECT_EQ(manifest.collected_data[0].type, "NSPrivacyCollectedDataTypeUserID");
  EXPECT_THAT(manifest.collected_data[2].purposes, Contains("NSPrivacyCollectedDataTypePurposeAnalytics"));
}

// The xcframework's own signature: codesign's detached form, an Apple Development certificate of
// Smartlook's team (expired today; valid when it signed), over a CodeDirectory that hashes the
// xcframework's Info.plist (and, in special slots, the requirements and CodeResources).
TEST_F(NpmFrameworksTest, TheXcframeworkIsSignedByItsVendorAndOpensslAgrees) {
  ASSERT_TRUE(app_->main().signature) << app_->main().signature_error;
  EXPECT_TRUE(app_->main().signature_detached);
  const CodeSignature& s = *app_->main().signature;
  EXPECT_TRUE(s.has_cms);
  EXPECT_FALSE(s.adhoc);
  EXPECT_TRUE(s.cms_verifies) << s.cms_error;
  EXPECT_EQ(s.team_id, "5PM7GT7WGW");
  EXPECT_EQ(s.organization, "Smartlook.com, s.r.o.");
  EXPECT_EQ(s.certificate_kind, "Apple Development");
  EXPECT_TRUE(s.chain_verified) << s.chain_note;
  EXPECT_EQ(s.chain_anchor, "Apple Root CA");
  ASSERT_TRUE(s.signing_time);
  EXPECT_EQ(s.chain_checked_at, *s.signing_time);
  ASSERT_EQ(s.code_directories.size(), 2u);
  for (const CodeDirectory& cd : s.code_directories) {
    EXPECT_EQ(cd.identifier, "SmartlookAnalytics");
    EXPECT_EQ(cd.team_id, "5PM7GT7WGW");
    EXPECT_EQ(cd.code_slots, 1u);
    EXPECT_EQ(cd.pages_checked, 1u) << cd.hash_type;  // the Info.plist, one "page" (page size 0)
    EXPECT_TRUE(cd.pages_match()) << cd.hash_type;
  }

  const std::string signature_dir = InXcframework("_CodeSignature/");
  const std::string certs =
      Output("openssl pkcs7 -inform DER -in '" + signature_dir + "CodeSignature' -print_certs -noout");
  EXPECT_THAT(certs, HasSubstr("OU = 5PM7GT7WGW, O = \"Smartlook.com, s.r.o.\""));
  EXPECT_THAT(certs, HasSubstr("CN = Apple Development: "));
  EXPECT_THAT(certs, HasSubstr("issuer=CN = Apple Worldwide Developer Relations Certification Authority, OU = G3"));
  // The CMS signature is over the primary CodeDirectory file…
  const std::string verify = "openssl cms -verify -binary -purpose any -ignore_critical -inform DER -in '" +
                             signature_dir + "CodeSignature' -out /dev/null -content '" + signature_dir;
  EXPECT_EQ(ExitCode(verify + "CodeDirectory' -noverify"), 0);
  EXPECT_NE(ExitCode(verify + "CodeRequirements' -noverify"), 0);
  // … and its chain reaches data/apple-roots.pem at signing time (today the certificate has expired).
  const std::string at_signing = " -attime " + std::to_string(*s.signing_time);
  EXPECT_EQ(ExitCode(verify + "CodeDirectory' -CAfile " + kRoots + at_signing), 0);
  EXPECT_THAT(Output(verify + "CodeDirectory' -CAfile " + kRoots), HasSubstr("certificate has expired"));
  // cdhash of the primary (SHA-1) directory, and its code slot is the SHA-1 of Info.plist.
  const CodeDirectory& primary = s.code_directories.front();
  EXPECT_EQ(primary.hash_type, "sha1");
  EXPECT_THAT(Output("openssl dgst -sha1 -r '" + signature_dir + "CodeDirectory'"), HasSubstr(primary.cdhash));
  const std::string info_sha1 = Output("openssl dgst -sha1 -r '" + InXcframework("Info.plist") + "'").substr(0, 40);
  const std::string directory = testing::ReadAll(signature_dir + "CodeDirectory");
  std::string last_slot;
  for (unsigned char c : directory.substr(directory.size() - 20)) {
    char hex[3];
    std::snprintf(hex, sizeof hex, "%02x", c);
    last_slot += hex;
  }
  EXPECT_EQ(last_slot, info_sha1);
}

TEST_F(NpmFrameworksTest, TheSimulatorFrameworkIsAdHocSignedOverItsStaticLibrary) {
  const Bundle* bundle = FindBundle(*app_, "ios-arm64_x86_64-simulator/SmartlookAnalytics.framework");
  ASSERT_NE(bundle, nullptr);
  ASSERT_TRUE(bundle->signature) << bundle->signature_error;
  EXPECT_TRUE(bundle->signature_detached);
  const CodeSignature& s = *bundle->signature;
  EXPECT_FALSE(s.has_cms);
  EXPECT_TRUE(s.adhoc);
  EXPECT_TRUE(s.team_id.empty());
  ASSERT_FALSE(s.code_directories.empty());
  const CodeDirectory& primary = s.code_directories.front();
  EXPECT_THAT(primary.flag_names, Contains("adhoc"));
  EXPECT_EQ(primary.code_limit, std::filesystem::file_size(InXcframework(bundle->executable_path)));
  EXPECT_TRUE(primary.pages_match());
  EXPECT_EQ(primary.pages_checked, 1u);
  const std::string signature_dir = InXcframework(bundle->path + "/_CodeSignature/");
  EXPECT_EQ(std::filesystem::file_size(signature_dir + "CodeSignature"), 0u);  // no CMS: ad hoc
  EXPECT_THAT(Output("openssl dgst -" + primary.hash_type + " -r '" + signature_dir + "CodeDirectory'"),
              HasSubstr(primary.cdhash));
  // The device libraries are not signed at all (the xcframework's signature covers them).
  EXPECT_FALSE(FindBundle(*app_, "ios-arm64/SmartlookAnalytics.framework")->signature);
}

TEST_F(NpmFrameworksTest, AChangedCodeDirectoryOrInfoPlistIsCaught) {
  const std::filesystem::path copy = dir_ / "SmartlookAnalytics.xcframework";
  std::filesystem::create_directories(copy / "_CodeSignature");
  for (const char* name :
       {"Info.plist", "_CodeSignature/CodeDirectory", "_CodeSignature/CodeRequirements",
        "_CodeSignature/CodeRequirements-1", "_CodeSignature/CodeResources", "_CodeSignature/CodeSignature"}) {
    std::filesystem::copy_file(InXcframework(name), copy / name);
  }
  {
    std::string directory = testing::ReadAll((copy / "_CodeSignature/CodeDirectory").string());
    directory.back() ^= 0x01;  // the code slot's last byte
    std::ofstream(copy / "_CodeSignature/CodeDirectory", std::ios::binary) << directory;
  }
  auto forged = IosApp::Open(copy.string(), {}, &roots_);
  ASSERT_TRUE(forged.ok()) << forged.status().ToString();
  ASSERT_TRUE(forged->main().signature);
  EXPECT_FALSE(forged->main().signature->cms_verifies);
  EXPECT_FALSE(forged->main().signature->chain_verified);

  std::filesystem::copy_file(InXcframework("_CodeSignature/CodeDirectory"), copy / "_CodeSignature/CodeDirectory",
                             std::filesystem::copy_options::overwrite_existing);
  {
    std::string info = testing::ReadAll((copy / "Info.plist").string());
    const size_t at = info.find("<string>1.0</string>");  // XCFrameworkFormatVersion
    ASSERT_NE(at, std::string::npos);
    info[at + 10] = '1';  // still a valid plist, no longer the signed one
    std::ofstream(copy / "Info.plist", std::ios::binary) << info;
  }
  auto modified = IosApp::Open(copy.string(), {}, &roots_);
  ASSERT_TRUE(modified.ok()) << modified.status().ToString();
  ASSERT_TRUE(modified->main().signature);
  EXPECT_TRUE(modified->main().signature->cms_verifies);
  EXPECT_FALSE(modified->main().signature->code_directories.front().pages_match());
  for (const char* code : {"codesign.page_hash_mismatch", "codesign.special_slot_mismatch"}) {
    EXPECT_TRUE(std::any_of(modified->anomalies().begin(), modified->anomalies().end(), [&](const auto& a) {
      return a.code == code;
    })) << code;
  }
}

}  // namespace
}  // namespace appban::ios
