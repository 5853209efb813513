// End-to-end tests of `appban inspect`: the real binary on real APKs (the fixtures built by
// tests/fixtures/build.sh and the examples Debian's androguard ships), checked field by field
// against what Android's own tools say about the same files: `aapt dump badging` (libandroidfw's
// manifest and resource parsers), `apksigner verify --print-certs -v` and `dexdump -f`. Expected
// values come from those tools' output, parsed here, or from fixture sources this repository
// controls (tests/fixtures/apps/*), never from appban itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace appban::testing {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// ---- running appban -------------------------------------------------------------------------

// Every JSON document `appban inspect --json` printed, in order.
std::vector<Json> ParseDocuments(const std::string& out) {
  std::vector<Json> docs;
  std::istringstream in(out);
  while ((in >> std::ws).peek() != std::char_traits<char>::eof()) {
    Json doc;
    in >> doc;
    docs.push_back(std::move(doc));
  }
  return docs;
}

// Inspects one file that must be read; returns its document (a null Json after a test failure).
Json Inspect(const std::string& path) {
  CommandResult run = RunCommand({AppbanBinary(), "inspect", "--json", path});
  EXPECT_EQ(run.exit_code, 0) << "appban inspect " << path << " failed:\n" << run.err;
  EXPECT_EQ(run.err, "");
  if (run.exit_code != 0) return Json();
  std::vector<Json> docs;
  try {
    docs = ParseDocuments(run.out);
  } catch (const Json::exception& e) {
    ADD_FAILURE() << "output is not JSON: " << e.what() << "\n" << run.out;
    return Json();
  }
  EXPECT_EQ(docs.size(), 1u);
  if (docs.size() != 1) return Json();
  EXPECT_EQ(docs[0].value("schema", ""), "appban.inspect/1");
  return docs[0];
}

std::set<std::string> AnomalyCodes(const Json& doc) {
  std::set<std::string> codes;
  for (const Json& anomaly : doc.at("anomalies")) codes.insert(anomaly.at("code").get<std::string>());
  return codes;
}

std::string Joined(const std::set<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// ---- aapt dump badging ----------------------------------------------------------------------

// (std::regex is avoided: libstdc++'s regex trips -Werror in the sanitizer build.)

bool StartsWith(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

// Every '...' quoted value of a line, in order.
std::vector<std::string> QuotedValues(const std::string& line) {
  std::vector<std::string> values;
  for (size_t open = line.find('\''); open != std::string::npos; open = line.find('\'', open)) {
    size_t close = line.find('\'', open + 1);
    if (close == std::string::npos) break;
    values.push_back(line.substr(open + 1, close - open - 1));
    open = close + 1;
  }
  return values;
}

// name='value' pairs of one badging line.
std::map<std::string, std::string> QuotedAttributes(const std::string& line) {
  std::map<std::string, std::string> out;
  for (size_t at = line.find("='"); at != std::string::npos; at = line.find("='", at)) {
    size_t key_start = at;
    while (key_start > 0 && (std::isalnum(static_cast<unsigned char>(line[key_start - 1])) ||
                             line[key_start - 1] == '_' || line[key_start - 1] == '-')) {
      --key_start;
    }
    size_t close = line.find('\'', at + 2);
    if (close == std::string::npos) break;
    out[line.substr(key_start, at - key_start)] = line.substr(at + 2, close - at - 2);
    at = close + 1;
  }
  return out;
}

// The value of a "key:'value'" line.
std::string SingleQuoted(const std::string& line) {
  auto first = line.find('\'');
  auto last = line.rfind('\'');
  return first == std::string::npos || last <= first ? "" : line.substr(first + 1, last - first - 1);
}

std::optional<int> ToInt(const std::string& text) {
  if (text.empty()) return std::nullopt;
  return std::stoi(text);
}

struct Badging {
  std::string package;
  std::optional<int> version_code;
  std::string version_name;
  std::optional<int> compile_sdk;
  std::optional<int> min_sdk;
  std::optional<int> target_sdk;
  std::optional<std::string> label;   // application-label (default locale)
  std::set<std::string> permissions;  // requested (uses-permission and -sdk-23), implied ones removed
  std::set<std::string> sdk23_permissions;
  std::map<std::string, int> permission_max_sdk;
  // uses-implied-permission: name -> "reason|maxSdkVersion" ("" when none)
  std::map<std::string, std::string> implied_permissions;
  std::set<std::string> native_abis;
  bool debuggable = false;
};

// `aapt dump badging`, or nullopt when aapt cannot read the file (then there is nothing to
// compare with: appban is allowed to be more lenient than aapt).
std::optional<Badging> DumpBadging(const std::string& apk) {
  CommandResult run = RunCommand({"aapt", "dump", "badging", apk});
  if (run.exit_code != 0 || run.out.rfind("package:", 0) != 0) return std::nullopt;
  Badging badging;
  std::set<std::string> requested, implied;
  std::istringstream lines(run.out);
  for (std::string line; std::getline(lines, line);) {
    auto starts = [&](const char* prefix) { return line.rfind(prefix, 0) == 0; };
    if (starts("package:")) {
      auto attrs = QuotedAttributes(line);
      badging.package = attrs["name"];
      badging.version_code = ToInt(attrs["versionCode"]);
      badging.version_name = attrs["versionName"];
      badging.compile_sdk = ToInt(attrs["compileSdkVersion"]);
    } else if (starts("sdkVersion:")) {
      badging.min_sdk = ToInt(SingleQuoted(line));
    } else if (starts("targetSdkVersion:")) {
      badging.target_sdk = ToInt(SingleQuoted(line));
    } else if (starts("application-label:")) {
      badging.label = SingleQuoted(line);
    } else if (starts("uses-permission:") || starts("uses-permission-sdk-23:")) {
      auto attrs = QuotedAttributes(line);
      requested.insert(attrs["name"]);
      if (starts("uses-permission-sdk-23:")) badging.sdk23_permissions.insert(attrs["name"]);
      if (!attrs["maxSdkVersion"].empty())
        badging.permission_max_sdk[attrs["name"]] = std::stoi(attrs["maxSdkVersion"]);
    } else if (starts("uses-implied-permission:")) {
      auto attrs = QuotedAttributes(line);
      implied.insert(attrs["name"]);
      badging.implied_permissions[attrs["name"]] = attrs["reason"] + "|" + attrs["maxSdkVersion"];
    } else if (starts("native-code:")) {
      for (const auto& abi : QuotedValues(line)) badging.native_abis.insert(abi);
    } else if (line == "application-debuggable") {
      badging.debuggable = true;
    }
  }
  // aapt lists permissions that older platforms grant implicitly as if requested, each followed
  // by a uses-implied-permission line; the manifest does not hold them.
  for (const auto& name : requested) {
    if (!implied.count(name)) badging.permissions.insert(name);
  }
  for (const auto& name : implied) badging.permission_max_sdk.erase(name);
  return badging;
}

template <typename T>
Json OrNull(const std::optional<T>& value) {
  return value ? Json(*value) : Json(nullptr);
}

// Every fact `aapt dump badging` reports, compared with appban's document.
void ExpectMatchesBadging(const Json& doc, const Badging& badging) {
  const Json& app = doc.at("app");
  EXPECT_EQ(app.at("package"), badging.package);
  EXPECT_EQ(app.at("version_code"), OrNull(badging.version_code));
  // aapt prints versionName='' whether the attribute is empty or absent; appban says null for absent.
  if (badging.version_name.empty() && app.at("version_name").is_null()) {
  } else {
    EXPECT_EQ(app.at("version_name"), badging.version_name);
  }
  if (badging.compile_sdk) {
    EXPECT_EQ(app.at("compile_sdk"), *badging.compile_sdk);
  }
  // aapt prints sdkVersion/targetSdkVersion only when the manifest has them.
  if (badging.min_sdk) {
    EXPECT_EQ(app.at("min_sdk"), *badging.min_sdk);
  }
  if (badging.target_sdk) {
    EXPECT_EQ(app.at("target_sdk"), *badging.target_sdk);
  }
  if (badging.label) {
    EXPECT_EQ(app.at("label"), *badging.label);
  }

  std::set<std::string> permissions, sdk23;
  std::map<std::string, int> max_sdk;
  for (const Json& p : app.at("permissions")) {
    const std::string name = p.at("name");
    permissions.insert(name);
    if (p.at("sdk23_only").get<bool>()) sdk23.insert(name);
    if (!p.at("max_sdk").is_null()) max_sdk[name] = p.at("max_sdk").get<int>();
  }
  EXPECT_EQ(permissions, badging.permissions);
  EXPECT_EQ(sdk23, badging.sdk23_permissions);
  EXPECT_EQ(max_sdk, badging.permission_max_sdk);

  // Implied permissions, where aapt (Android 10) covers them: the targetSdk < 4 pair,
  // READ_EXTERNAL_STORAGE and the call-log splits. Newer splits are appban's alone.
  std::map<std::string, std::string> implied;
  for (const Json& p : app.at("implied_permissions")) {
    static const std::set<std::string> kAaptCovers = {
        "android.permission.WRITE_EXTERNAL_STORAGE", "android.permission.READ_PHONE_STATE",
        "android.permission.READ_EXTERNAL_STORAGE", "android.permission.READ_CALL_LOG",
        "android.permission.WRITE_CALL_LOG"};
    if (!kAaptCovers.count(p.at("name"))) continue;
    implied[p.at("name")] = p.at("reason").get<std::string>() + "|" +
                            (p.at("max_sdk").is_null() ? "" : std::to_string(p.at("max_sdk").get<int>()));
  }
  EXPECT_EQ(implied, badging.implied_permissions);

  std::set<std::string> abis;
  for (const Json& abi : app.at("native_abis")) abis.insert(abi.get<std::string>());
  EXPECT_EQ(abis, badging.native_abis);
  EXPECT_EQ(app.at("flags").at("debuggable").get<bool>(), badging.debuggable);
}

// ---- apksigner verify -----------------------------------------------------------------------

struct SignerFacts {
  std::string dn;
  std::string sha256;
};
struct Verification {
  bool verifies = false;
  std::map<std::string, bool> schemes;  // "v1" -> verified
  std::vector<SignerFacts> signers;
};

Verification VerifyWithApksigner(const std::string& apk) {
  CommandResult run = RunCommand({"apksigner", "verify", "--print-certs", "-v", apk});
  // Without a v1 signature apksigner refuses a package whose minSdkVersion predates v2 (API 24);
  // such a package is still signed, for Android 7.0 and later: ask about those versions.
  if ((run.out + run.err).find("Missing META-INF/MANIFEST.MF") != std::string::npos) {
    run = RunCommand({"apksigner", "verify", "--min-sdk-version", "24", "--print-certs", "-v", apk});
  }
  Verification result;
  std::istringstream lines(run.out);
  for (std::string line; std::getline(lines, line);) {
    if (line == "Verifies") result.verifies = true;
    // "Verified using v2 scheme (APK Signature Scheme v2): true"
    if (StartsWith(line, "Verified using v")) {
      std::string scheme = line.substr(15, line.find(' ', 15) - 15);
      result.schemes[scheme] = line.size() > 6 && line.substr(line.size() - 6) == ": true";
    }
    // "Signer #1 certificate DN: CN=..." and "Signer #1 certificate SHA-256 digest: 0a1b..."
    if (StartsWith(line, "Signer #")) {
      size_t index = std::stoul(line.substr(8)) - 1;
      for (const std::string field : {" certificate DN: ", " certificate SHA-256 digest: "}) {
        size_t at = line.find(field);
        if (at == std::string::npos) continue;
        if (result.signers.size() <= index) result.signers.resize(index + 1);
        std::string value = line.substr(at + field.size());
        (field == " certificate DN: " ? result.signers[index].dn : result.signers[index].sha256) = value;
      }
    }
  }
  return result;
}

// The RDNs of a DN, without the separator spacing (apksigner prints "CN=a, O=b", RFC 2253 "CN=a,O=b").
std::vector<std::string> Rdns(const std::string& dn) {
  std::vector<std::string> rdns;
  std::string current;
  for (size_t i = 0; i < dn.size(); ++i) {
    if (dn[i] == '\\' && i + 1 < dn.size()) {
      current += dn.substr(i, 2);
      ++i;
    } else if (dn[i] == ',') {
      rdns.push_back(current);
      current.clear();
      while (i + 1 < dn.size() && dn[i + 1] == ' ') ++i;
    } else {
      current += dn[i];
    }
  }
  rdns.push_back(current);
  return rdns;
}

std::string RdnValue(const std::string& dn, const std::string& key) {
  for (const auto& rdn : Rdns(dn)) {
    if (rdn.rfind(key + "=", 0) == 0) return rdn.substr(key.size() + 1);
  }
  return "";
}

// Signers and schemes of a package apksigner verifies, compared with appban's document.
void ExpectMatchesApksigner(const Json& doc, const Verification& verification) {
  const Json& app = doc.at("app");
  const Json& signing = app.at("signing");
  for (const char* scheme : {"v1", "v2", "v3"}) {
    ASSERT_TRUE(verification.schemes.count(scheme)) << "apksigner printed no line for " << scheme;
    EXPECT_EQ(signing.at(scheme).get<bool>(), verification.schemes.at(scheme)) << scheme;
  }
  bool v1_only = verification.schemes.at("v1") && !verification.schemes.at("v2") && !verification.schemes.at("v3");
  EXPECT_EQ(signing.at("v1_only").get<bool>(), v1_only);

  // apksigner prints the signers of the newest scheme it verified (after a key rotation the v1/v2
  // signers are the old key, which appban lists as signers of their own).
  std::string newest;
  for (const char* scheme : {"v1", "v2", "v3"}) {
    if (verification.schemes.at(scheme)) newest = scheme;
  }
  std::set<std::string> newest_signers, expected_signers;
  for (const Json& s : app.at("signers")) {
    for (const Json& scheme : s.at("schemes")) {
      if (scheme == newest) newest_signers.insert(s.at("sha256").get<std::string>());
    }
  }
  for (const SignerFacts& signer : verification.signers) expected_signers.insert(signer.sha256);
  EXPECT_EQ(newest_signers, expected_signers) << "signers of " << newest;

  bool any_debug = false;
  for (const SignerFacts& expected : verification.signers) {
    const Json* signer = nullptr;
    for (const Json& s : app.at("signers")) {
      if (s.at("sha256") == expected.sha256) signer = &s;
    }
    ASSERT_NE(signer, nullptr) << "no signer with certificate SHA-256 " << expected.sha256;
    EXPECT_EQ(Rdns(signer->at("subject")), Rdns(expected.dn));
    EXPECT_EQ(signer->at("organization"), RdnValue(expected.dn, "O"));
    EXPECT_EQ(signer->at("country"), RdnValue(expected.dn, "C"));
    // The Android SDK's debug certificate is recognised by its well-known subject.
    bool debug = Rdns(expected.dn) == std::vector<std::string>{"CN=Android Debug", "O=Android", "C=US"};
    EXPECT_EQ(signer->at("debug").get<bool>(), debug);
    any_debug = any_debug || debug;
  }
  EXPECT_EQ(signing.at("debug_certificate").get<bool>(), any_debug);
}

// ---- dexdump --------------------------------------------------------------------------------

struct DexHeader {
  std::string name;
  std::map<std::string, uint64_t> sizes;  // "class_defs_size" -> N, from `dexdump -f`
};

// Extracts every classes*.dex with unzip and reads its header with dexdump.
std::vector<DexHeader> DumpDexHeaders(const std::string& apk) {
  TempDir dir;
  RunCommand({"unzip", "-q", "-o", apk, "classes*.dex", "-d", dir.path().string()});
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir.path())) names.push_back(entry.path().filename().string());
  // classes.dex, classes2.dex, ... in Android's loading order.
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  std::vector<DexHeader> headers;
  for (const auto& name : names) {
    CommandResult run = RunCommand({"dexdump", "-f", (dir.path() / name).string()});
    DexHeader header{name, {}};
    std::istringstream lines(run.out);
    // "class_defs_size     : 9"
    for (std::string line; std::getline(lines, line);) {
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string key = line.substr(0, line.find_first_of(" :"));
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      if (key.size() > 5 && key.substr(key.size() - 5) == "_size" && !value.empty() && std::isdigit(value[0])) {
        header.sizes[key] = std::stoull(value);
      }
    }
    EXPECT_TRUE(header.sizes.count("class_defs_size")) << "dexdump could not read " << name << ":\n" << run.err;
    headers.push_back(std::move(header));
  }
  return headers;
}

void ExpectMatchesDexdump(const Json& doc, const std::vector<DexHeader>& headers) {
  const Json& dex = doc.at("app").at("dex");
  ASSERT_EQ(dex.at("files").size(), headers.size());
  uint64_t classes = 0, methods = 0, strings = 0;
  for (size_t i = 0; i < headers.size(); ++i) {
    const Json& file = dex.at("files")[i];
    const auto& sizes = headers[i].sizes;
    SCOPED_TRACE(headers[i].name);
    EXPECT_EQ(file.at("name"), headers[i].name);
    EXPECT_EQ(file.at("classes"), sizes.at("class_defs_size"));
    EXPECT_EQ(file.at("methods"), sizes.at("method_ids_size"));
    EXPECT_EQ(file.at("strings"), sizes.at("string_ids_size"));
    EXPECT_EQ(file.at("types"), sizes.at("type_ids_size"));
    EXPECT_EQ(file.at("fields"), sizes.at("field_ids_size"));
    classes += sizes.at("class_defs_size");
    methods += sizes.at("method_ids_size");
    strings += sizes.at("string_ids_size");
  }
  EXPECT_EQ(dex.at("classes"), classes);
  EXPECT_EQ(dex.at("methods"), methods);
  EXPECT_EQ(dex.at("strings"), strings);
}

// ---- the fixtures, one test per fixture and oracle -----------------------------------------

// Fixtures that Android's tools read: compared with each tool.
const std::vector<std::string> kReadableFixtures = {
    "rich.apk", "v1only.apk", "v2v3.apk", "multidex.apk", "unsigned.apk", "minimal.apk", "legacy.apk",
};
const std::vector<std::string> kSignedFixtures = {"rich.apk", "v1only.apk", "v2v3.apk", "multidex.apk"};

std::string ParamName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = fs::path(info.param).stem().string();
  for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return name;
}

class InspectFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(InspectFixture, ManifestMatchesAaptBadging) {
  std::string apk = Fixture(GetParam());
  auto badging = DumpBadging(apk);
  ASSERT_TRUE(badging.has_value()) << "aapt cannot read the fixture " << apk;
  Json doc = Inspect(apk);
  ASSERT_FALSE(doc.is_null());
  ExpectMatchesBadging(doc, *badging);
}

TEST_P(InspectFixture, DexCountsMatchDexdump) {
  std::string apk = Fixture(GetParam());
  Json doc = Inspect(apk);
  ASSERT_FALSE(doc.is_null());
  ExpectMatchesDexdump(doc, DumpDexHeaders(apk));
}

TEST_P(InspectFixture, HealthyFixtureHasNoZipOrXmlAnomaly) {
  // Built by aapt/aapt2, zipalign and apksigner: nothing unusual about the container or manifest.
  Json doc = Inspect(Fixture(GetParam()));
  ASSERT_FALSE(doc.is_null());
  for (const Json& anomaly : doc.at("anomalies")) {
    std::string code = anomaly.at("code");
    EXPECT_FALSE(code.rfind("zip.", 0) == 0 || code.rfind("axml.", 0) == 0) << anomaly.dump();
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, InspectFixture, ::testing::ValuesIn(kReadableFixtures), ParamName);

class InspectSignedFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(InspectSignedFixture, SignersMatchApksigner) {
  std::string apk = Fixture(GetParam());
  Verification verification = VerifyWithApksigner(apk);
  ASSERT_TRUE(verification.verifies) << "apksigner does not verify the fixture " << apk;
  Json doc = Inspect(apk);
  ASSERT_FALSE(doc.is_null());
  ExpectMatchesApksigner(doc, verification);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, InspectSignedFixture, ::testing::ValuesIn(kSignedFixtures), ParamName);

TEST(InspectSigning, UnsignedFixtureHasNoSigner) {
  Json doc = Inspect(Fixture("unsigned.apk"));
  ASSERT_FALSE(doc.is_null());
  EXPECT_TRUE(doc.at("app").at("signers").empty());
  for (const char* scheme : {"v1", "v2", "v3", "v31", "v1_only", "debug_certificate"}) {
    EXPECT_FALSE(doc.at("app").at("signing").at(scheme).get<bool>()) << scheme;
  }
}

TEST(InspectSigning, SchemesAndKeysOfEachSigningFixture) {
  // What build.sh asked apksigner for (tests/fixtures/build.sh: the sign calls and make_key).
  struct Expected {
    const char* fixture;
    bool v1, v2, v3;
    const char* key_algorithm;
    int key_bits;
  };
  for (const Expected& e :
       {Expected{"v1only.apk", true, false, false, "RSA", 2048}, Expected{"v2v3.apk", false, true, true, "EC", 256},
        Expected{"rich.apk", true, true, true, "RSA", 2048}}) {
    SCOPED_TRACE(e.fixture);
    Json doc = Inspect(Fixture(e.fixture));
    ASSERT_FALSE(doc.is_null());
    const Json& signing = doc.at("app").at("signing");
    EXPECT_EQ(signing.at("v1").get<bool>(), e.v1);
    EXPECT_EQ(signing.at("v2").get<bool>(), e.v2);
    EXPECT_EQ(signing.at("v3").get<bool>(), e.v3);
    ASSERT_EQ(doc.at("app").at("signers").size(), 1u);
    const Json& signer = doc.at("app").at("signers")[0];
    EXPECT_EQ(signer.at("key_algorithm"), e.key_algorithm);
    EXPECT_EQ(signer.at("key_bits"), e.key_bits);
    EXPECT_TRUE(signer.at("self_signed").get<bool>());
    EXPECT_EQ(signer.at("subject"), signer.at("issuer"));
  }
}

// The facts of tests/fixtures/apps/rich/AndroidManifest.xml that aapt's badging does not show.
TEST(InspectRichManifest, ComponentsAndTheirExport) {
  Json doc = Inspect(Fixture("rich.apk"));
  ASSERT_FALSE(doc.is_null());
  struct Expected {
    std::string kind;
    bool exported;
    std::string permission;
  };
  // targetSdkVersion 29: a component without android:exported is exported when it has an intent
  // filter (providers: not exported from API 17 on).
  const std::string p = "org.appban.fixture.rich.";
  std::map<std::string, Expected> expected = {
      {p + "MainActivity", {"activity", true, ""}},     {p + "SettingsActivity", {"activity", false, ""}},
      {p + "DeepLinkActivity", {"activity", true, ""}}, {p + "SyncService", {"service", true, p + "permission.SYNC"}},
      {p + "LocalService", {"service", false, ""}},     {p + "BootReceiver", {"receiver", true, ""}},
      {p + "DataProvider", {"provider", true, ""}},
  };
  const Json& components = doc.at("app").at("components");
  ASSERT_EQ(components.size(), expected.size());
  for (const Json& c : components) {
    std::string name = c.at("name");
    SCOPED_TRACE(name);
    ASSERT_TRUE(expected.count(name));
    EXPECT_EQ(c.at("kind"), expected[name].kind);
    EXPECT_EQ(c.at("exported").get<bool>(), expected[name].exported);
    EXPECT_EQ(c.at("permission"), expected[name].permission);
    EXPECT_FALSE(c.at("exported_reason").get<std::string>().empty());
    if (name == p + "BootReceiver") {
      ASSERT_EQ(c.at("intent_filters").size(), 1u);
      EXPECT_EQ(c.at("intent_filters")[0].at("priority"), 999);
      EXPECT_EQ(c.at("intent_filters")[0].at("actions"), Json({"android.intent.action.BOOT_COMPLETED"}));
    }
    if (name == p + "DeepLinkActivity") {
      ASSERT_EQ(c.at("intent_filters").size(), 1u);
      EXPECT_TRUE(c.at("intent_filters")[0].at("auto_verify").get<bool>());
    }
    if (name == p + "DataProvider") {
      EXPECT_EQ(c.at("authorities"), Json({"org.appban.fixture.rich.data"}));
    }
  }
}

TEST(InspectRichManifest, FlagsPermissionsAndQueries) {
  Json doc = Inspect(Fixture("rich.apk"));
  ASSERT_FALSE(doc.is_null());
  const Json& app = doc.at("app");
  const Json& flags = app.at("flags");
  EXPECT_TRUE(flags.at("debuggable").get<bool>());
  EXPECT_TRUE(flags.at("allow_backup").get<bool>());
  EXPECT_EQ(flags.at("uses_cleartext_traffic"), true);
  EXPECT_TRUE(flags.at("network_security_config").get<bool>());
  EXPECT_FALSE(flags.at("test_only").get<bool>());
  ASSERT_EQ(app.at("declared_permissions").size(), 1u);
  EXPECT_EQ(app.at("declared_permissions")[0].at("name"), "org.appban.fixture.rich.permission.SYNC");
  EXPECT_EQ(app.at("declared_permissions")[0].at("protection_level"), "signature");
  EXPECT_EQ(app.at("queries").at("packages"), Json({"com.whatsapp"}));
  ASSERT_EQ(app.at("queries").at("intents").size(), 1u);
  EXPECT_EQ(app.at("queries").at("intents")[0].at("actions"), Json({"android.intent.action.SEND"}));
  EXPECT_EQ(app.at("queries").at("providers"), Json({"com.example.contacts.provider"}));
  // The label and versionName are resource references resolved through resources.arsc.
  EXPECT_EQ(app.at("label"), "Appban Rich Fixture");
  EXPECT_EQ(app.at("version_name"), "4.2.0-rich");
}

TEST(InspectRichManifest, NativeLibrariesMatchTheZipListing) {
  std::string apk = Fixture("rich.apk");
  CommandResult listing = RunCommand({"unzip", "-Z1", apk});
  ASSERT_EQ(listing.exit_code, 0);
  std::map<std::string, std::set<std::string>> expected;  // abi -> file names, from unzip
  std::istringstream lines(listing.out);
  for (std::string line; std::getline(lines, line);) {
    // "lib/<abi>/<name>.so"
    if (!StartsWith(line, "lib/") || line.size() < 3 || line.substr(line.size() - 3) != ".so") continue;
    size_t slash = line.find('/', 4);
    if (slash == std::string::npos || line.find('/', slash + 1) != std::string::npos) continue;
    expected[line.substr(4, slash - 4)].insert(line.substr(slash + 1));
  }
  ASSERT_EQ(expected.size(), 2u) << "build.sh puts libfoo.so under two ABIs";
  Json doc = Inspect(apk);
  ASSERT_FALSE(doc.is_null());
  std::map<std::string, std::set<std::string>> actual;
  for (const auto& [abi, files] : doc.at("app").at("native_libs").items()) {
    for (const Json& file : files) actual[abi].insert(file.get<std::string>());
  }
  EXPECT_EQ(actual, expected);
}

TEST(InspectMultidex, BothDexFilesAreCounted) {
  Json doc = Inspect(Fixture("multidex.apk"));
  ASSERT_FALSE(doc.is_null());
  const Json& files = doc.at("app").at("dex").at("files");
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].at("name"), "classes.dex");
  EXPECT_EQ(files[1].at("name"), "classes2.dex");
  // tests/fixtures/apps/multidex/smali: 3 classes in classes/, 4 in classes2/.
  EXPECT_EQ(files[0].at("classes"), 3);
  EXPECT_EQ(files[1].at("classes"), 4);
  EXPECT_EQ(doc.at("app").at("dex").at("classes"), 7);
}

// ---- tampered fixtures ----------------------------------------------------------------------

struct TamperCase {
  std::string fixture;
  std::string anomaly;  // the code the parser engineers chose (src/appban/apk/zip.cc, axml.cc, res_string_pool.cc)
};

// Names the case in test listings (gtest would otherwise print the struct's bytes).
void PrintTo(const TamperCase& c, std::ostream* out) { *out << c.fixture << " -> " << c.anomaly; }

class InspectTampered : public ::testing::TestWithParam<TamperCase> {};

// Each trick leaves the app's facts as they were: compared with aapt's reading of the untampered
// minimal.apk, and the trick is reported.
TEST_P(InspectTampered, FactsSurviveAndTheTrickIsReported) {
  const TamperCase& c = GetParam();
  auto base = DumpBadging(Fixture("minimal.apk"));
  ASSERT_TRUE(base.has_value());
  Json doc = Inspect(Fixture(c.fixture));
  ASSERT_FALSE(doc.is_null());
  ExpectMatchesBadging(doc, *base);
  EXPECT_TRUE(AnomalyCodes(doc).count(c.anomaly))
      << "expected anomaly " << c.anomaly << ", got: " << Joined(AnomalyCodes(doc));
  Json untouched = Inspect(Fixture("minimal.apk"));
  ASSERT_FALSE(untouched.is_null());
  EXPECT_FALSE(AnomalyCodes(untouched).count(c.anomaly)) << "the untampered app already reports " << c.anomaly;
}

// Where aapt (Android 10's libziparchive and libandroidfw) still reads the tampered file, appban
// must agree with aapt's reading of that very file.
TEST_P(InspectTampered, AgreesWithAaptWhereAaptReadsIt) {
  const TamperCase& c = GetParam();
  auto badging = DumpBadging(Fixture(c.fixture));
  if (!badging) GTEST_SKIP() << "aapt refuses " << c.fixture << " (Android 10 parsers)";
  Json doc = Inspect(Fixture(c.fixture));
  ASSERT_FALSE(doc.is_null());
  ExpectMatchesBadging(doc, *badging);
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, InspectTampered,
    ::testing::Values(TamperCase{"tamper_encryption_flag.apk", "zip.encryption_flag_ignored"},
                      TamperCase{"tamper_unknown_method.apk", "zip.unknown_method_read_as_stored"},
                      TamperCase{"tamper_local_size.apk", "zip.local_header_mismatch"},
                      TamperCase{"tamper_duplicate_entry.apk", "zip.duplicate_entry"},
                      TamperCase{"tamper_axml_header_size.apk", "axml.header_size"},
                      TamperCase{"tamper_axml_magic.apk", "axml.file_type"},
                      // Two more strings claimed: the offset array now overlaps the character data.
                      TamperCase{"tamper_axml_string_count.apk", "axml.strings_start"},
                      TamperCase{"tamper_axml_unknown_chunk.apk", "axml.unknown_chunk"}),
    [](const ::testing::TestParamInfo<TamperCase>& info) {
      return ParamName({info.param.fixture, info.index});
    });

TEST(InspectTampered, DuplicateManifestReadsTheFirstEntry) {
  // tamper.py appends tests/fixtures/apps/decoy's manifest after the real one.
  Json doc = Inspect(Fixture("tamper_duplicate_entry.apk"));
  ASSERT_FALSE(doc.is_null());
  EXPECT_EQ(doc.at("app").at("package"), "org.appban.fixture.minimal");
  EXPECT_NE(doc.at("app").at("package"), "org.appban.fixture.decoy");
}

// ---- error paths ----------------------------------------------------------------------------

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string LineFor(const std::vector<std::string>& lines, const std::string& path) {
  for (const auto& line : lines) {
    if (line.find(path) != std::string::npos) return line;
  }
  return "";
}

TEST(InspectErrors, BadFilesFailAloneAndTheOthersAreStillReported) {
  std::string text = Fixture("not_an_apk.txt");
  std::string truncated = Fixture("truncated.apk");
  std::string no_manifest = Fixture("no_manifest.apk");
  std::string missing = (FixtureDir() / "does_not_exist.apk").string();
  std::string good = Fixture("rich.apk");
  std::string also_good = Fixture("v2v3.apk");
  CommandResult run =
      RunCommand({AppbanBinary(), "inspect", "--json", text, good, truncated, no_manifest, missing, also_good});
  EXPECT_NE(run.exit_code, 0);
  std::vector<Json> docs = ParseDocuments(run.out);
  ASSERT_EQ(docs.size(), 2u) << run.out;
  EXPECT_EQ(docs[0].at("file").at("path"), good);
  EXPECT_EQ(docs[1].at("file").at("path"), also_good);
  std::vector<std::string> errors = Lines(run.err);
  EXPECT_EQ(errors.size(), 4u) << run.err;
  EXPECT_NE(LineFor(errors, text).find("not an APK: no central directory"), std::string::npos) << run.err;
  std::string truncated_line = LineFor(errors, truncated);
  std::transform(truncated_line.begin(), truncated_line.end(), truncated_line.begin(), ::tolower);
  EXPECT_NE(truncated_line.find("truncated"), std::string::npos) << run.err;
  EXPECT_NE(LineFor(errors, no_manifest).find("AndroidManifest.xml"), std::string::npos) << run.err;
  EXPECT_NE(LineFor(errors, missing), "") << run.err;
  for (const auto& line : errors) EXPECT_EQ(line.rfind("appban: ", 0), 0u) << line;
}

TEST(InspectErrors, AllReadableMeansExitZeroAndNoStderr) {
  CommandResult run = RunCommand({AppbanBinary(), "inspect", "--json", Fixture("rich.apk"), Fixture("v1only.apk")});
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.err, "");
  EXPECT_EQ(ParseDocuments(run.out).size(), 2u);
}

TEST(InspectText, PrintsTheFactsOfEachFile) {
  CommandResult run = RunCommand({AppbanBinary(), "inspect", Fixture("rich.apk")});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("org.appban.fixture.rich"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("Appban Rich Fixture"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("maxSdkVersion 28"), std::string::npos) << run.out;
}

// ---- what a manifest leaves out, and what Android grants anyway ------------------------------

// tests/fixtures/apps/legacy/AndroidManifest.xml: no versionName, no label, minSdkVersion 3 and no
// targetSdkVersion; it requests READ_CONTACTS, ACCESS_FINE_LOCATION and BLUETOOTH.
TEST(InspectLegacy, AbsentValuesAreNullAndImpliedPermissionsCarryTheirReason) {
  Json doc = Inspect(Fixture("legacy.apk"));
  ASSERT_FALSE(doc.is_null());
  const Json& app = doc.at("app");
  EXPECT_TRUE(app.at("version_name").is_null());
  EXPECT_TRUE(app.at("label").is_null());
  EXPECT_TRUE(app.at("target_sdk").is_null());
  EXPECT_EQ(app.at("min_sdk"), 3);
  EXPECT_TRUE(app.at("min_sdk_codename").is_null());
  EXPECT_EQ(app.at("compile_sdk_source"), "compileSdkVersion");  // aapt writes android:compileSdkVersion
  std::map<std::string, std::string> implied;
  for (const Json& p : app.at("implied_permissions")) {
    implied[p.at("name")] = p.at("reason");
    EXPECT_TRUE(p.contains("implied_by") && p.contains("max_sdk")) << p.dump();
  }
  const std::string a = "android.permission.";
  // Target SDK 3 (the minSdkVersion): before Donut, split permissions of every later release.
  EXPECT_EQ(implied[a + "WRITE_EXTERNAL_STORAGE"], "targetSdkVersion < 4");
  EXPECT_EQ(implied[a + "READ_PHONE_STATE"], "targetSdkVersion < 4");
  EXPECT_EQ(implied[a + "READ_EXTERNAL_STORAGE"], "requested WRITE_EXTERNAL_STORAGE");
  EXPECT_EQ(implied[a + "READ_CALL_LOG"], "targetSdkVersion < 16 and requested READ_CONTACTS");
  EXPECT_EQ(implied[a + "ACCESS_COARSE_LOCATION"], "requested ACCESS_FINE_LOCATION");
  EXPECT_EQ(implied[a + "ACCESS_BACKGROUND_LOCATION"], "targetSdkVersion < 29 and requested ACCESS_FINE_LOCATION");
  EXPECT_EQ(implied[a + "BLUETOOTH_CONNECT"], "targetSdkVersion < 31 and requested BLUETOOTH");
  EXPECT_EQ(implied[a + "READ_MEDIA_IMAGES"], "targetSdkVersion < 33 and requested READ_EXTERNAL_STORAGE");
  for (const Json& p : app.at("permissions")) EXPECT_FALSE(implied.count(p.at("name"))) << "requested: " << p;

  // The text report lists them too.
  CommandResult run = RunCommand({AppbanBinary(), "inspect", Fixture("legacy.apk")});
  EXPECT_NE(run.out.find("ACCESS_BACKGROUND_LOCATION (targetSdkVersion < 29 and requested ACCESS_FINE_LOCATION)"),
            std::string::npos)
      << run.out;
}

// The assessment's capability evidence counts what Android grants, saying it was implied.
TEST(InspectLegacy, CapabilitiesUseImpliedPermissions) {
  CommandResult run = RunCommand({AppbanBinary(), "assess", "--format", "json", Fixture("legacy.apk")});
  ASSERT_NE(run.out.find('{'), std::string::npos) << run.err;
  Json report = Json::parse(run.out.substr(run.out.find('{')), nullptr, false);
  ASSERT_FALSE(report.is_discarded()) << run.out;
  EXPECT_TRUE(report.at("app").at("version_name").is_null());
  bool background = false;
  for (const Json& finding : report.at("findings")) {
    if (finding.at("id").get<std::string>().rfind("capability.background_location.", 0) != 0) continue;
    for (const Json& e : finding.at("evidence")) {
      if (e.at("value") == "android.permission.ACCESS_BACKGROUND_LOCATION") {
        background = true;
        EXPECT_EQ(e.at("note"), "implied, not requested: targetSdkVersion < 29 and requested ACCESS_FINE_LOCATION");
      }
    }
  }
  EXPECT_TRUE(background) << "no background-location finding citing the implied permission";
}

TEST(InspectLegacy, CodenameMinSdkIsKeptAndFlagged) {
  Json doc = Inspect(Fixture("legacy_codename.apk"));
  ASSERT_FALSE(doc.is_null());
  const Json& app = doc.at("app");
  EXPECT_EQ(app.at("min_sdk_codename"), "IceCreamSandwich");
  EXPECT_EQ(app.at("min_sdk"), 10000);
  // The platform reads a codename as target 10000 (aapt as 0): no old-target permissions.
  for (const Json& p : app.at("implied_permissions")) EXPECT_NE(p.at("reason"), "targetSdkVersion < 4") << p;
  bool flagged = false;
  for (const Json& anomaly : doc.at("anomalies")) {
    if (anomaly.at("code") != "manifest.codename_min_sdk") continue;
    flagged = true;
    EXPECT_NE(anomaly.at("detail").get<std::string>().find("refuses to install"), std::string::npos) << anomaly;
  }
  EXPECT_TRUE(flagged) << doc.at("anomalies").dump();
  // What aapt prints for the same file.
  auto badging = RunCommand({"aapt", "dump", "badging", Fixture("legacy_codename.apk")});
  EXPECT_NE(badging.out.find("sdkVersion:'IceCreamSandwich'"), std::string::npos) << badging.out;
}

// Older aapt wrote only platformBuildVersionCode; compile_sdk then says it came from there.
TEST(InspectLegacy, CompileSdkFromPlatformBuildVersionCodeIsMarked) {
  std::string apk = (AndroguardExamples() / "signing/apksig/v2-only-with-rsa-pkcs1-sha256-2048.apk").string();
  if (!fs::exists(apk)) GTEST_SKIP() << "androguard's examples are not installed";
  CommandResult xmltree = RunCommand({"aapt", "dump", "xmltree", apk, "AndroidManifest.xml"});
  ASSERT_EQ(xmltree.out.find("compileSdkVersion("), std::string::npos) << "the example gained compileSdkVersion";
  size_t at = xmltree.out.find("platformBuildVersionCode=(type 0x10)0x");
  ASSERT_NE(at, std::string::npos) << xmltree.out;
  int platform = std::stoi(xmltree.out.substr(at + 38, 8), nullptr, 16);
  Json doc = Inspect(apk);
  ASSERT_FALSE(doc.is_null());
  EXPECT_EQ(doc.at("app").at("compile_sdk"), platform);
  EXPECT_EQ(doc.at("app").at("compile_sdk_source"), "platformBuildVersionCode");
}

// ---- androguard's example APKs --------------------------------------------------------------

std::vector<std::string> AndroguardApks() {
  std::vector<std::string> apks;
  std::error_code error;
  for (fs::recursive_directory_iterator it(AndroguardExamples(), error), end; !error && it != end;
       it.increment(error)) {
    if (it->is_regular_file() && it->path().extension() == ".apk") apks.push_back(it->path().string());
  }
  std::sort(apks.begin(), apks.end());
  return apks;
}

// One run over the whole examples directory: every .apk is either reported or named on stderr,
// and every one that aapt reads is reported with aapt's facts.
TEST(InspectAndroguard, EveryExampleMatchesAaptBadging) {
  std::vector<std::string> apks = AndroguardApks();
  if (apks.empty()) GTEST_SKIP() << "androguard's examples are not installed";
  CommandResult run = RunCommand({AppbanBinary(), "inspect", "--json", AndroguardExamples().string()});
  std::vector<Json> docs = ParseDocuments(run.out);
  std::vector<std::string> errors = Lines(run.err);
  EXPECT_EQ(docs.size() + errors.size(), apks.size());
  EXPECT_EQ(run.exit_code == 0, errors.empty());
  std::map<std::string, const Json*> by_path;
  for (const Json& doc : docs) by_path[doc.at("file").at("path")] = &doc;

  size_t compared = 0;
  for (const std::string& apk : apks) {
    SCOPED_TRACE(apk);
    auto badging = DumpBadging(apk);
    if (!badging) continue;  // aapt refuses it: appban may read it or not
    auto it = by_path.find(apk);
    if (it == by_path.end()) {
      ADD_FAILURE() << "aapt reads it but appban does not: " << LineFor(errors, apk);
      continue;
    }
    ExpectMatchesBadging(*it->second, *badging);
    ++compared;
  }
  EXPECT_GT(compared, apks.size() / 2);
}

// A sample of signing layouts from the examples (apksig's test vectors and real apps), compared
// with apksigner; one JVM start per file, so not all of them.
class InspectAndroguardSigners : public ::testing::TestWithParam<std::string> {};

TEST_P(InspectAndroguardSigners, SignersMatchApksigner) {
  std::string apk = (AndroguardExamples() / GetParam()).string();
  if (!fs::exists(apk)) GTEST_SKIP() << "androguard's examples are not installed";
  Verification verification = VerifyWithApksigner(apk);
  ASSERT_TRUE(verification.verifies) << "apksigner does not verify " << apk;
  Json doc = Inspect(apk);
  ASSERT_FALSE(doc.is_null());
  ExpectMatchesApksigner(doc, verification);
}

INSTANTIATE_TEST_SUITE_P(
    Examples, InspectAndroguardSigners,
    ::testing::Values("signing/TestActivity_signed_both.apk", "signing/apksig/golden-aligned-v1v2v3-out.apk",
                      "signing/apksig/golden-aligned-v2v3-lineage-out.apk", "signing/apksig/v1-only-two-signers.apk",
                      "signing/apksig/v1-only-with-ecdsa-sha256-1.2.840.10045.4.3.2-p256.apk",
                      "signing/apksig/v2-only-with-rsa-pkcs1-sha256-2048.apk",
                      "signing/apksig/v3-only-with-ecdsa-sha256-p256.apk", "signing/apksig/two-signers.apk",
                      "tests/a2dp.Vol_137.apk", "tests/com.politedroid_4.apk"),
    ParamName);

}  // namespace
}  // namespace appban::testing
