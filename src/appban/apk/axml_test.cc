// AXML reader tests. The reference is aapt (`aapt dump xmltree`), which reads binary XML with the
// same ResXMLTree code Android uses: on every example APK and on androguard's collection of
// tampered manifests, our element tree must equal aapt's. Tampered variants are made by patching
// bytes of a real manifest, so the expected facts come from the untampered original.
#include "appban/apk/axml.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <set>

#include <unistd.h>

#include "appban/apk/res_test_support.h"

namespace appban::apk {
namespace {

using testing::Get16;
using testing::Get32;
using testing::kExamples;
using testing::Put16;
using testing::Put32;

// One element as aapt prints it: depth, name, line and attributes.
struct FlatAttribute {
  std::string local_name;
  uint32_t resource_id = 0;
  enum class Kind { kString, kTyped, kReference, kOther } kind = Kind::kOther;
  std::string string_value;
  uint32_t type = 0;
  uint32_t data = 0;
};
struct FlatElement {
  size_t depth = 0;
  std::string name;
  uint32_t line = 0;
  std::vector<FlatAttribute> attributes;
};

std::vector<FlatElement> ParseAaptXmltree(const std::string& output) {
  std::vector<FlatElement> elements;
  // Indents of the open elements and namespace scopes ("N:" lines indent what follows too).
  struct Open {
    size_t indent;
    bool is_element;
  };
  std::vector<Open> open;
  auto close_to = [&](size_t indent) {
    while (!open.empty() && open.back().indent >= indent) open.pop_back();
  };
  for (const std::string& line : testing::Lines(output)) {
    size_t indent = line.find_first_not_of(' ');
    if (indent == std::string::npos) continue;
    std::string_view body = std::string_view(line).substr(indent);
    if (body.starts_with("N: ")) {
      close_to(indent);
      open.push_back({indent, false});
    } else if (body.starts_with("E: ")) {
      close_to(indent);
      FlatElement element;
      element.depth = std::count_if(open.begin(), open.end(), [](const Open& o) { return o.is_element; });
      open.push_back({indent, true});
      size_t name_end = body.find(" (line=");
      element.name = std::string(body.substr(3, name_end - 3));
      element.line = static_cast<uint32_t>(std::stoul(std::string(body.substr(name_end + 7))));
      elements.push_back(std::move(element));
    } else if (body.starts_with("A: ") && !elements.empty()) {
      FlatAttribute attribute;
      std::string_view rest = body.substr(3);
      size_t equals = rest.find('=');
      std::string_view qualified = rest.substr(0, equals);
      std::string_view value = rest.substr(equals + 1);
      if (size_t paren = qualified.find("(0x"); paren != std::string_view::npos) {
        attribute.resource_id =
            static_cast<uint32_t>(std::stoul(std::string(qualified.substr(paren + 1)), nullptr, 16));
        qualified = qualified.substr(0, paren);
      }
      size_t colon = qualified.rfind(':');
      attribute.local_name = std::string(colon == std::string_view::npos ? qualified : qualified.substr(colon + 1));
      if (value.starts_with("\"")) {
        size_t raw = value.rfind("\" (Raw: \"");
        attribute.kind = FlatAttribute::Kind::kString;
        attribute.string_value = std::string(value.substr(1, raw == std::string_view::npos ? 0 : raw - 1));
      } else if (value.starts_with("(type 0x")) {
        attribute.kind = FlatAttribute::Kind::kTyped;
        attribute.type = static_cast<uint32_t>(std::stoul(std::string(value.substr(6)), nullptr, 16));
        attribute.data = static_cast<uint32_t>(std::stoul(std::string(value.substr(value.find(')') + 1)), nullptr, 16));
      } else if (value.starts_with("@0x")) {
        attribute.kind = FlatAttribute::Kind::kReference;
        attribute.data = static_cast<uint32_t>(std::stoul(std::string(value.substr(1)), nullptr, 16));
      }
      elements.back().attributes.push_back(std::move(attribute));
    }
  }
  return elements;
}

void Flatten(const XmlElement& element, size_t depth, std::vector<const XmlElement*>* out,
             std::vector<size_t>* depths) {
  out->push_back(&element);
  depths->push_back(depth);
  for (const XmlElement& child : element.children) Flatten(child, depth + 1, out, depths);
}

// Asserts that `document` has exactly the elements and attributes aapt printed.
// With `aapt_stopped_early`, aapt's output is a prefix (it gives up printing at a null string), so
// only that prefix is compared.
void ExpectSameTreeAsAapt(const XmlDocument& document, const std::string& aapt_output, const std::string& label,
                          bool aapt_stopped_early = false) {
  std::vector<FlatElement> expected = ParseAaptXmltree(aapt_output);
  ASSERT_FALSE(expected.empty()) << label << ": aapt printed no elements";
  std::vector<const XmlElement*> actual;
  std::vector<size_t> depths;
  Flatten(document.root, 0, &actual, &depths);
  if (aapt_stopped_early) {
    ASSERT_GE(actual.size(), expected.size()) << label;
    actual.resize(expected.size());
  } else {
    ASSERT_EQ(actual.size(), expected.size()) << label;
  }
  for (size_t i = 0; i < expected.size(); ++i) {
    const FlatElement& want = expected[i];
    const XmlElement& got = *actual[i];
    SCOPED_TRACE(label + " element #" + std::to_string(i) + " <" + want.name + "> line " + std::to_string(want.line));
    EXPECT_EQ(depths[i], want.depth);
    EXPECT_EQ(got.name, want.name.substr(want.name.rfind(':') + 1));  // aapt prints "prefix:name"
    EXPECT_EQ(got.line, want.line);
    if (aapt_stopped_early && i + 1 == expected.size()) break;  // aapt died inside this element
    ASSERT_EQ(got.attributes.size(), want.attributes.size());
    for (size_t a = 0; a < want.attributes.size(); ++a) {
      const FlatAttribute& want_attribute = want.attributes[a];
      const XmlAttribute& got_attribute = got.attributes[a];
      SCOPED_TRACE("attribute " + want_attribute.local_name);
      EXPECT_EQ(got_attribute.resource_id, want_attribute.resource_id);
      // aapt prints the local name after the last ':'; a name that itself contains ':' (a
      // namespace trick) is compared by that suffix.
      std::string got_local = got_attribute.name.substr(got_attribute.name.rfind(':') + 1);
      EXPECT_EQ(got_local, want_attribute.local_name);
      switch (want_attribute.kind) {
        case FlatAttribute::Kind::kString:
          // aapt escapes some characters when printing; compare the plain ones.
          // aapt prints C strings, so a value with an embedded NUL shows only up to it.
          if (want_attribute.string_value.find('\\') == std::string::npos &&
              want_attribute.string_value.find('"') == std::string::npos &&
              std::all_of(want_attribute.string_value.begin(), want_attribute.string_value.end(),
                          [](char c) { return static_cast<unsigned char>(c) >= 0x20; })) {
            EXPECT_EQ(got_attribute.string_value.substr(0, got_attribute.string_value.find('\0')),
                      want_attribute.string_value);
          }
          break;
        case FlatAttribute::Kind::kTyped:
          EXPECT_EQ(static_cast<uint32_t>(got_attribute.type), want_attribute.type);
          EXPECT_EQ(got_attribute.data, want_attribute.data);
          break;
        case FlatAttribute::Kind::kReference:
          EXPECT_EQ(got_attribute.type, ValueType::kReference);
          EXPECT_EQ(got_attribute.data, want_attribute.data);
          break;
        case FlatAttribute::Kind::kOther:
          break;
      }
    }
  }
}

bool HasAnomaly(const Anomalies& anomalies, std::string_view code) {
  return std::any_of(anomalies.begin(), anomalies.end(), [&](const Anomaly& a) { return a.code == code; });
}

std::string Codes(const Anomalies& anomalies) {
  std::string out;
  for (const Anomaly& a : anomalies) out += a.code + " ";
  return out;
}

TEST(AxmlTest, ElementTreeMatchesAaptOnExampleApks) {
  size_t checked = 0;
  for (const auto& apk : testing::ExampleApks()) {
    std::string manifest = testing::ReadApkEntry(apk, "AndroidManifest.xml");
    std::string aapt =
        testing::RunCommand("aapt dump xmltree " + testing::ShellQuote(apk.string()) + " AndroidManifest.xml");
    if (manifest.empty() || aapt.empty()) continue;
    Anomalies anomalies;
    auto document = ParseAxml(AsBytes(manifest), Limits{}, &anomalies);
    ASSERT_TRUE(document.ok()) << apk << ": " << document.status().ToString();
    ExpectSameTreeAsAapt(*document, aapt, apk.filename().string());
    ++checked;
  }
  EXPECT_GE(checked, 5u) << "too few example APKs could be checked against aapt";
}

// androguard's collection of manifests with analyser-breaking tricks. Each is wrapped into a
// one-entry APK so aapt (Android's own reader) can dump it; our tree must equal its tree.
class AxmlTrickTest : public ::testing::Test {
 protected:
  void SetUp() override {
    temp_ = std::filesystem::temp_directory_path() / ("appban_axml_" + std::to_string(::getpid()));
    std::filesystem::create_directories(temp_);
  }
  void TearDown() override { std::filesystem::remove_all(temp_); }

  // aapt's xmltree for `manifest` bytes, "" when aapt refuses them.
  std::string AaptXmltree(const std::string& manifest) {
    std::filesystem::path dir = temp_ / "pkg";
    std::filesystem::create_directories(dir);
    { std::ofstream(dir / "AndroidManifest.xml", std::ios::binary) << manifest; }
    std::filesystem::remove(temp_ / "wrapped.apk");
    testing::RunCommand("cd " + testing::ShellQuote(dir.string()) + " && zip -q ../wrapped.apk AndroidManifest.xml");
    std::string out = testing::RunCommand("aapt dump xmltree " + testing::ShellQuote((temp_ / "wrapped.apk").string()) +
                                          " AndroidManifest.xml");
    return out.find("E: ") == std::string::npos ? "" : out;
  }

  std::filesystem::path temp_;
};

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_F(AxmlTrickTest, TreeMatchesAaptOnEveryTrick) {
  size_t checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kExamples / "axml")) {
    if (entry.path().extension() != ".xml") continue;
    std::string manifest = ReadFile(entry.path());
    Anomalies anomalies;
    auto document = ParseAxml(AsBytes(manifest), Limits{}, &anomalies);
    ASSERT_TRUE(document.ok()) << entry.path() << ": " << document.status().ToString();
    std::string aapt = AaptXmltree(manifest);
    if (aapt.empty()) continue;  // Android refuses it (see WrongFilesize below)
    // aapt stops printing at the first string Android reads as null (an unterminated one).
    bool aapt_stopped_early = !aapt.ends_with("\n");
    ExpectSameTreeAsAapt(*document, aapt, entry.path().filename().string(), aapt_stopped_early);
    ++checked;
  }
  EXPECT_GE(checked, 15u);
}

TEST_F(AxmlTrickTest, NamedTricksAreReported) {
  struct Case {
    const char* file;
    const char* code;
  };
  for (const Case& c : {Case{"AndroidManifest_WrongChunkStart.xml", "axml.file_type"},
                        Case{"AndroidManifestWrongFilesize.xml", "axml.file_size"},
                        Case{"AndroidManifestNonZeroStyle.xml", "axml.styles_start_without_styles"},
                        Case{"AndroidManifestDoubleNamespace.xml", "axml.duplicate_namespace"}}) {
    Anomalies anomalies;
    auto document = ParseAxml(AsBytes(ReadFile(kExamples / "axml" / c.file)), Limits{}, &anomalies);
    ASSERT_TRUE(document.ok()) << c.file << ": " << document.status().ToString();
    EXPECT_EQ(document->root.name, "manifest") << c.file;
    EXPECT_TRUE(HasAnomaly(anomalies, c.code)) << c.file << " anomalies: " << Codes(anomalies);
  }
}

TEST_F(AxmlTrickTest, WrongFilesizeIsReadWhereAndroidGivesUp) {
  // aapt (ResXMLTree) refuses the file: its declared size exceeds the data. We read it anyway,
  // and the tree we get is the one aapt prints once the size field is repaired.
  std::string manifest = ReadFile(kExamples / "axml" / "AndroidManifestWrongFilesize.xml");
  ASSERT_EQ(AaptXmltree(manifest), "");
  Anomalies anomalies;
  auto document = ParseAxml(AsBytes(manifest), Limits{}, &anomalies);
  ASSERT_TRUE(document.ok());
  std::string repaired = manifest;
  Put32(&repaired, 4, static_cast<uint32_t>(repaired.size()));
  std::string aapt = AaptXmltree(repaired);
  ASSERT_NE(aapt, "");
  ExpectSameTreeAsAapt(*document, aapt, "WrongFilesize", /*aapt_stopped_early=*/!aapt.ends_with("\n"));
  EXPECT_TRUE(HasAnomaly(anomalies, "axml.file_size"));
}

TEST(AxmlTest, PlainTextXmlIsNotRecognized) {
  std::string manifest = ReadFile(kExamples / "android" / "TC" / "AndroidManifest.xml");
  ASSERT_FALSE(manifest.empty());
  auto document = ParseAxml(AsBytes(manifest), Limits{}, nullptr);
  EXPECT_EQ(document.status().code(), StatusCode::kNotRecognized);
  EXPECT_EQ(ParseAxml(AsBytes(std::string("\xef\xbb\xbf  <manifest/>")), Limits{}, nullptr).status().code(),
            StatusCode::kNotRecognized);
  EXPECT_EQ(ParseAxml({}, Limits{}, nullptr).status().code(), StatusCode::kNotRecognized);
  EXPECT_EQ(ParseAxml(AsBytes(std::string("PK\x03\x04 not xml at all")), Limits{}, nullptr).status().code(),
            StatusCode::kNotRecognized);
}

// ---- Tampered variants of a real manifest --------------------------------------------------

std::string PoliteDroidManifest() {
  return testing::ReadApkEntry(kExamples / "tests" / "com.politedroid_4.apk", "AndroidManifest.xml");
}

// The layout facts of an untampered aapt manifest the patches below rely on.
struct Layout {
  size_t pool = 8;  // string pool chunk
  size_t pool_size = 0;
  size_t resource_map = 0;  // RES_XML_RESOURCE_MAP_TYPE chunk
  size_t first_node = 0;
  size_t second_element = 0;  // the START_ELEMENT after the root's
};

Layout FindLayout(const std::string& data) {
  Layout layout;
  layout.pool_size = Get32(data, 12);
  layout.resource_map = layout.pool + layout.pool_size;
  layout.first_node = layout.resource_map + Get32(data, layout.resource_map + 4);
  size_t offset = layout.first_node;
  int elements = 0;
  while (offset + 8 <= data.size()) {
    if (Get16(data, offset) == 0x0102 && ++elements == 2) {
      layout.second_element = offset;
      break;
    }
    offset += Get32(data, offset + 4);
  }
  return layout;
}

std::string InsertChunk(const std::string& data, size_t at, uint16_t type, uint16_t header_size, uint32_t size) {
  std::string chunk(size, '\0');
  Put16(&chunk, 0, type);
  Put16(&chunk, 2, header_size);
  Put32(&chunk, 4, size);
  std::string out = data.substr(0, at) + chunk + data.substr(at);
  Put32(&out, 4, Get32(out, 4) + size);
  return out;
}

// What a reader of the tampered file must still see: every element, attribute id and value.
void ExpectSameDocument(const XmlDocument& got, const XmlDocument& want, bool compare_names) {
  std::vector<const XmlElement*> a, b;
  std::vector<size_t> da, db;
  Flatten(got.root, 0, &a, &da);
  Flatten(want.root, 0, &b, &db);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]->name, b[i]->name);
    EXPECT_EQ(da[i], db[i]);
    ASSERT_EQ(a[i]->attributes.size(), b[i]->attributes.size());
    for (size_t j = 0; j < a[i]->attributes.size(); ++j) {
      const XmlAttribute& x = a[i]->attributes[j];
      const XmlAttribute& y = b[i]->attributes[j];
      EXPECT_EQ(x.resource_id, y.resource_id);
      EXPECT_EQ(x.type, y.type);
      EXPECT_EQ(x.data, y.data);
      if (x.type == ValueType::kString) {
        EXPECT_EQ(x.string_value, y.string_value);
      }
      if (compare_names) {
        EXPECT_EQ(x.name, y.name);
      }
    }
  }
}

class AxmlTamperedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    original_ = PoliteDroidManifest();
    ASSERT_GT(original_.size(), 100u);
    ASSERT_EQ(Get16(original_, 8), 0x0001) << "expected the string pool first";
    auto parsed = ParseAxml(AsBytes(original_), Limits{}, &clean_anomalies_);
    ASSERT_TRUE(parsed.ok());
    reference_ = std::move(parsed).value();
    layout_ = FindLayout(original_);
    ASSERT_NE(layout_.second_element, 0u);
    ASSERT_EQ(Get16(original_, layout_.resource_map), 0x0180);
  }

  // Parses `tampered`, checks it reads as the original and that `code` was reported.
  void ExpectReadAsOriginal(const std::string& tampered, std::string_view code, bool compare_names = true) {
    Anomalies anomalies;
    auto document = ParseAxml(AsBytes(tampered), Limits{}, &anomalies);
    ASSERT_TRUE(document.ok()) << document.status().ToString();
    ExpectSameDocument(*document, reference_, compare_names);
    EXPECT_TRUE(HasAnomaly(anomalies, code)) << "anomalies: " << Codes(anomalies);
  }

  std::string original_;
  XmlDocument reference_;
  Anomalies clean_anomalies_;
  Layout layout_;
};

TEST_F(AxmlTamperedTest, UntamperedHasNoAnomalies) { EXPECT_EQ(Codes(clean_anomalies_), ""); }

TEST_F(AxmlTamperedTest, BogusFileHeaderSize) {
  std::string tampered = original_;
  Put16(&tampered, 2, 0x0014);  // points into the string pool header
  ExpectReadAsOriginal(tampered, "axml.header_size");
}

TEST_F(AxmlTamperedTest, WrongFileType) {
  std::string tampered = original_;
  Put16(&tampered, 0, 0x0777);
  ExpectReadAsOriginal(tampered, "axml.file_type");
}

TEST_F(AxmlTamperedTest, DeclaredFileSizeTooLarge) {
  std::string tampered = original_;
  Put32(&tampered, 4, 0x42424242);
  ExpectReadAsOriginal(tampered, "axml.file_size");
}

TEST_F(AxmlTamperedTest, BogusStringCount) {
  std::string tampered = original_;
  Put32(&tampered, layout_.pool + 8, 0x7fffffff);
  ExpectReadAsOriginal(tampered, "axml.string_count");
}

TEST_F(AxmlTamperedTest, BogusStyleCountAndStringsStart) {
  std::string tampered = original_;
  Put32(&tampered, layout_.pool + 12, 0x1000);  // styleCount, with no styles
  Put32(&tampered, layout_.pool + 24, 0x0);     // stylesStart
  ExpectReadAsOriginal(tampered, "axml.styles_start");
  tampered = original_;
  Put32(&tampered, layout_.pool + 20, 0xfffffff0);  // stringsStart past the chunk
  ExpectReadAsOriginal(tampered, "axml.strings_start");
}

TEST_F(AxmlTamperedTest, UnknownFlagBitsInStringPool) {
  std::string tampered = original_;
  Put32(&tampered, layout_.pool + 16, Get32(original_, layout_.pool + 16) | 0x00f0'0000);
  ExpectReadAsOriginal(tampered, "axml.string_pool_flags");
}

TEST_F(AxmlTamperedTest, UnknownChunkBeforeFirstElement) {
  ExpectReadAsOriginal(InsertChunk(original_, layout_.first_node, 0x0777, 8, 16), "axml.unknown_chunk");
}

TEST_F(AxmlTamperedTest, UnknownChunkBetweenElements) {
  ExpectReadAsOriginal(InsertChunk(original_, layout_.second_element, 0x0042, 16, 24), "axml.unknown_chunk");
}

TEST_F(AxmlTamperedTest, LateStringPoolIsIgnoredLikeAndroid) {
  // A string pool after the first node is skipped by Android's nextNode(); it must not replace
  // the real one (that is how a forged pool fools analysers that honour every pool).
  std::string forged_pool = original_.substr(layout_.pool, layout_.pool_size);
  std::string tampered =
      original_.substr(0, layout_.second_element) + forged_pool + original_.substr(layout_.second_element);
  Put32(&tampered, 4, static_cast<uint32_t>(tampered.size()));
  ExpectReadAsOriginal(tampered, "axml.unknown_chunk");
}

TEST_F(AxmlTamperedTest, StrippedAttributeNamesStillMatchByResourceId) {
  // Overwrite the text of every string the resource map names (the android: attribute names) with
  // 'x's; Android still finds the attributes by resource id.
  std::string tampered = testing::StripResourceMappedNames(original_);
  ASSERT_NE(tampered, original_);
  ExpectReadAsOriginal(tampered, "axml.attribute_name_mismatch", /*compare_names=*/false);
  auto document = ParseAxml(AsBytes(tampered), Limits{}, nullptr);
  ASSERT_TRUE(document.ok());
  const XmlAttribute* version = document->root.FindAndroidAttribute(attr::kVersionCode, "versionCode");
  ASSERT_NE(version, nullptr);
  EXPECT_NE(version->name, "versionCode");
  EXPECT_EQ(version->data, reference_.root.FindAndroidAttribute(attr::kVersionCode, "versionCode")->data);
}

TEST_F(AxmlTamperedTest, AttributeSizeAndStartTricks) {
  // The root element's attributes declared 24 bytes apart, with 4 bytes of padding added after each.
  const size_t element = layout_.first_node + Get32(original_, layout_.first_node + 4);  // after START_NAMESPACE
  ASSERT_EQ(Get16(original_, element), 0x0102);
  const size_t ext = element + 16;
  const uint16_t count = Get16(original_, ext + 12);
  ASSERT_GT(count, 1);
  std::string attributes = original_.substr(ext + 20, 20u * count);
  std::string padded;
  for (uint16_t i = 0; i < count; ++i) padded += attributes.substr(20u * i, 20) + std::string(4, '\x5a');
  std::string tampered = original_.substr(0, ext + 20) + padded + original_.substr(ext + 20 + 20u * count);
  Put16(&tampered, ext + 10, 24);
  Put32(&tampered, element + 4, Get32(original_, element + 4) + 4u * count);
  Put32(&tampered, 4, static_cast<uint32_t>(tampered.size()));
  ExpectReadAsOriginal(tampered, "axml.attribute_size");
}

TEST_F(AxmlTamperedTest, ChunkOverrunAndTruncationNeverCrash) {
  // Every prefix: either an error or a (partial) document, never a crash; the full file is clean.
  for (size_t length = 0; length < original_.size(); length += 7) {
    Anomalies anomalies;
    auto document = ParseAxml(AsBytes(std::string_view(original_).substr(0, length)), Limits{}, &anomalies);
    if (document.ok()) {
      EXPECT_EQ(document->root.name, "manifest");
    }
  }
  std::string tampered = original_;
  Put32(&tampered, layout_.second_element + 4, 0x00fffff0);  // element chunk overruns the file
  Anomalies anomalies;
  auto document = ParseAxml(AsBytes(tampered), Limits{}, &anomalies);
  ASSERT_TRUE(document.ok());
  EXPECT_TRUE(HasAnomaly(anomalies, "axml.chunk_overrun")) << Codes(anomalies);
}

TEST_F(AxmlTamperedTest, LimitsAreEnforced) {
  Limits limits;
  limits.max_xml_nodes = 3;
  EXPECT_EQ(ParseAxml(AsBytes(original_), limits, nullptr).status().code(), StatusCode::kLimitExceeded);
  limits = Limits{};
  limits.max_xml_depth = 1;
  EXPECT_EQ(ParseAxml(AsBytes(original_), limits, nullptr).status().code(), StatusCode::kLimitExceeded);
  limits = Limits{};
  limits.max_string_pool_strings = 2;
  EXPECT_EQ(ParseAxml(AsBytes(original_), limits, nullptr).status().code(), StatusCode::kLimitExceeded);
}

}  // namespace
}  // namespace appban::apk

namespace appban::apk {
namespace {

TEST(AxmlTest, LargeManifestParsesQuickly) {
  // LineageOS framework-res's manifest: 160 KB, thousands of elements.
  std::string manifest =
      testing::ReadApkEntry(kExamples / "tests" / "lineageos_nexus5_framework-res.apk", "AndroidManifest.xml");
  if (manifest.size() < 100'000) GTEST_SKIP() << "framework-res example missing";
  double best_ms = 1e9;
  for (int round = 0; round < 5; ++round) {
    auto start = std::chrono::steady_clock::now();
    auto document = ParseAxml(AsBytes(manifest), Limits{}, nullptr);
    best_ms =
        std::min(best_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    ASSERT_TRUE(document.ok());
  }
  std::cout << "[ timing ] parsing " << manifest.size() << "-byte AndroidManifest.xml: " << best_ms << " ms\n";
  // Hang guard, not a timing goal (bench/ holds those).
  EXPECT_LT(best_ms, 2000.0);
}

}  // namespace
}  // namespace appban::apk

namespace appban::apk {
namespace {

TEST(AxmlTest, AliasedAttributesCannotBlowUpMemory) {
  // One element with 65535 attributes all aliasing one record (attributeSize 0) whose value is a
  // 30,000-character string: 2 GB of text if materialised naively.
  std::string pool_strings;
  std::string text(30000, 'A');
  std::string chunk;
  auto put16 = [](std::string* s, uint16_t v) {
    s->push_back(char(v & 0xff));
    s->push_back(char(v >> 8));
  };
  auto put32 = [&](std::string* s, uint32_t v) {
    put16(s, v & 0xffff);
    put16(s, v >> 16);
  };
  // String pool: 2 UTF-8 strings: "m" (element name), the long text.
  std::string data;
  data += char(1);
  data += char(1);
  data += "m";
  data += '\0';
  const uint32_t second = static_cast<uint32_t>(data.size());
  data += char(0x80 | (text.size() >> 8));
  data += char(text.size() & 0xff);
  data += char(0x80 | (text.size() >> 8));
  data += char(text.size() & 0xff);
  data += text;
  data += '\0';
  while (data.size() % 4) data += '\0';
  std::string pool;
  put16(&pool, 0x0001);
  put16(&pool, 28);
  put32(&pool, 28 + 8 + static_cast<uint32_t>(data.size()));
  put32(&pool, 2);
  put32(&pool, 0);
  put32(&pool, 0x100);
  put32(&pool, 28 + 8);
  put32(&pool, 0);
  put32(&pool, 0);
  put32(&pool, second);
  pool += data;
  std::string element;
  put16(&element, 0x0102);
  put16(&element, 16);
  put32(&element, 16 + 20 + 20);
  put32(&element, 1);
  put32(&element, 0xffffffff);
  put32(&element, 0xffffffff);
  put32(&element, 0);  // ns, name "m"
  put16(&element, 20);
  put16(&element, 0);
  put16(&element, 0xffff);  // start, size 0, count 65535
  put16(&element, 0);
  put16(&element, 0);
  put16(&element, 0);
  put32(&element, 0xffffffff);
  put32(&element, 0);
  put32(&element, 1);  // ns, name, raw = long text
  put16(&element, 8);
  element += char(0);
  element += char(0x03);
  put32(&element, 1);
  std::string file;
  put16(&file, 0x0003);
  put16(&file, 8);
  put32(&file, static_cast<uint32_t>(8 + pool.size() + element.size()));
  file += pool + element;
  Anomalies anomalies;
  auto document = ParseAxml(AsBytes(file), Limits{}, &anomalies);
  EXPECT_EQ(document.status().code(), StatusCode::kLimitExceeded) << document.status().ToString();
}

}  // namespace
}  // namespace appban::apk
