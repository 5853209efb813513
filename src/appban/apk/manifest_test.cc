// Manifest-fact tests. Real APKs are checked against `aapt dump badging` (run here, parsed, never
// hard-coded); the PackageManager rules (exported defaults, name expansion, protection levels)
// are checked on hand-built documents whose content the test controls.
#include "appban/apk/manifest.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <set>

#include "appban/apk/res_test_support.h"

namespace appban::apk {
namespace {

using testing::kExamples;

struct Badging {
  std::string package, version_code, version_name, sdk, target_sdk, label;
  bool has_label = false;
  std::map<std::string, std::string> permissions;  // name -> maxSdkVersion ("" when none)
  std::map<std::string, std::string> implied;      // uses-implied-permission: name -> "reason|maxSdkVersion"
  std::vector<std::string> launchable;
};

// The value of `key='...'` in `line`, "" when absent.
std::string Quoted(const std::string& line, const std::string& key) {
  size_t at = line.find(key + "='");
  if (at == std::string::npos) return "";
  at += key.size() + 2;
  return line.substr(at, line.find('\'', at) - at);
}

Badging ParseBadging(const std::string& output) {
  Badging badging;
  std::vector<std::string> lines = testing::Lines(output);
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (line.starts_with("package:")) {
      badging.package = Quoted(line, "name");
      badging.version_code = Quoted(line, "versionCode");
      badging.version_name = Quoted(line, "versionName");
    } else if (line.starts_with("sdkVersion:'")) {
      badging.sdk = line.substr(12, line.size() - 13);
    } else if (line.starts_with("targetSdkVersion:'")) {
      badging.target_sdk = line.substr(18, line.size() - 19);
    } else if (line.starts_with("application-label:'")) {
      badging.label = line.substr(19, line.size() - 20);
      badging.has_label = true;
    } else if (line.starts_with("uses-permission:") || line.starts_with("uses-permission-sdk-23:")) {
      std::string name = Quoted(line, "name");
      // aapt adds permissions the app did not request, each followed by its reason.
      bool implied = i + 1 < lines.size() && lines[i + 1].starts_with("uses-implied-permission:") &&
                     Quoted(lines[i + 1], "name") == name;
      if (!implied) badging.permissions.emplace(name, Quoted(line, "maxSdkVersion"));
    } else if (line.starts_with("uses-implied-permission:")) {
      badging.implied.emplace(Quoted(line, "name"), Quoted(line, "reason") + "|" + Quoted(line, "maxSdkVersion"));
    } else if (line.starts_with("launchable-activity:")) {
      badging.launchable.push_back(Quoted(line, "name"));
    }
  }
  return badging;
}

struct Loaded {
  Result<XmlDocument> document = Status::Internal("not loaded");
  std::unique_ptr<ResourceTable> resources;
  Anomalies anomalies;
};

std::unique_ptr<Loaded> Load(const std::filesystem::path& apk, const std::string& manifest_bytes) {
  auto loaded = std::make_unique<Loaded>();
  loaded->document = ParseAxml(AsBytes(manifest_bytes), Limits{}, &loaded->anomalies);
  std::string arsc = testing::ReadApkEntry(apk, "resources.arsc");
  if (!arsc.empty()) {
    auto table = ResourceTable::Parse(Buffer::CopyOf(AsBytes(arsc)), Limits{}, &loaded->anomalies);
    if (table.ok()) loaded->resources = std::make_unique<ResourceTable>(std::move(table).value());
  }
  return loaded;
}

bool IsLauncher(const Component& component) {
  for (const IntentFilter& filter : component.intent_filters) {
    bool main = std::count(filter.actions.begin(), filter.actions.end(), "android.intent.action.MAIN") > 0;
    bool launcher =
        std::count(filter.categories.begin(), filter.categories.end(), "android.intent.category.LAUNCHER") > 0;
    if (main && launcher) return true;
  }
  return false;
}

TEST(ManifestTest, FactsMatchAaptBadging) {
  size_t checked = 0, implied_compared = 0;
  for (const auto& apk : testing::ExampleApks()) {
    SCOPED_TRACE(apk.filename().string());
    Badging badging = ParseBadging(testing::RunCommand("aapt dump badging " + testing::ShellQuote(apk.string())));
    if (badging.package.empty()) continue;
    auto loaded = Load(apk, testing::ReadApkEntry(apk, "AndroidManifest.xml"));
    ASSERT_TRUE(loaded->document.ok()) << loaded->document.status().ToString();
    auto manifest = ExtractManifest(*loaded->document, loaded->resources.get(), &loaded->anomalies);
    ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();

    EXPECT_EQ(manifest->package, badging.package);
    if (!badging.version_code.empty()) {
      ASSERT_TRUE(manifest->version_code.has_value());
      EXPECT_EQ(std::to_string(*manifest->version_code), badging.version_code);
    }
    // aapt prints versionName='' for an absent one too.
    EXPECT_EQ(manifest->version_name.value_or(""), badging.version_name);
    if (!badging.sdk.empty()) {
      ASSERT_TRUE(manifest->min_sdk.has_value());
      EXPECT_EQ(manifest->min_sdk_codename.empty() ? std::to_string(*manifest->min_sdk) : manifest->min_sdk_codename,
                badging.sdk);
    }
    if (!badging.target_sdk.empty()) {
      ASSERT_TRUE(manifest->target_sdk.has_value());
      EXPECT_EQ(std::to_string(*manifest->target_sdk), badging.target_sdk);
    }
    if (badging.has_label) {
      EXPECT_EQ(manifest->label, badging.label);
    }

    std::map<std::string, std::string> permissions;
    for (const RequestedPermission& p : manifest->permissions) {
      permissions.emplace(p.name, p.max_sdk ? std::to_string(*p.max_sdk) : "");
    }
    EXPECT_EQ(permissions, badging.permissions);
    EXPECT_EQ(permissions.size(), manifest->permissions.size()) << "duplicates must be dropped, as Android does";

    // aapt (Android 10) implies only what it knows: the targetSdk < 4 pair, READ_EXTERNAL_STORAGE
    // and the call-log splits. Where it covers a permission, the reason and maxSdkVersion agree.
    // (aapt reads a codename minSdkVersion as target 0, the platform as 10000: not compared.)
    if (manifest->min_sdk_codename.empty()) {
      std::map<std::string, std::string> implied;
      for (const ImpliedPermission& p : manifest->implied_permissions) {
        static const std::set<std::string> kAaptCovers = {
            "android.permission.WRITE_EXTERNAL_STORAGE", "android.permission.READ_PHONE_STATE",
            "android.permission.READ_EXTERNAL_STORAGE", "android.permission.READ_CALL_LOG",
            "android.permission.WRITE_CALL_LOG"};
        if (kAaptCovers.count(p.name))
          implied.emplace(p.name, p.reason + "|" + (p.max_sdk ? std::to_string(*p.max_sdk) : ""));
      }
      EXPECT_EQ(implied, badging.implied);
      implied_compared += badging.implied.size();
    }

    for (const std::string& launchable : badging.launchable) {
      auto it = std::find_if(manifest->components.begin(), manifest->components.end(),
                             [&](const Component& c) { return c.name == launchable; });
      ASSERT_NE(it, manifest->components.end()) << launchable;
      EXPECT_TRUE(IsLauncher(*it)) << launchable;
      EXPECT_TRUE(it->exported) << launchable;
    }
    ++checked;
  }
  EXPECT_GE(checked, 5u);
  EXPECT_GE(implied_compared, 5u) << "the examples hold implied permissions to compare with aapt";
}

TEST(ManifestTest, ReferencedValuesAreResolvedThroughResources) {
  // com.test.intent_filter's <data> takes scheme and host from @string resources; aapt's
  // resource dump gives the strings they must resolve to.
  const auto apk = kExamples / "tests" / "com.test.intent_filter.apk";
  auto loaded = Load(apk, testing::ReadApkEntry(apk, "AndroidManifest.xml"));
  ASSERT_TRUE(loaded->document.ok());
  ASSERT_NE(loaded->resources, nullptr);
  auto manifest = ExtractManifest(*loaded->document, loaded->resources.get(), &loaded->anomalies);
  ASSERT_TRUE(manifest.ok());
  std::string xmltree =
      testing::RunCommand("aapt dump xmltree " + testing::ShellQuote(apk.string()) + " AndroidManifest.xml");
  std::string resources = testing::RunCommand("aapt dump --values resources " + testing::ShellQuote(apk.string()));
  // The first <data> with android:scheme=@0x... in the xmltree.
  size_t scheme_at = xmltree.find("android:scheme(0x01010027)=@0x");
  ASSERT_NE(scheme_at, std::string::npos);
  std::string scheme_id = xmltree.substr(scheme_at + 30, 8);
  size_t resource_at = std::string::npos;
  for (size_t at = resources.find("resource 0x" + scheme_id); at != std::string::npos;
       at = resources.find("resource 0x" + scheme_id, at + 1)) {
    if (resources.substr(at, resources.find('\n', at) - at).find("t=0x03") != std::string::npos) {
      resource_at = at;
      break;
    }
  }
  ASSERT_NE(resource_at, std::string::npos);
  size_t quote = resources.find('"', resources.find('\n', resource_at));
  std::string scheme = resources.substr(quote + 1, resources.find('"', quote + 1) - quote - 1);
  ASSERT_FALSE(scheme.empty());
  bool found = false;
  for (const Component& c : manifest->components) {
    for (const IntentFilter& f : c.intent_filters) {
      for (const std::string& d : f.data) found = found || d.starts_with(scheme + "://");
    }
  }
  EXPECT_TRUE(found) << "no <data> resolved to scheme " << scheme;
  EXPECT_EQ(manifest->compile_sdk, 28);  // android:compileSdkVersion=(type 0x10)0x1c in the xmltree
  EXPECT_NE(xmltree.find("compileSdkVersion(0x01010572)=(type 0x10)0x1c"), std::string::npos);
}

TEST(ManifestTest, TamperedManifestYieldsTheSameFacts) {
  const auto apk = kExamples / "tests" / "com.politedroid_4.apk";
  const std::string original = testing::ReadApkEntry(apk, "AndroidManifest.xml");
  std::string bogus_count = original;
  testing::Put32(&bogus_count, 16, 0x00ffffff);
  std::string bad_header = original;
  testing::Put16(&bad_header, 2, 0x0044);
  testing::Put16(&bad_header, 0, 0x0000);
  auto summary = [&](const std::string& bytes, Anomalies* anomalies) {
    auto loaded = Load(apk, bytes);
    EXPECT_TRUE(loaded->document.ok());
    if (!loaded->document.ok()) return std::string("unreadable");
    auto m = ExtractManifest(*loaded->document, loaded->resources.get(), anomalies);
    if (!m.ok()) return m.status().ToString();
    std::string out = m->package + "|" + std::to_string(m->version_code.value_or(-1)) + "|" +
                      m->version_name.value_or("-") + "|" + std::to_string(m->min_sdk.value_or(-1)) + "|" +
                      m->label.value_or("-");
    for (const auto& p : m->permissions) out += "|" + p.name;
    for (const auto& c : m->components) out += "|" + c.name + (c.exported ? "+" : "-");
    if (anomalies) anomalies->insert(anomalies->end(), loaded->anomalies.begin(), loaded->anomalies.end());
    return out;
  };
  const std::string expected = summary(original, nullptr);
  ASSERT_NE(expected.find("com.politedroid"), std::string::npos);
  for (const std::string& tampered : {testing::StripResourceMappedNames(original), bogus_count, bad_header}) {
    Anomalies anomalies;
    EXPECT_EQ(summary(tampered, &anomalies), expected);
    EXPECT_FALSE(anomalies.empty());
  }
}

TEST(ManifestTest, TrickManifestsFromAndroguardStillYieldAPackage) {
  // Every trick manifest Android can read must give its package (aapt prints it in xmltree).
  for (const auto& entry : std::filesystem::directory_iterator(kExamples / "axml")) {
    if (entry.path().extension() != ".xml" || !entry.path().filename().string().starts_with("AndroidManifest")) {
      continue;
    }
    SCOPED_TRACE(entry.path().filename().string());
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    Anomalies anomalies;
    auto document = ParseAxml(AsBytes(bytes), Limits{}, &anomalies);
    ASSERT_TRUE(document.ok());
    auto manifest = ExtractManifest(*document, nullptr, &anomalies);
    ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
    EXPECT_NE(manifest->package.find('.'), std::string::npos);
  }
}

// ---- Rules, on hand-built documents ---------------------------------------------------------

XmlAttribute Android(uint32_t id, std::string name, std::string value) {
  XmlAttribute a;
  a.ns = std::string(kAndroidNamespace);
  a.name = std::move(name);
  a.resource_id = id;
  a.type = ValueType::kString;
  a.string_value = value;
  a.raw_value = value;
  return a;
}
XmlAttribute AndroidInt(uint32_t id, std::string name, uint32_t value, ValueType type = ValueType::kIntDec) {
  XmlAttribute a;
  a.ns = std::string(kAndroidNamespace);
  a.name = std::move(name);
  a.resource_id = id;
  a.type = type;
  a.data = value;
  return a;
}
XmlAttribute Plain(std::string name, std::string value) {
  XmlAttribute a;
  a.name = std::move(name);
  a.type = ValueType::kString;
  a.string_value = value;
  a.raw_value = value;
  return a;
}
XmlElement Element(std::string name, std::vector<XmlAttribute> attributes, std::vector<XmlElement> children = {}) {
  XmlElement e;
  e.name = std::move(name);
  e.attributes = std::move(attributes);
  e.children = std::move(children);
  return e;
}
XmlElement Named(std::string tag, std::string name, std::vector<XmlElement> children = {}) {
  return Element(std::move(tag), {Android(attr::kName, "name", std::move(name))}, std::move(children));
}
XmlElement Filter(std::string action) { return Element("intent-filter", {}, {Named("action", std::move(action))}); }

XmlDocument Document(std::vector<XmlElement> top, std::vector<XmlElement> components, int target_sdk,
                     std::vector<XmlAttribute> application_attributes = {}) {
  XmlDocument document;
  document.root = Element("manifest", {Plain("package", "com.example.app")});
  document.root.children.push_back(Element(
      "uses-sdk", {AndroidInt(attr::kMinSdkVersion, "minSdkVersion", 9),
                   AndroidInt(attr::kTargetSdkVersion, "targetSdkVersion", static_cast<uint32_t>(target_sdk))}));
  for (auto& e : top) document.root.children.push_back(std::move(e));
  document.root.children.push_back(Element("application", std::move(application_attributes), std::move(components)));
  return document;
}

const Component& Find(const Manifest& m, const std::string& name) {
  static const Component kMissing;
  for (const Component& c : m.components) {
    if (c.name == name) return c;
  }
  ADD_FAILURE() << "no component " << name;
  return kMissing;
}

TEST(ManifestRulesTest, ExportedStateAndNames) {
  XmlElement explicit_hidden = Named("activity", ".Hidden", {Filter("a.VIEW")});
  explicit_hidden.attributes.push_back(AndroidInt(attr::kExported, "exported", 0, ValueType::kIntBoolean));
  for (int target : {16, 17}) {
    auto m =
        ExtractManifest(Document({},
                                 {Named("activity", ".Main", {Filter("android.intent.action.MAIN")}),
                                  Named("service", "Worker"), explicit_hidden,
                                  Named("receiver", "org.other.Receiver", {Filter("x.y")}), Named("provider", ".Data")},
                                 target),
                        nullptr, nullptr);
    ASSERT_TRUE(m.ok());
    EXPECT_TRUE(Find(*m, "com.example.app.Main").exported);
    EXPECT_EQ(Find(*m, "com.example.app.Main").exported_reason, "intent-filter");
    EXPECT_FALSE(Find(*m, "com.example.app.Worker").exported);
    EXPECT_EQ(Find(*m, "com.example.app.Worker").exported_reason, "default");
    EXPECT_FALSE(Find(*m, "com.example.app.Hidden").exported);
    EXPECT_EQ(Find(*m, "com.example.app.Hidden").exported_reason, "explicit");
    EXPECT_TRUE(Find(*m, "org.other.Receiver").exported);
    // Providers: exported by default only below API 17.
    EXPECT_EQ(Find(*m, "com.example.app.Data").exported, target < 17);
    EXPECT_EQ(Find(*m, "com.example.app.Data").exported_reason, "default");
  }
}

TEST(ManifestRulesTest, ProtectionLevelsRenderAsNames) {
  auto permission = [](std::string name, uint32_t level) {
    return Element("permission", {Android(attr::kName, "name", std::move(name)),
                                  AndroidInt(attr::kProtectionLevel, "protectionLevel", level, ValueType::kIntHex)});
  };
  auto m = ExtractManifest(Document({permission("p.normal", 0), permission("p.dangerous", 1), permission("p.sig", 2),
                                     permission("p.sigsys", 3), permission("p.priv", 0x12),
                                     permission("p.dev", 0x22 | 0x40), Named("permission", "p.none")},
                                    {}, 30),
                           nullptr, nullptr);
  ASSERT_TRUE(m.ok());
  std::map<std::string, std::string> levels;
  for (const auto& p : m->declared_permissions) levels[p.name] = p.protection_level;
  EXPECT_EQ(levels["p.normal"], "normal");
  EXPECT_EQ(levels["p.dangerous"], "dangerous");
  EXPECT_EQ(levels["p.sig"], "signature");
  EXPECT_EQ(levels["p.sigsys"], "signatureOrSystem");
  EXPECT_EQ(levels["p.priv"], "signature|privileged");
  EXPECT_EQ(levels["p.dev"], "signature|development|appop");
  EXPECT_EQ(levels["p.none"], "normal");
}

TEST(ManifestRulesTest, PackageIsRequiredAndValidated) {
  for (const char* bad : {"", "nodots", "1abc.def", "com..x", "com.example.", "com.ex ample"}) {
    XmlDocument document = Document({}, {}, 30);
    document.root.attributes = {Plain("package", bad)};
    EXPECT_EQ(ExtractManifest(document, nullptr, nullptr).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  XmlDocument document = Document({}, {}, 30);
  document.root.attributes = {Android(0, "package", "com.example.app")};  // namespaced: Android ignores it
  document.root.attributes[0].resource_id = 0;
  EXPECT_EQ(ExtractManifest(document, nullptr, nullptr).status().code(), StatusCode::kInvalidArgument);
  document = Document({}, {}, 30);
  document.root.name = "application";
  EXPECT_EQ(ExtractManifest(document, nullptr, nullptr).status().code(), StatusCode::kInvalidArgument);
}

TEST(ManifestRulesTest, PermissionsFeaturesQueriesAndFlags) {
  XmlElement sdk23 = Named("uses-permission-sdk-23", "android.permission.CAMERA");
  XmlElement capped = Named("uses-permission", "android.permission.WRITE_EXTERNAL_STORAGE");
  capped.attributes.push_back(AndroidInt(attr::kMaxSdkVersion, "maxSdkVersion", 18));
  XmlElement queries =
      Element("queries", {},
              {Named("package", "com.bank"), Element("intent", {}, {Named("action", "android.intent.action.SEND")}),
               Element("provider", {Android(attr::kAuthorities, "authorities", "x.y")})});
  XmlElement second_application =
      Element("application", {AndroidInt(attr::kDebuggable, "debuggable", 1, ValueType::kIntBoolean)});
  XmlDocument document =
      Document({Named("uses-permission", "android.permission.INTERNET"), sdk23, capped,
                Named("uses-permission", "android.permission.INTERNET"),
                Named("uses-feature", "android.hardware.camera"), queries},
               {Named("uses-library", "org.apache.http.legacy")}, 30,
               {AndroidInt(attr::kAllowBackup, "allowBackup", 0, ValueType::kIntBoolean),
                AndroidInt(attr::kUsesCleartextTraffic, "usesCleartextTraffic", 0xffffffff, ValueType::kIntBoolean),
                AndroidInt(attr::kNetworkSecurityConfig, "networkSecurityConfig", 0x7f100000, ValueType::kReference)});
  document.root.children.push_back(second_application);
  Anomalies anomalies;
  auto m = ExtractManifest(document, nullptr, &anomalies);
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->permissions.size(), 3u);  // the duplicate INTERNET is dropped
  EXPECT_TRUE(m->permissions[1].sdk23_only);
  EXPECT_EQ(m->permissions[2].max_sdk, 18);
  EXPECT_EQ(m->uses_features, std::vector<std::string>{"android.hardware.camera"});
  EXPECT_EQ(m->uses_libraries, std::vector<std::string>{"org.apache.http.legacy"});
  EXPECT_EQ(m->queries.packages, std::vector<std::string>{"com.bank"});
  ASSERT_EQ(m->queries.intents.size(), 1u);
  EXPECT_EQ(m->queries.providers, std::vector<std::string>{"x.y"});
  EXPECT_FALSE(m->flags.allow_backup);
  EXPECT_TRUE(m->flags.allow_backup_explicit);
  EXPECT_EQ(m->flags.uses_cleartext_traffic, true);
  EXPECT_TRUE(m->flags.network_security_config);
  EXPECT_FALSE(m->flags.debuggable) << "only the first <application> counts";
  std::set<std::string> codes;
  for (const Anomaly& a : anomalies) codes.insert(a.code);
  EXPECT_TRUE(codes.count("manifest.multiple_application"));
  EXPECT_TRUE(codes.count("manifest.duplicate_permission"));
}

TEST(ManifestRulesTest, PreviewCodenameMinSdk) {
  XmlDocument document = Document({}, {}, 30);
  document.root.children[0].attributes = {Android(attr::kMinSdkVersion, "minSdkVersion", "Tiramisu")};
  auto m = ExtractManifest(document, nullptr, nullptr);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->min_sdk_codename, "Tiramisu");
  EXPECT_EQ(m->min_sdk, 10000);
}

TEST(ManifestRulesTest, CodenameMinSdkIsAnAnomalyAndroidRefuses) {
  XmlDocument document = Document({}, {}, 30);
  document.root.children[0].attributes = {Android(attr::kMinSdkVersion, "minSdkVersion", "IceCreamSandwich")};
  Anomalies anomalies;
  auto m = ExtractManifest(document, nullptr, &anomalies);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->min_sdk_codename, "IceCreamSandwich");
  ASSERT_EQ(anomalies.size(), 1u);
  EXPECT_EQ(anomalies[0].code, "manifest.codename_min_sdk");
  EXPECT_NE(anomalies[0].detail.find("'IceCreamSandwich'"), std::string::npos) << anomalies[0].detail;
  EXPECT_NE(anomalies[0].detail.find("refuses to install"), std::string::npos) << anomalies[0].detail;
  // A codename targetSdkVersion alone is not refused: no anomaly.
  document.root.children[0].attributes = {Android(attr::kMinSdkVersion, "minSdkVersion", "21"),
                                          Android(attr::kTargetSdkVersion, "targetSdkVersion", "Tiramisu")};
  anomalies.clear();
  m = ExtractManifest(document, nullptr, &anomalies);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->target_sdk_codename, "Tiramisu");
  EXPECT_TRUE(anomalies.empty());
}

TEST(ManifestRulesTest, AbsentVersionNameAndLabelAreNotEmptyStrings) {
  auto m = ExtractManifest(Document({}, {}, 30), nullptr, nullptr);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->version_name.has_value());
  EXPECT_FALSE(m->label.has_value());
  EXPECT_FALSE(m->compile_sdk.has_value());
  EXPECT_EQ(m->compile_sdk_source, "");
}

TEST(ManifestRulesTest, CompileSdkSaysWhereItWasRead) {
  XmlDocument document = Document({}, {}, 30);
  document.root.attributes.push_back(Plain("platformBuildVersionCode", "28"));
  auto m = ExtractManifest(document, nullptr, nullptr);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->compile_sdk, 28);
  EXPECT_EQ(m->compile_sdk_source, "platformBuildVersionCode");

  document.root.attributes.push_back(AndroidInt(attr::kCompileSdkVersion, "compileSdkVersion", 34));
  m = ExtractManifest(document, nullptr, nullptr);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->compile_sdk, 34);
  EXPECT_EQ(m->compile_sdk_source, "compileSdkVersion");
}

TEST(ManifestRulesTest, ForgedNameWithWrongResourceIdIsNotUsed) {
  // An attribute *named* "debuggable" whose resource id is something else is not android:debuggable.
  XmlAttribute forged = AndroidInt(attr::kTestOnly, "debuggable", 1, ValueType::kIntBoolean);
  auto m = ExtractManifest(Document({}, {}, 30, {forged}), nullptr, nullptr);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->flags.debuggable);
  EXPECT_TRUE(m->flags.test_only);
}

}  // namespace
}  // namespace appban::apk
