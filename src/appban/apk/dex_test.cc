// DexFile tests. Expected values come from independent sources: Android's `dexdump` run on the
// same bytes, DEX files assembled here by `smali` from source we write, and DEX files built byte
// by byte from the format specification (SyntheticDex below).
#include "appban/apk/dex.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

namespace appban::apk {
namespace {

namespace fs = std::filesystem;

const fs::path kExamples = "/usr/share/doc/androguard/examples";

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "appban-dex-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

struct PipeCloser {
  void operator()(FILE* pipe) const { pclose(pipe); }
};

// Runs a shell command (arguments are paths we control) and returns its standard output.
std::string RunShell(const std::string& command) {
  std::unique_ptr<FILE, PipeCloser> pipe(popen((command + " 2>/dev/null").c_str(), "r"));
  std::string out;
  if (!pipe) return out;
  std::array<char, 65536> chunk;
  size_t got = 0;
  while ((got = fread(chunk.data(), 1, chunk.size(), pipe.get())) > 0) out.append(chunk.data(), got);
  return out;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteFile(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

Result<DexFile> ParseBytes(std::string_view bytes, Anomalies* anomalies = nullptr, const Limits& limits = {}) {
  return DexFile::Parse("classes.dex", Buffer::CopyOf(AsBytes(bytes)), limits, anomalies);
}

bool HasAnomaly(const Anomalies& anomalies, std::string_view code) {
  return std::any_of(anomalies.begin(), anomalies.end(), [&](const Anomaly& a) { return a.code == code; });
}

std::string AnomalyCodes(const Anomalies& anomalies) {
  std::string out;
  for (const auto& a : anomalies) out += a.code + " (" + a.detail + ") ";
  return out;
}

bool ToolsPresent() { return fs::exists("/usr/bin/dexdump") && fs::exists("/usr/bin/smali") && fs::exists(kExamples); }

// Sets a little-endian u32 inside a byte string.
void PutU32(std::string* bytes, size_t offset, uint32_t value) {
  for (int i = 0; i < 4; ++i) (*bytes)[offset + i] = static_cast<char>((value >> (8 * i)) & 0xff);
}
uint32_t GetU32(std::string_view bytes, size_t offset) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= uint32_t{static_cast<uint8_t>(bytes[offset + i])} << (8 * i);
  return value;
}

// Rewrites the Adler-32 checksum the way dx/d8 do (spec: over everything after the checksum
// field), so a tamper test changes only what it means to change.
void FixChecksum(std::string* bytes) {
  uint32_t sum = static_cast<uint32_t>(
      adler32_z(adler32_z(0, nullptr, 0), reinterpret_cast<const Bytef*>(bytes->data()) + 12, bytes->size() - 12));
  PutU32(bytes, 8, sum);
}

// --- dexdump cross-checks on real DEX files ------------------------------------------------------

struct DexdumpHeader {
  std::map<std::string, uint32_t> sizes;  // "string_ids_size" -> value
  std::vector<std::string> class_descriptors;
  std::vector<std::string> superclasses;
  std::string version;
};

// Reads the header sizes, version and class list out of `dexdump -f` output. Plain prefix
// matching: the output of a 5 MB DEX is tens of MB.
DexdumpHeader ParseDexdumpSummary(const std::string& text) {
  DexdumpHeader out;
  std::istringstream lines(text);
  std::string line;
  auto quoted = [](const std::string& line) {
    size_t open = line.find('\'');
    size_t close = line.rfind('\'');
    return open == std::string::npos || close <= open ? std::string() : line.substr(open + 1, close - open - 1);
  };
  while (std::getline(lines, line)) {
    size_t colon = line.find(" : ");
    if (line.starts_with("  Class descriptor  : ")) {
      out.class_descriptors.push_back(quoted(line));
      out.superclasses.emplace_back();
    } else if (line.starts_with("  Superclass        : ") && !out.superclasses.empty()) {
      out.superclasses.back() = quoted(line);
    } else if (line.starts_with("Opened '") && line.find("DEX version '") != std::string::npos) {
      out.version = line.substr(line.find("DEX version '") + 13, 3);
    } else if (colon != std::string::npos && line[0] != ' ' &&
               line.substr(0, colon).find("_size") != std::string::npos) {
      std::string key = line.substr(0, line.find(' '));
      out.sizes[key] = static_cast<uint32_t>(std::stoul(line.substr(colon + 3)));
    }
  }
  return out;
}

// Every DEX we can find among androguard's examples: standalone files and classes*.dex inside APKs
// (extracted into `dir`), largest APKs included.
std::vector<fs::path> ExampleDexFiles(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& entry : fs::recursive_directory_iterator(kExamples)) {
    if (entry.path().extension() == ".dex") out.push_back(entry.path());
  }
  const char* apks[] = {"tests/com.example.android.wearable.wear.weardrawers.apk", "android/abcore/app-prod-debug.apk",
                        "tests/a2dp.Vol_137.apk", "android/TestsAndroguard/bin/TestActivity.apk"};
  int counter = 0;
  for (const char* apk : apks) {
    for (const char* entry : {"classes.dex", "classes2.dex"}) {
      fs::path target = dir / (std::to_string(counter++) + "-" + entry);
      std::string bytes = RunShell("unzip -p '" + (kExamples / apk).string() + "' " + entry);
      if (bytes.size() < 4) continue;
      WriteFile(target, bytes);
      out.push_back(target);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(DexAndroguard, CountsClassesAndVersionMatchDexdump) {
  if (!ToolsPresent()) GTEST_SKIP() << "dexdump/smali/androguard examples not installed";
  TempDir temp;
  int compared = 0;
  for (const fs::path& path : ExampleDexFiles(temp.path())) {
    SCOPED_TRACE(path.string());
    std::string bytes = ReadFile(path);
    Anomalies anomalies;
    auto dex = ParseBytes(bytes, &anomalies);
    DexdumpHeader expected = ParseDexdumpSummary(RunShell("dexdump -f '" + path.string() + "'"));
    if (expected.sizes.size() < 6) {
      // dexdump refused the file; we must still not crash, and have nothing to compare against.
      continue;
    }
    ASSERT_TRUE(dex.ok()) << dex.status().ToString();
    EXPECT_EQ(dex->string_count(), expected.sizes["string_ids_size"]);
    EXPECT_EQ(dex->type_count(), expected.sizes["type_ids_size"]);
    EXPECT_EQ(dex->proto_count(), expected.sizes["proto_ids_size"]);
    EXPECT_EQ(dex->field_count(), expected.sizes["field_ids_size"]);
    EXPECT_EQ(dex->method_count(), expected.sizes["method_ids_size"]);
    EXPECT_EQ(dex->class_count(), expected.sizes["class_defs_size"]);
    EXPECT_EQ(dex->version(), static_cast<uint32_t>(std::stoul(expected.version)));
    ASSERT_EQ(expected.class_descriptors.size(), dex->class_count());
    for (uint32_t i = 0; i < dex->class_count(); ++i) {
      EXPECT_EQ(dex->ClassDescriptor(i), expected.class_descriptors[i]) << "class_def " << i;
      EXPECT_EQ(dex->SuperclassDescriptor(i), expected.superclasses[i]) << "class_def " << i;
    }
    // dexdump verifies the file (string order included) before dumping it.
    EXPECT_FALSE(HasAnomaly(anomalies, "dex.unsorted_strings")) << AnomalyCodes(anomalies);
    // dexdump -c verifies the checksum; a file it accepts must not be reported as tampered.
    if (RunShell("dexdump -c '" + path.string() + "'").find("Checksum verified") != std::string::npos) {
      EXPECT_FALSE(HasAnomaly(anomalies, "dex.checksum_mismatch")) << AnomalyCodes(anomalies);
    }
    ++compared;
  }
  EXPECT_GE(compared, 10);
}

// Converts a descriptor prototype "(Ljava/lang/String;[II)V" to its shorty "VLLI" (spec:
// ShortyDescriptor), to check the shorty we report against dexdump's full prototype.
std::string ShortyOf(const std::string& prototype) {
  std::string params, shorty;
  size_t i = 1;
  auto one = [&](size_t* pos) {
    char c = prototype[*pos];
    size_t start = *pos;
    while (prototype[*pos] == '[') ++*pos;
    if (prototype[*pos] == 'L') *pos = prototype.find(';', *pos);
    ++*pos;
    return (c == '[' || c == 'L' || *pos - start > 1) ? 'L' : c;
  };
  while (prototype[i] != ')') params += one(&i);
  ++i;
  shorty += one(&i);
  return shorty + params;
}

// One "Lcls;.name:type // method@0012" reference from a `dexdump -d` line.
struct DumpedRef {
  bool is_method = false;
  uint32_t index = 0;
  std::string class_descriptor, name, type;  // type: prototype for methods, field type for fields
};

// Parses the reference at the end of a disassembly line, or nullopt when it has none. Done by hand
// because GCC 12's std::regex trips -Wmaybe-uninitialized in sanitizer builds.
std::optional<DumpedRef> ParseDumpedRef(const std::string& line) {
  DumpedRef out;
  size_t marker = line.find(" // method@");
  out.is_method = marker != std::string::npos;
  if (!out.is_method) marker = line.find(" // field@");
  if (marker == std::string::npos) return std::nullopt;
  size_t start = line.rfind(", ", marker);
  if (start == std::string::npos) return std::nullopt;
  std::string ref = line.substr(start + 2, marker - start - 2);
  // The class part: array dimensions, then "Lname;" or one primitive letter.
  size_t dot = ref.find_first_not_of('[');
  if (dot == std::string::npos) return std::nullopt;
  dot = ref[dot] == 'L' ? ref.find(';', dot) + 1 : dot + 1;
  size_t colon = ref.find(':', dot);
  if (dot == 0 || dot >= ref.size() || ref[dot] != '.' || colon == std::string::npos) return std::nullopt;
  out.class_descriptor = ref.substr(0, dot);
  out.name = ref.substr(dot + 1, colon - dot - 1);
  out.type = ref.substr(colon + 1);
  out.index = static_cast<uint32_t>(std::stoul(line.substr(line.find('@', marker) + 1), nullptr, 16));
  return out;
}

TEST(DexAndroguard, MethodAndFieldRefsMatchDexdumpDisassembly) {
  if (!ToolsPresent()) GTEST_SKIP() << "dexdump/smali/androguard examples not installed";
  int checked_methods = 0, checked_fields = 0;
  for (const char* file : {"tests/okhttp.d8.038.dex", "android/TestsAndroguard/bin/classes.dex",
                           "tests/StringTests.dex", "obfu/classes_tc_proguard.dex"}) {
    fs::path path = kExamples / file;
    SCOPED_TRACE(path.string());
    auto dex = ParseBytes(ReadFile(path));
    ASSERT_TRUE(dex.ok()) << dex.status().ToString();
    std::istringstream lines(RunShell("dexdump -d '" + path.string() + "'"));
    std::string line;
    std::set<std::pair<bool, uint32_t>> seen;
    while (std::getline(lines, line)) {
      auto ref = ParseDumpedRef(line);
      if (!ref || !seen.insert({ref->is_method, ref->index}).second) continue;
      if (ref->is_method) {
        ASSERT_LT(ref->index, dex->method_count()) << line;
        MethodRef method = dex->Method(ref->index);
        EXPECT_EQ(method.class_descriptor, ref->class_descriptor) << line;
        EXPECT_EQ(method.name, ref->name) << line;
        EXPECT_EQ(dex->MethodPrototype(ref->index), ref->type) << line;
        EXPECT_EQ(method.shorty, ShortyOf(ref->type)) << line;
        EXPECT_EQ(dex->TypeDescriptor(dex->MethodClassType(ref->index)), method.class_descriptor);
        ++checked_methods;
      } else {
        ASSERT_LT(ref->index, dex->field_count()) << line;
        FieldRef field = dex->Field(ref->index);
        EXPECT_EQ(field.class_descriptor, ref->class_descriptor) << line;
        EXPECT_EQ(field.name, ref->name) << line;
        EXPECT_EQ(field.type_descriptor, ref->type) << line;
        ++checked_fields;
      }
    }
  }
  EXPECT_GE(checked_methods, 500);
  EXPECT_GE(checked_fields, 100);
}

// The lookups must agree with a brute-force scan of the accessors on real files.
TEST(DexAndroguard, LookupsAgreeWithLinearScan) {
  if (!ToolsPresent()) GTEST_SKIP() << "androguard examples not installed";
  auto dex = ParseBytes(ReadFile(kExamples / "tests/okhttp.d8.038.dex"));
  ASSERT_TRUE(dex.ok()) << dex.status().ToString();
  for (uint32_t i = 0; i < dex->string_count(); i += 97) EXPECT_EQ(dex->FindString(dex->String(i)), i);
  for (uint32_t t = 0; t < dex->type_count(); t += 13) {
    EXPECT_EQ(dex->FindType(dex->TypeDescriptor(t)), t);
    std::vector<uint32_t> expected;
    for (uint32_t m = 0; m < dex->method_count(); ++m) {
      if (dex->Method(m).class_descriptor == dex->TypeDescriptor(t)) expected.push_back(m);
    }
    EXPECT_EQ(dex->MethodsOfType(t), expected) << dex->TypeDescriptor(t);
  }
  EXPECT_FALSE(dex->FindString("no such string \x01"));
  EXPECT_FALSE(dex->FindType("Lno/such/Type;"));
  EXPECT_TRUE(dex->ReferencesMethod("Ljava/lang/Object;", "<init>"));
  EXPECT_FALSE(dex->ReferencesMethod("Ljava/lang/Object;", "noSuchMethod"));
  auto okhttp = dex->ClassesWithPrefix("Lokhttp3/");
  EXPECT_FALSE(okhttp.empty());
  for (uint32_t c : okhttp) EXPECT_TRUE(dex->ClassDescriptor(c).starts_with("Lokhttp3/"));
}

// --- A DEX assembled by smali from source we control ------------------------------------------

constexpr std::string_view kSmaliSource = R"(.class public Lcom/example/ban/Tracker;
.super Landroid/app/Service;
.implements Ljava/lang/Runnable;
.field public static secret:Ljava/lang/String;
.method public run()V
    .registers 3
    const-string v0, "h\u00e9llo \u20ac \ud83d\ude00 https://evil.example/upload"
    const-string v1, "+15551234567"
    invoke-static {v1, v0}, Lcom/example/ban/Tracker;->sendSms(Ljava/lang/String;Ljava/lang/String;)V
    return-void
.end method
.method public static sendSms(Ljava/lang/String;Ljava/lang/String;)V
    .registers 8
    invoke-static {}, Landroid/telephony/SmsManager;->getDefault()Landroid/telephony/SmsManager;
    move-result-object v0
    const/4 v3, 0
    move-object v1, p0
    move-object v2, v3
    move-object v3, p1
    const/4 v4, 0
    const/4 v5, 0
    invoke-virtual/range {v0 .. v5}, Landroid/telephony/SmsManager;->sendTextMessage(Ljava/lang/String;Ljava/lang/String;Ljava/lang/String;Landroid/app/PendingIntent;Landroid/app/PendingIntent;)V
    return-void
.end method
)";

constexpr std::string_view kSmaliHelper = R"(.class Lcom/example/ban/Helper;
.super Ljava/lang/Object;
.method static twice(IJ)[J
    .registers 4
    const/4 v0, 0
    return-object v0
.end method
)";

// Assembles the two classes above at `api` level; returns the DEX bytes ("" if smali failed).
std::string AssembleTrackerDex(const TempDir& temp, int api = 15) {
  WriteFile(temp.path() / "Tracker.smali", kSmaliSource);
  WriteFile(temp.path() / "Helper.smali", kSmaliHelper);
  fs::path out = temp.path() / ("api" + std::to_string(api) + ".dex");
  RunShell("smali assemble --api " + std::to_string(api) + " -o '" + out.string() + "' '" +
           (temp.path() / "Tracker.smali").string() + "' '" + (temp.path() / "Helper.smali").string() + "'");
  return fs::exists(out) ? ReadFile(out) : std::string();
}

TEST(DexSmali, FindsTheClassesMethodsAndStringsWeWrote) {
  if (!ToolsPresent()) GTEST_SKIP() << "smali not installed";
  TempDir temp;
  std::string bytes = AssembleTrackerDex(temp);
  ASSERT_FALSE(bytes.empty());
  Anomalies anomalies;
  auto dex = ParseBytes(bytes, &anomalies);
  ASSERT_TRUE(dex.ok()) << dex.status().ToString();
  EXPECT_TRUE(anomalies.empty()) << AnomalyCodes(anomalies);
  EXPECT_EQ(dex->name(), "classes.dex");
  EXPECT_EQ(dex->size_bytes(), bytes.size());

  ASSERT_EQ(dex->class_count(), 2u);
  std::set<std::string_view> classes = {dex->ClassDescriptor(0), dex->ClassDescriptor(1)};
  EXPECT_EQ(classes, (std::set<std::string_view>{"Lcom/example/ban/Tracker;", "Lcom/example/ban/Helper;"}));
  auto trackers = dex->ClassesWithPrefix("Lcom/example/ban/T");
  ASSERT_EQ(trackers.size(), 1u);
  EXPECT_EQ(dex->ClassDescriptor(trackers[0]), "Lcom/example/ban/Tracker;");
  EXPECT_EQ(dex->SuperclassDescriptor(trackers[0]), "Landroid/app/Service;");
  EXPECT_EQ(dex->ClassesWithPrefix("Lcom/example/").size(), 2u);
  EXPECT_TRUE(dex->ClassesWithPrefix("Lorg/").empty());

  // MUTF-8: BMP characters as UTF-8, the emoji as two 3-byte surrogates (spec: MUTF-8 encoding).
  std::string expected_text = "h\xc3\xa9llo \xe2\x82\xac \xed\xa0\xbd\xed\xb8\x80 https://evil.example/upload";
  auto text = dex->FindString(expected_text);
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(dex->String(*text), expected_text);
  EXPECT_EQ(dex->StringsContaining("evil.example"), std::vector<uint32_t>{*text});
  EXPECT_EQ(dex->StringsContaining("l", 2).size(), 2u);
  EXPECT_TRUE(dex->FindString("+15551234567").has_value());

  EXPECT_TRUE(dex->ReferencesMethod("Landroid/telephony/SmsManager;", "sendTextMessage"));
  EXPECT_TRUE(dex->ReferencesMethod("Landroid/telephony/SmsManager;", "getDefault"));
  EXPECT_FALSE(dex->ReferencesMethod("Landroid/telephony/SmsManager;", "sendDataMessage"));
  auto sms = dex->FindType("Landroid/telephony/SmsManager;");
  ASSERT_TRUE(sms.has_value());
  std::set<std::string> sms_methods;
  for (uint32_t m : dex->MethodsOfType(*sms)) {
    MethodRef method = dex->Method(m);
    EXPECT_EQ(method.class_descriptor, "Landroid/telephony/SmsManager;");
    sms_methods.insert(std::string(method.name) + dex->MethodPrototype(m) + " " + std::string(method.shorty));
  }
  EXPECT_EQ(sms_methods, (std::set<std::string>{"getDefault()Landroid/telephony/SmsManager; L",
                                                "sendTextMessage(Ljava/lang/String;Ljava/lang/String;Ljava/lang/String;"
                                                "Landroid/app/PendingIntent;Landroid/app/PendingIntent;)V VLLLLL"}));
  auto helper = dex->FindType("Lcom/example/ban/Helper;");
  ASSERT_TRUE(helper.has_value());
  auto helper_methods = dex->MethodsOfType(*helper);
  ASSERT_EQ(helper_methods.size(), 1u);
  EXPECT_EQ(dex->MethodPrototype(helper_methods[0]), "(IJ)[J");
  EXPECT_EQ(dex->Method(helper_methods[0]).shorty, "LIJ");

  ASSERT_EQ(dex->field_count(), 1u);
  FieldRef field = dex->Field(0);
  EXPECT_EQ(field.class_descriptor, "Lcom/example/ban/Tracker;");
  EXPECT_EQ(field.name, "secret");
  EXPECT_EQ(field.type_descriptor, "Ljava/lang/String;");
}

TEST(DexSmali, VersionMatchesDexdumpForEachApiLevel) {
  if (!ToolsPresent()) GTEST_SKIP() << "smali not installed";
  TempDir temp;
  for (int api : {15, 24, 26, 28}) {
    std::string bytes = AssembleTrackerDex(temp, api);
    ASSERT_FALSE(bytes.empty()) << api;
    fs::path path = temp.path() / ("api" + std::to_string(api) + ".dex");
    DexdumpHeader expected = ParseDexdumpSummary(RunShell("dexdump -f '" + path.string() + "'"));
    ASSERT_FALSE(expected.version.empty()) << api;
    auto dex = ParseBytes(bytes);
    ASSERT_TRUE(dex.ok()) << dex.status().ToString();
    EXPECT_EQ(dex->version(), static_cast<uint32_t>(std::stoul(expected.version))) << api;
  }
}

// --- Tampering with a real DEX -----------------------------------------------------------------

class DexTamper : public ::testing::Test {
 protected:
  // smali starts a JVM (a second or two), so the pristine DEX is assembled once for the suite.
  static void SetUpTestSuite() {
    if (!ToolsPresent()) return;
    TempDir temp;
    pristine_ = AssembleTrackerDex(temp);
  }
  static void TearDownTestSuite() { pristine_.reset(); }
  void SetUp() override {
    if (!pristine_) GTEST_SKIP() << "smali not installed";
    ASSERT_FALSE(pristine_->empty());
    bytes_ = *pristine_;
  }
  static inline std::optional<std::string> pristine_;
  TempDir temp_;
  std::string bytes_;
};

TEST_F(DexTamper, FlippedChecksumIsAnAnomalyAndTheFileStillParses) {
  bytes_[8] = static_cast<char>(bytes_[8] ^ 0x01);
  Anomalies anomalies;
  auto dex = ParseBytes(bytes_, &anomalies);
  ASSERT_TRUE(dex.ok()) << dex.status().ToString();
  EXPECT_TRUE(HasAnomaly(anomalies, "dex.checksum_mismatch")) << AnomalyCodes(anomalies);
  // dexdump, Android's own tool, agrees the file fails verification.
  fs::path path = temp_.path() / "tampered.dex";
  WriteFile(path, bytes_);
  EXPECT_EQ(RunShell("dexdump -c '" + path.string() + "'").find("Checksum verified"), std::string::npos);
}

TEST_F(DexTamper, ModifiedPayloadBreaksChecksum) {
  size_t at = bytes_.find("+15551234567");
  ASSERT_NE(at, std::string::npos);
  bytes_[at + 1] = '9';
  Anomalies anomalies;
  auto dex = ParseBytes(bytes_, &anomalies);
  ASSERT_TRUE(dex.ok()) << dex.status().ToString();
  EXPECT_TRUE(HasAnomaly(anomalies, "dex.checksum_mismatch")) << AnomalyCodes(anomalies);
  EXPECT_TRUE(dex->FindString("+95551234567").has_value());
}

TEST_F(DexTamper, TruncatedFileIsTruncated) {
  auto dex = ParseBytes(std::string_view(bytes_).substr(0, bytes_.size() - 10));
  ASSERT_FALSE(dex.ok());
  EXPECT_EQ(dex.status().code(), StatusCode::kTruncated) << dex.status().ToString();
  auto header_only = ParseBytes(std::string_view(bytes_).substr(0, 50));
  ASSERT_FALSE(header_only.ok());
  EXPECT_EQ(header_only.status().code(), StatusCode::kTruncated) << header_only.status().ToString();
}

TEST_F(DexTamper, OutOfRangeStringIndexInTypeIdIsCorruption) {
  uint32_t type_ids_offset = GetU32(bytes_, 68);
  uint32_t string_count = GetU32(bytes_, 56);
  PutU32(&bytes_, type_ids_offset + 4, string_count);
  FixChecksum(&bytes_);
  auto dex = ParseBytes(bytes_);
  ASSERT_FALSE(dex.ok());
  EXPECT_EQ(dex.status().code(), StatusCode::kCorruption) << dex.status().ToString();
  EXPECT_NE(dex.status().message().find("type_ids[1].descriptor_idx"), std::string::npos) << dex.status().ToString();
}

TEST_F(DexTamper, MethodIdsPastTheEndIsTruncatedAndNamesTheTable) {
  PutU32(&bytes_, 92, static_cast<uint32_t>(bytes_.size()) - 4);
  FixChecksum(&bytes_);
  auto dex = ParseBytes(bytes_);
  ASSERT_FALSE(dex.ok());
  EXPECT_EQ(dex.status().code(), StatusCode::kTruncated) << dex.status().ToString();
  EXPECT_NE(dex.status().message().find("method_ids table at 0x"), std::string::npos) << dex.status().ToString();
  EXPECT_NE(dex.status().message().find("classes.dex"), std::string::npos) << dex.status().ToString();
}

TEST_F(DexTamper, BadMagicIsNotRecognized) {
  bytes_[0] = 'D';
  auto dex = ParseBytes(bytes_);
  ASSERT_FALSE(dex.ok());
  EXPECT_EQ(dex.status().code(), StatusCode::kNotRecognized);
  EXPECT_EQ(ParseBytes("").status().code(), StatusCode::kNotRecognized);
  EXPECT_EQ(ParseBytes("PK\x03\x04").status().code(), StatusCode::kNotRecognized);
}

TEST_F(DexTamper, HugeCountsFailFastWithoutAllocating) {
  for (size_t count_field : {56, 64, 72, 80, 88, 96}) {
    std::string copy = bytes_;
    PutU32(&copy, count_field, 0xffffffff);
    auto start = std::chrono::steady_clock::now();
    auto dex = ParseBytes(copy);
    auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(dex.ok()) << count_field;
    EXPECT_EQ(dex.status().code(), StatusCode::kTruncated) << dex.status().ToString();
    // Hang guard, not a timing goal (that lives in bench/): reading 2^32 ids would take minutes.
    EXPECT_LT(elapsed, std::chrono::seconds(5));
  }
}

TEST_F(DexTamper, ReverseEndianIsUnsupported) {
  PutU32(&bytes_, 40, 0x78563412);
  auto dex = ParseBytes(bytes_);
  ASSERT_FALSE(dex.ok());
  EXPECT_EQ(dex.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(dex.status().message().find("endian"), std::string::npos);
}

TEST_F(DexTamper, UnknownVersionIsAnAnomalyAndReadAnyway) {
  bytes_[5] = '9';
  bytes_[6] = '9';
  Anomalies anomalies;
  auto dex = ParseBytes(bytes_, &anomalies);
  ASSERT_TRUE(dex.ok()) << dex.status().ToString();
  EXPECT_TRUE(HasAnomaly(anomalies, "dex.unknown_version")) << AnomalyCodes(anomalies);
  EXPECT_EQ(dex->class_count(), 2u);
}

TEST_F(DexTamper, FileSizeFieldLargerThanFileIsTruncatedAndSmallerIsAnomaly) {
  std::string larger = bytes_;
  PutU32(&larger, 32, static_cast<uint32_t>(bytes_.size() + 1));
  EXPECT_EQ(ParseBytes(larger).status().code(), StatusCode::kTruncated);

  std::string padded = bytes_ + std::string(16, '\0');
  Anomalies anomalies;
  auto dex = ParseBytes(padded, &anomalies);
  ASSERT_TRUE(dex.ok()) << dex.status().ToString();
  EXPECT_TRUE(HasAnomaly(anomalies, "dex.trailing_data")) << AnomalyCodes(anomalies);
  EXPECT_FALSE(HasAnomaly(anomalies, "dex.checksum_mismatch")) << AnomalyCodes(anomalies);
}

TEST_F(DexTamper, StringWithoutTerminatorIsCorruption) {
  // Point string 0 at a run of non-zero bytes that reaches the end of the file.
  std::string bytes = bytes_ + "\x05" + "abcde";
  PutU32(&bytes, 32, static_cast<uint32_t>(bytes.size()));
  PutU32(&bytes, GetU32(bytes, 60), static_cast<uint32_t>(bytes_.size()));
  auto dex = ParseBytes(bytes);
  ASSERT_FALSE(dex.ok());
  EXPECT_EQ(dex.status().code(), StatusCode::kCorruption) << dex.status().ToString();
  EXPECT_NE(dex.status().message().find("NUL"), std::string::npos) << dex.status().ToString();
}

TEST_F(DexTamper, OversizedDexHitsTheLimit) {
  Limits limits;
  limits.max_dex_bytes = bytes_.size() - 1;
  auto dex = ParseBytes(bytes_, nullptr, limits);
  EXPECT_EQ(dex.status().code(), StatusCode::kLimitExceeded);
}

TEST_F(DexTamper, EveryTruncationIsAnErrorNeverACrash) {
  for (size_t length = 0; length < bytes_.size(); ++length) {
    std::string cut = bytes_.substr(0, length);
    auto dex = ParseBytes(cut);
    EXPECT_FALSE(dex.ok()) << length;
  }
}

// --- Hand-built DEX files for shapes no compiler writes -----------------------------------------

// Lays out a DEX from the format specification: header, string_ids, type_ids, then string data.
// Only the tables these tests need; the rest stay empty.
std::string SyntheticDex(const std::vector<std::string>& strings, const std::vector<uint32_t>& type_string_indices,
                         uint32_t header_size = 0x70, std::string_view version = "035") {
  std::string out(header_size, '\0');
  out.replace(0, 4, "dex\n");
  out.replace(4, 3, version);
  PutU32(&out, 36, header_size);
  PutU32(&out, 40, 0x12345678);
  uint32_t string_ids = header_size;
  uint32_t type_ids = string_ids + 4 * static_cast<uint32_t>(strings.size());
  uint32_t data = type_ids + 4 * static_cast<uint32_t>(type_string_indices.size());
  out.resize(data);
  for (size_t i = 0; i < strings.size(); ++i) {
    PutU32(&out, string_ids + 4 * i, static_cast<uint32_t>(out.size()));
    out += static_cast<char>(strings[i].size());  // uleb128 of a length < 128
    out += strings[i];
    out += '\0';
  }
  for (size_t i = 0; i < type_string_indices.size(); ++i) PutU32(&out, type_ids + 4 * i, type_string_indices[i]);
  while (out.size() % 4 != 0) out += '\0';
  uint32_t map = static_cast<uint32_t>(out.size());
  out.resize(out.size() + 4 + 3 * 12);
  PutU32(&out, map, 3);
  auto map_item = [&](int n, uint16_t code, uint32_t size, uint32_t offset) {
    size_t at = map + 4 + 12 * n;
    out[at] = static_cast<char>(code);
    PutU32(&out, at + 4, size);
    PutU32(&out, at + 8, offset);
  };
  map_item(0, 0x0000, 1, 0);
  map_item(1, 0x0001, static_cast<uint32_t>(strings.size()), string_ids);
  map_item(2, 0x0002, static_cast<uint32_t>(type_string_indices.size()), type_ids);
  PutU32(&out, 52, map);
  PutU32(&out, 56, static_cast<uint32_t>(strings.size()));
  PutU32(&out, 60, strings.empty() ? 0 : string_ids);
  PutU32(&out, 64, static_cast<uint32_t>(type_string_indices.size()));
  PutU32(&out, 68, type_string_indices.empty() ? 0 : type_ids);
  PutU32(&out, 32, static_cast<uint32_t>(out.size()));
  if (header_size >= 0x78) PutU32(&out, 0x70, static_cast<uint32_t>(out.size()));  // container_size
  FixChecksum(&out);
  return out;
}

TEST(DexSynthetic, WellFormedSyntheticDexParses) {
  Anomalies anomalies;
  auto dex = ParseBytes(SyntheticDex({"LA;", "LB;", "hello"}, {0, 1}), &anomalies);
  ASSERT_TRUE(dex.ok()) << dex.status().ToString();
  EXPECT_EQ(dex->TypeDescriptor(1), "LB;");
  EXPECT_EQ(dex->FindType("LB;"), 1u);
  EXPECT_EQ(dex->FindString("hello"), 2u);
  EXPECT_FALSE(HasAnomaly(anomalies, "dex.checksum_mismatch")) << AnomalyCodes(anomalies);
  EXPECT_FALSE(HasAnomaly(anomalies, "dex.map_mismatch")) << AnomalyCodes(anomalies);
}

TEST(DexSynthetic, UnsortedTablesStillGiveCorrectLookups) {
  Anomalies anomalies;
  auto dex = ParseBytes(SyntheticDex({"Lz/Z;", "La/A;", "Lm/M;"}, {2, 0, 1}), &anomalies);
  ASSERT_TRUE(dex.ok()) << dex.status().ToString();
  EXPECT_TRUE(HasAnomaly(anomalies, "dex.unsorted_strings"));
  EXPECT_EQ(dex->FindString("La/A;"), 1u);
  // type 0 names string 2, type 1 string 0, type 2 string 1.
  EXPECT_EQ(dex->FindType("Lm/M;"), 0u);
  EXPECT_EQ(dex->FindType("Lz/Z;"), 1u);
  EXPECT_EQ(dex->FindType("La/A;"), 2u);
  EXPECT_FALSE(dex->FindType("Lq/Q;"));
}

// The format sorts strings by UTF-16 code units; MUTF-8 writes U+0000 as C0 80, so "\0..." sorts
// before "<init>" although its first byte is larger. Kotlin metadata strings look like this.
TEST(DexSynthetic, EmbeddedNulSortsByUtf16Order) {
  std::string nul_first = std::string("\xc0\x80") + "abc";
  std::string bmp = "\xe2\x82\xac";                     // U+20AC
  std::string surrogates = "\xed\xa0\xbd\xed\xb8\x80";  // U+1F600 as MUTF-8 surrogates
  Anomalies anomalies;
  auto dex = ParseBytes(SyntheticDex({nul_first, "<init>", "LA;", bmp, surrogates}, {2}), &anomalies);
  ASSERT_TRUE(dex.ok()) << dex.status().ToString();
  // U+20AC < U+D83D in UTF-16, so the euro sign sorts before the emoji's surrogates, and the
  // file is in the required order: no anomaly, and every string is found by binary search.
  EXPECT_FALSE(HasAnomaly(anomalies, "dex.unsorted_strings")) << AnomalyCodes(anomalies);
  EXPECT_EQ(dex->FindString(nul_first), 0u);
  EXPECT_EQ(dex->FindString("<init>"), 1u);
  EXPECT_EQ(dex->FindString(bmp), 3u);
  EXPECT_EQ(dex->FindString(surrogates), 4u);
  EXPECT_EQ(dex->FindType("LA;"), 0u);
  EXPECT_FALSE(dex->FindString("abc"));
}

TEST(DexSynthetic, WrongUtf16LengthIsAnAnomaly) {
  std::string bytes = SyntheticDex({"abc"}, {});
  uint32_t data = GetU32(bytes, GetU32(bytes, 60));
  bytes[data] = 9;  // claims 9 UTF-16 units for 3 bytes
  FixChecksum(&bytes);
  Anomalies anomalies;
  auto dex = ParseBytes(bytes, &anomalies);
  ASSERT_TRUE(dex.ok()) << dex.status().ToString();
  EXPECT_TRUE(HasAnomaly(anomalies, "dex.string_length_mismatch")) << AnomalyCodes(anomalies);
  EXPECT_EQ(dex->String(0), "abc");
}

TEST(DexSynthetic, OverlappingStringsCannotMakeParsingQuadratic) {
  // 20000 string ids all naming one 60 KB string: reading each would scan 1.2 GB.
  constexpr uint32_t kIds = 20000;
  std::string grown = SyntheticDex({}, {}).substr(0, 0x70);
  uint32_t string_ids = 0x70, long_string = string_ids + 4 * kIds;
  grown.resize(long_string);
  for (uint32_t i = 0; i < kIds; ++i) PutU32(&grown, string_ids + 4 * i, long_string);
  grown += "\x01";  // uleb128 UTF-16 length (wrong, but the scan is what is tested)
  grown += std::string(60000, 'y');
  grown += '\0';
  PutU32(&grown, 32, static_cast<uint32_t>(grown.size()));
  PutU32(&grown, 52, 0);
  PutU32(&grown, 56, kIds);
  PutU32(&grown, 60, string_ids);
  auto start = std::chrono::steady_clock::now();
  auto dex = ParseBytes(grown);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(dex.ok());
  EXPECT_EQ(dex.status().code(), StatusCode::kLimitExceeded) << dex.status().ToString();
  // Hang guard, not a timing goal: the quadratic scan this budget prevents takes minutes.
  EXPECT_LT(elapsed, std::chrono::seconds(10));
}

TEST(DexSynthetic, SingleDexContainerV41Parses) {
  Anomalies anomalies;
  auto dex = ParseBytes(SyntheticDex({"LA;"}, {0}, 0x78, "041"), &anomalies);
  ASSERT_TRUE(dex.ok()) << dex.status().ToString();
  EXPECT_EQ(dex->version(), 41u);
  EXPECT_TRUE(anomalies.empty()) << AnomalyCodes(anomalies);
}

TEST(DexSynthetic, MultiDexContainerIsReportedAndTheFirstDexRead) {
  std::string first = SyntheticDex({"LA;"}, {0}, 0x78, "041");
  std::string second = SyntheticDex({"LB;"}, {0}, 0x78, "041");
  std::string container = first + second;
  PutU32(&container, 0x70, static_cast<uint32_t>(container.size()));
  Anomalies anomalies;
  auto dex = ParseBytes(container, &anomalies);
  ASSERT_TRUE(dex.ok()) << dex.status().ToString();
  EXPECT_TRUE(HasAnomaly(anomalies, "dex.container_multiple")) << AnomalyCodes(anomalies);
  EXPECT_EQ(dex->TypeDescriptor(0), "LA;");
}

TEST(DexSynthetic, TableInsideHeaderAndBadMapAreAnomalies) {
  std::string bytes = SyntheticDex({"LA;"}, {0});
  PutU32(&bytes, 52, static_cast<uint32_t>(bytes.size()) + 8);  // map past the end
  PutU32(&bytes, 64, 1);
  PutU32(&bytes, 68, 0);  // type_ids at offset 0, inside the header: descriptor_idx = magic bytes
  FixChecksum(&bytes);
  Anomalies anomalies;
  auto dex = ParseBytes(bytes, &anomalies);
  // "dex\n" as a u32 is far beyond the one string, so the index check must catch it.
  ASSERT_FALSE(dex.ok());
  EXPECT_EQ(dex.status().code(), StatusCode::kCorruption) << dex.status().ToString();
  EXPECT_TRUE(HasAnomaly(anomalies, "dex.table_overlaps_header")) << AnomalyCodes(anomalies);
  EXPECT_TRUE(HasAnomaly(anomalies, "dex.bad_map")) << AnomalyCodes(anomalies);
}

}  // namespace
}  // namespace appban::apk
