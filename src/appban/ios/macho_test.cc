#include "appban/ios/macho.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "appban/ios/ios_test_support.h"

namespace appban::ios {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace ::appban::ios::testing;

bool HasAnomaly(const Anomalies& anomalies, const std::string& code) {
  return std::any_of(anomalies.begin(), anomalies.end(), [&](const auto& a) { return a.code == code; });
}

// The executable ld64.lld linked and signed ad hoc (tests/fixtures/ios/build.sh), cross-checked
// with llvm-objdump --macho --private-headers and llvm-nm -u on the same file.
TEST(MachOTest, ReadsTheLinkedFixtureAsLlvmObjdumpDoes) {
  std::string bytes = ReadAll(FixturePath("DemoAdhoc"));
  ASSERT_FALSE(bytes.empty()) << "fixtures missing: run tests/fixtures/ios/build.sh";
  auto macho = ParseMachO(AsBytes(bytes));
  ASSERT_TRUE(macho.ok()) << macho.status().ToString();
  ASSERT_EQ(macho->slices.size(), 1u);
  const MachOSlice& s = macho->slices[0];
  EXPECT_FALSE(macho->fat);
  EXPECT_EQ(s.arch, "arm64");
  EXPECT_EQ(s.file_type, "execute");
  EXPECT_TRUE(s.pie);
  EXPECT_EQ(s.platform, "ios");
  EXPECT_EQ(s.minimum_os, "15.0");
  EXPECT_EQ(s.sdk, "17.0");
  ASSERT_EQ(s.libraries.size(), 4u);
  EXPECT_EQ(s.libraries[2].path, "/System/Library/Frameworks/CoreLocation.framework/CoreLocation");
  EXPECT_EQ(s.libraries[2].kind, "load");
  EXPECT_EQ(s.libraries[3].path, "/System/Library/Frameworks/AdSupport.framework/AdSupport");
  EXPECT_EQ(s.libraries[3].kind, "weak");
  EXPECT_THAT(s.rpaths, ElementsAre("@executable_path/Frameworks"));
  EXPECT_THAT(s.imported_symbols, Contains("_OBJC_CLASS_$_CLLocationManager"));
  EXPECT_THAT(s.imported_symbols, Contains("_OBJC_CLASS_$_ASIdentifierManager"));
  EXPECT_THAT(s.imported_symbols, Contains("_printf"));
  EXPECT_THAT(s.objc_classes, Contains("DemoAppDelegate"));
  EXPECT_THAT(s.strings, Contains("https://api.demo-analytics.example.com/v1/collect"));
  EXPECT_TRUE(s.has_encryption_info);
  EXPECT_FALSE(s.encrypted());
  EXPECT_TRUE(s.code_signature_offset.has_value());
  EXPECT_THAT(s.load_commands, Contains("LC_ENCRYPTION_INFO_64"));
  EXPECT_THAT(s.load_commands, Contains("LC_CODE_SIGNATURE"));
  EXPECT_EQ(s.uuid.size(), 36u);
  EXPECT_TRUE(macho->anomalies.empty());
}

// Debian's llvm-nm, an independent reader, lists the same imports.
TEST(MachOTest, ImportsAgreeWithLlvmNm) {
  const std::string path = FixturePath("DemoFat");
  std::string command = "llvm-nm -u -arch arm64 '" + path + "' 2>/dev/null || llvm-nm-14 -u -arch arm64 '" + path + "'";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  ASSERT_NE(pipe, nullptr);
  std::vector<std::string> expected;
  char line[512];
  while (std::fgets(line, sizeof line, pipe.get()) != nullptr) {
    std::string name(line);
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
    if (!name.empty() && name.back() != ':') expected.push_back(name);
  }
  ASSERT_FALSE(expected.empty()) << "llvm-nm printed nothing";
  std::sort(expected.begin(), expected.end());
  auto macho = ParseMachO(AsBytes(ReadAll(path)));
  ASSERT_TRUE(macho.ok());
  EXPECT_EQ(macho->slices[1].imported_symbols, expected);
}

TEST(MachOTest, ReadsEverySliceOfAUniversalFile) {
  std::string bytes = ReadAll(FixturePath("DemoFat"));
  auto macho = ParseMachO(AsBytes(bytes));
  ASSERT_TRUE(macho.ok()) << macho.status().ToString();
  EXPECT_TRUE(macho->fat);
  ASSERT_EQ(macho->slices.size(), 2u);
  EXPECT_EQ(macho->slices[0].arch, "x86_64");
  EXPECT_EQ(macho->slices[0].platform, "iossimulator");
  EXPECT_EQ(macho->slices[1].arch, "arm64");
  EXPECT_EQ(macho->slices[1].platform, "ios");
  EXPECT_GT(macho->slices[1].offset, 0u);
}

TEST(MachOTest, AnEncryptedBinarySaysWhatCannotBeRead) {
  std::string bytes = ReadAll(FixturePath("DemoEncrypted"));
  auto macho = ParseMachO(AsBytes(bytes));
  ASSERT_TRUE(macho.ok()) << macho.status().ToString();
  const MachOSlice& s = macho->slices[0];
  EXPECT_TRUE(s.encrypted());
  EXPECT_EQ(s.crypt_id, 1u);
  EXPECT_THAT(s.unreadable_sections, Contains("__TEXT,__cstring"));
  EXPECT_TRUE(s.strings.empty());
  // The symbol table lives in __LINKEDIT, outside the encrypted range: imports stay readable.
  EXPECT_THAT(s.imported_symbols, Contains("_OBJC_CLASS_$_CLLocationManager"));
}

TEST(MachOTest, EveryTruncationOfTheFixtureIsAnErrorOrReadsWithinBounds) {
  std::string bytes = ReadAll(FixturePath("DemoFat"));
  ASSERT_FALSE(bytes.empty());
  for (size_t size = 0; size < bytes.size(); size += (size < 4096 ? 1 : 997)) {
    auto macho = ParseMachO(AsBytes(std::string_view(bytes).substr(0, size)));
    if (macho.ok()) {
      EXPECT_FALSE(macho->slices.empty());
    }
  }
}

TEST(MachOTest, ReadsLoadCommandsOfAHandBuiltBinary) {
  std::string version;
  PutLE(&version, 2, 4);           // platform ios
  PutLE(&version, 0x000f0200, 4);  // 15.2
  PutLE(&version, 0x00110000, 4);  // 17.0
  PutLE(&version, 0, 4);
  std::string min;
  PutLE(&min, 0x000c0000, 4);
  PutLE(&min, 0x000d0000, 4);
  std::string encryption;
  PutLE(&encryption, 0x4000, 4);
  PutLE(&encryption, 0x1000, 4);
  PutLE(&encryption, 1, 4);
  PutLE(&encryption, 0, 4);
  std::string bytes = ThinMachO(
      {Command(0x32, version), Command(0x25, min), Command(0x2c, encryption),
       DylibCommand(0x80000018, "/usr/lib/libz.1.dylib"),
       DylibCommand(0x8000001f, "@rpath/Reexported.framework/Reexported"), DylibCommand(0xd, "@rpath/Me.framework/Me")},
      6);
  auto macho = ParseMachO(AsBytes(bytes));
  ASSERT_TRUE(macho.ok()) << macho.status().ToString();
  const MachOSlice& s = macho->slices[0];
  EXPECT_EQ(s.file_type, "dylib");
  EXPECT_EQ(s.minimum_os, "15.2");  // LC_BUILD_VERSION wins over LC_VERSION_MIN_IPHONEOS
  EXPECT_EQ(s.install_name, "@rpath/Me.framework/Me");
  ASSERT_EQ(s.libraries.size(), 2u);
  EXPECT_EQ(s.libraries[0].kind, "weak");
  EXPECT_EQ(s.libraries[1].kind, "reexport");
  EXPECT_TRUE(s.encrypted());
}

TEST(MachOTest, MalformedHeadersAreClearErrors) {
  std::string ok = ThinMachO({DylibCommand(0xc, "/usr/lib/libSystem.B.dylib")});
  struct Case {
    std::string bytes;
    StatusCode code;
    std::string message;
  };
  std::string past_end = ok;
  past_end[32 + 4] = static_cast<char>(0xf0);  // cmdsize of the first command: 240 bytes
  std::vector<Case> cases = {
      {std::string("\x7f"
                   "ELF\x02\x01\x01\x00",
                   8),
       StatusCode::kNotRecognized, "no Mach-O or universal magic"},
      {ok.substr(0, 20), StatusCode::kTruncated, "header needs 28 bytes"},
      {ThinMachO({}, 2, 100000), StatusCode::kLimitExceeded, "max_load_commands"},
      {ThinMachO({}, 2, 1, 4096), StatusCode::kTruncated, "run past the end of the slice"},
      {past_end, StatusCode::kCorruption, "runs past the"},
      {ThinMachO({Command(0x19, std::string(56, '\0') + std::string("\xff\xff\x00\x00", 4) + std::string(4, '\0'))}),
       StatusCode::kCorruption, "sections, more than its"},
  };
  for (const Case& c : cases) {
    auto result = ParseMachO(AsBytes(c.bytes));
    ASSERT_FALSE(result.ok()) << c.message;
    EXPECT_EQ(result.status().code(), c.code) << result.status().ToString();
    EXPECT_THAT(result.status().message(), HasSubstr(c.message));
  }
}

TEST(MachOTest, UniversalHeaderTricksAreAnomaliesOrErrors) {
  std::string slice = ThinMachO({DylibCommand(0xc, "/usr/lib/libSystem.B.dylib")});
  auto fat = [&](std::vector<std::pair<uint32_t, uint32_t>> ranges, uint32_t count) {
    std::string out;
    PutBE(&out, 0xcafebabe, 4);
    PutBE(&out, count, 4);
    for (auto [offset, size] : ranges) {
      PutBE(&out, 0x0100000c, 4);
      PutBE(&out, 0, 4);
      PutBE(&out, offset, 4);
      PutBE(&out, size, 4);
      PutBE(&out, 12, 4);
    }
    out.resize(4096, '\0');
    out += slice;
    return out;
  };
  // Two slices over the same bytes: read, but flagged.
  auto overlapping = ParseMachO(AsBytes(fat({{4096, uint32_t(slice.size())}, {4096, uint32_t(slice.size())}}, 2)));
  ASSERT_TRUE(overlapping.ok()) << overlapping.status().ToString();
  EXPECT_TRUE(HasAnomaly(overlapping->anomalies, "macho.overlapping_slices"));
  // One slice past the end, one good: the good one is read, the other is an anomaly.
  auto partial = ParseMachO(AsBytes(fat({{4096, uint32_t(slice.size())}, {9000, 100}}, 2)));
  ASSERT_TRUE(partial.ok());
  EXPECT_EQ(partial->slices.size(), 1u);
  EXPECT_TRUE(HasAnomaly(partial->anomalies, "macho.unreadable_slice"));
  // Only a slice past the end: an error.
  auto none = ParseMachO(AsBytes(fat({{9000, 100}}, 1)));
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.status().message(), HasSubstr("runs past the file"));
  auto many = ParseMachO(AsBytes(fat({}, 40)));
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.status().code(), StatusCode::kLimitExceeded);
  // A Java class file shares the magic; it is not taken for a universal binary.
  EXPECT_FALSE(LooksLikeMachO(AsBytes(std::string("\xca\xfe\xba\xbe\x00\x00\x00\x34", 8))));
}

// A static library as Apple's libtool writes it: "!<arch>\n", a ranlib index, members with BSD
// long names ("#1/LEN", the name ahead of the data) padded to an even size.
std::string ArchiveMember(const std::string& name, const std::string& data) {
  char header[61];
  std::snprintf(header, sizeof header, "#1/%-13zu%-12d%-6d%-6d%-8o%-10zu`\n", name.size(), 0, 0, 0, 0644,
                name.size() + data.size());
  std::string out = std::string(header, 60) + name + data;
  if (out.size() % 2 != 0) out.push_back('\n');
  return out;
}
std::string LinkerOption(const std::vector<std::string>& words) {
  std::string payload;
  PutLE(&payload, words.size(), 4);
  for (const auto& word : words) payload += word + '\0';
  return Command(0x2d, payload);
}
std::string BuildVersion(uint32_t platform, uint32_t minos) {
  std::string payload;
  for (uint32_t v : {platform, minos, minos, 0u}) PutLE(&payload, v, 4);
  return Command(0x32, payload);
}

TEST(MachOTest, AStaticLibraryIsOneSliceWithItsObjectsFactsTogether) {
  const std::string a = ThinMachO({BuildVersion(2, 0xd0000), LinkerOption({"-framework", "UIKit"})}, 1);
  const std::string b = ThinMachO({BuildVersion(2, 0xd0000), LinkerOption({"-framework", "AdSupport", "-lz"}),
                                   LinkerOption({"-framework", "UIKit"})},
                                  1);
  const std::string archive = "!<arch>\n" + ArchiveMember("__.SYMDEF SORTED", std::string(8, '\0')) +
                              ArchiveMember("A.o", a) + ArchiveMember("B_with_a_long_name.o", b);
  auto macho = ParseMachO(AsBytes(archive));
  ASSERT_TRUE(macho.ok()) << macho.status().ToString();
  ASSERT_EQ(macho->slices.size(), 1u);
  const MachOSlice& s = macho->slices[0];
  EXPECT_EQ(s.file_type, "static-library");
  EXPECT_EQ(s.archive_members, 2u);
  EXPECT_EQ(s.arch, "arm64");
  EXPECT_EQ(s.platform, "ios");
  EXPECT_EQ(s.minimum_os, "13.0");
  std::vector<std::string> libraries;
  for (const auto& library : s.libraries) libraries.push_back(library.path + " " + library.kind);
  EXPECT_THAT(libraries, ElementsAre("AdSupport.framework/AdSupport autolink", "UIKit.framework/UIKit autolink",
                                     "libz.dylib autolink"));
  EXPECT_TRUE(macho->anomalies.empty());

  // Members built for different minimum OS versions: said, the first one's kept.
  const std::string c = ThinMachO({BuildVersion(2, 0xf0000)}, 1);
  auto mixed = ParseMachO(AsBytes(archive + ArchiveMember("C.o", c)));
  ASSERT_TRUE(mixed.ok());
  EXPECT_EQ(mixed->slices[0].minimum_os, "13.0");
  EXPECT_TRUE(HasAnomaly(mixed->anomalies, "macho.archive_platforms_differ"));

  // Hostile: every truncation is an error or an anomaly, never a read past the end.
  for (size_t size = 0; size < archive.size(); ++size) {
    auto cut = ParseMachO(AsBytes(std::string_view(archive).substr(0, size)));
    if (cut.ok()) {
      EXPECT_LE(cut->slices[0].archive_members, 2u);
    }
  }
  std::string bad_size = archive;
  bad_size.replace(8 + 48, 10, "99999999  ");
  EXPECT_FALSE(ParseMachO(AsBytes(bad_size)).ok());
  Limits limits;
  limits.max_archive_members = 1;
  auto limited = ParseMachO(AsBytes(archive), limits);
  ASSERT_FALSE(limited.ok());
  EXPECT_THAT(limited.status().message(), HasSubstr("Limits::max_archive_members"));
}

}  // namespace
}  // namespace appban::ios
