#include "appban/plist/plist.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace appban::plist {
namespace {

using ::testing::HasSubstr;

std::string FromHex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

Result<Value> ParseText(const std::string& text, const Limits& limits = {}) { return Parse(AsBytes(text), limits); }

// Written by Python 3.11's plistlib (an independent implementation) from
//   {"CFBundleIdentifier": "com.example.app", "CFBundleVersion": "42", "Count": 7, "Neg": -5,
//    "Big": 2**40, "Pi": 3.25, "On": True, "Off": False, "When": datetime(2024,1,2,3,4,5),
//    "Blob": b"\x00\x01\xff", "Unicode": "café 😀", "Schemes": ["weixin", "wechat"], "Empty": {},
//    "Nested": {"a": [1, [2, [3]]]}}
// with plistlib.dumps(d, fmt=plistlib.FMT_BINARY, sort_keys=False).
constexpr std::string_view kPythonBinaryPlist =
    "62706c6973743030de0102030405060708090a0b0c0d0e0f101112131415161718191a1d1e5f1012434642756e646c654964656e746966"
    "6965725f100f434642756e646c6556657273696f6e55436f756e74534e656753426967525069524f6e534f6666545768656e54426c6f62"
    "57556e69636f646557536368656d657355456d707479564e65737465645f100f636f6d2e6578616d706c652e61707052343210071"
    "3fffffffffffffffb13000001000000000023400a00000000000009083341c5a1da52800000430001ff6700630061006600e90020d83dde"
    "00a21b1c5677656978696e56776563686174d0d11f205161a221221001a223241002a125100300080025003a004c00520056005a005d00"
    "6000640069006e0076007e0084008b009d00a000a200ab00b400bd00be00bf00c800cc00db00de00e500ec00ed00f000f200f500f700fa"
    "00fc00fe0000000000000201000000000000002600000000000000000000000000000100";

void ExpectPythonValues(const Value& root) {
  ASSERT_TRUE(root.is_dict());
  EXPECT_EQ(*root.FindString("CFBundleIdentifier"), "com.example.app");
  EXPECT_EQ(*root.FindString("CFBundleVersion"), "42");
  EXPECT_EQ(root.Find("Count")->AsInteger(), 7);
  EXPECT_EQ(root.Find("Neg")->AsInteger(), -5);
  EXPECT_EQ(root.Find("Big")->AsInteger(), int64_t{1} << 40);
  EXPECT_EQ(root.Find("Pi")->AsReal(), 3.25);
  EXPECT_EQ(root.FindBoolean("On"), true);
  EXPECT_EQ(root.FindBoolean("Off"), false);
  EXPECT_EQ(root.Find("When")->AsDate(), 1704164645.0);  // 2024-01-02T03:04:05Z
  EXPECT_EQ(*root.Find("Blob")->AsData(), std::string("\x00\x01\xff", 3));
  EXPECT_EQ(*root.FindString("Unicode"), "caf\xc3\xa9 \xf0\x9f\x98\x80");
  EXPECT_EQ(root.FindStrings("Schemes"), (std::vector<std::string>{"weixin", "wechat"}));
  EXPECT_TRUE(root.FindDict("Empty")->empty());
  const Value* nested = root.Find("Nested")->Find("a");
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->AsArray()->at(1).AsArray()->at(1).AsArray()->at(0).AsInteger(), 3);
  // Document order is kept.
  EXPECT_EQ(root.AsDict()->front().first, "CFBundleIdentifier");
  EXPECT_EQ(root.AsDict()->at(13).first, "Nested");
}

TEST(PlistBinaryTest, ReadsWhatPythonPlistlibWrites) {
  std::string bytes = FromHex(kPythonBinaryPlist);
  auto root = Parse(AsBytes(bytes));
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  ExpectPythonValues(*root);
}

// ---- Cross-checked against libplist's plistutil (Debian libplist-utils, installed by
// scripts/setup.sh --test): another implementation writes the binary and XML forms, ours reads them.

class PlistutilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("plistutil -v >/dev/null 2>&1") != 0) {
      FAIL() << "plistutil is missing: scripts/setup.sh --test installs libplist-utils";
    }
    std::string pattern = (std::filesystem::temp_directory_path() / "appban-plistutil-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  // Writes `bytes` to a file, has plistutil convert it to `format` ("bin" or "xml"), and returns
  // what plistutil wrote.
  std::string Convert(const std::string& bytes, const char* format) {
    const auto in = dir_ / "in.plist";
    const auto out = dir_ / "out.plist";
    std::ofstream(in, std::ios::binary) << bytes;
    std::string command = "plistutil -i '" + in.string() + "' -o '" + out.string() + "' -f " + format;
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
    std::ifstream file(out, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(file), {});
  }

  std::filesystem::path dir_;
};

// A plist with every type and the edges of each: what an Info.plist, an entitlements blob or a
// provisioning profile can hold.
Value EveryType() {
  Value root = Value::MakeDict();
  root.Set("CFBundleIdentifier", Value::String("com.tencent.xin"));
  root.Set("Unicode", Value::String("\xe5\xbe\xae\xe4\xbf\xa1 caf\xc3\xa9 \xf0\x9f\x98\x80 <&>\"'"));
  root.Set("Empty string", Value::String(""));
  root.Set("Zero", Value::Integer(0));
  root.Set("Negative", Value::Integer(-123456789));
  root.Set("Past 32 bits", Value::Integer(int64_t{1} << 40));
  root.Set("Largest", Value::Integer(INT64_MAX));
  root.Set("Real", Value::Real(-2.5));
  root.Set("Yes", Value::Boolean(true));
  root.Set("No", Value::Boolean(false));
  root.Set("Date", Value::Date(1704164645.0));
  root.Set("Data", Value::Data(std::string("\x00\x01\x02\xfe\xff binary", 12)));
  root.Set("Long data", Value::Data(std::string(300, '\x5a')));
  Value schemes = Value::MakeArray({Value::String("weixin"), Value::String("wechat"), Value::String("weixinULAPI")});
  root.Set("LSApplicationQueriesSchemes", schemes);
  Value ats = Value::MakeDict();
  ats.Set("NSAllowsArbitraryLoads", Value::Boolean(true));
  Value domain = Value::MakeDict();
  domain.Set("NSIncludesSubdomains", Value::Boolean(true));
  Value domains = Value::MakeDict();
  domains.Set("qq.com", domain);
  ats.Set("NSExceptionDomains", domains);
  root.Set("NSAppTransportSecurity", ats);
  root.Set("Empty array", Value::MakeArray());
  root.Set("Empty dict", Value::MakeDict());
  Value deep = Value::MakeArray({Value::Integer(1)});
  for (int i = 0; i < 10; ++i) deep = Value::MakeArray({deep, Value::Integer(i)});
  root.Set("Nested", deep);
  Value many = Value::MakeArray();
  for (int i = 0; i < 300; ++i) many.MutableArray()->push_back(Value::String("entry-" + std::to_string(i % 40)));
  root.Set("Many (shared strings in binary form)", many);
  return root;
}

TEST_F(PlistutilTest, ReadsTheBinaryAndXmlPlistutilWritesFromOurXml) {
  const Value original = EveryType();
  const std::string ours = WriteXml(original);
  const std::string binary = Convert(ours, "bin");
  ASSERT_EQ(binary.substr(0, 8), "bplist00") << "plistutil wrote no binary plist";
  auto from_binary = ParseBinary(AsBytes(binary));
  ASSERT_TRUE(from_binary.ok()) << from_binary.status().ToString();
  EXPECT_TRUE(*from_binary == original) << "plistutil's binary form reads back as:\n" << WriteXml(*from_binary);
  const std::string xml = Convert(binary, "xml");
  auto from_xml = ParseXml(AsBytes(xml));
  ASSERT_TRUE(from_xml.ok()) << from_xml.status().ToString();
  EXPECT_TRUE(*from_xml == original) << "plistutil's XML form reads back as:\n" << WriteXml(*from_xml);
}

// Python's plistlib wrote this binary plist; plistutil reads it into XML, and our XML reader must
// find there what our binary reader found in the original bytes.
TEST_F(PlistutilTest, OurTwoReadersAgreeOnAThirdPartyBinaryPlistThroughPlistutil) {
  const std::string binary = FromHex(kPythonBinaryPlist);
  auto ours = ParseBinary(AsBytes(binary));
  ASSERT_TRUE(ours.ok()) << ours.status().ToString();
  const std::string xml = Convert(binary, "xml");
  ASSERT_NE(xml.find("<plist"), std::string::npos) << xml;
  auto through_plistutil = ParseXml(AsBytes(xml));
  ASSERT_TRUE(through_plistutil.ok()) << through_plistutil.status().ToString();
  EXPECT_TRUE(*through_plistutil == *ours) << WriteXml(*through_plistutil);
  ExpectPythonValues(*through_plistutil);
}

TEST(PlistXmlTest, ReadsAnInfoPlistAsXcodeWritesIt) {
  const std::string text = R"(<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<!-- a comment -->
	<key>CFBundleIdentifier</key>
	<string>com.tencent.xin</string>
	<key>NSCameraUsageDescription</key>
	<string>Scan &lt;QR&gt; codes &amp; take photos &#x1F600; &#233;</string>
	<key>UIRequiredDeviceCapabilities</key>
	<array>
		<string>arm64</string>
	</array>
	<key>UIDeviceFamily</key>
	<array><integer>1</integer><integer>0x2</integer><integer>-3</integer></array>
	<key>Ratio</key><real>-1.5e3</real>
	<key>Expires</key><date>2027-03-01T12:00:00Z</date>
	<key>Blob</key><data>
	AAH/
	</data>
	<key>Empty</key><string/>
	<key>CD</key><string><![CDATA[a<b>&c]]></string>
	<key>On</key><true/>
	<key>NoArray</key><array/>
</dict>
</plist>
)";
  auto root = ParseText(text);
  ASSERT_TRUE(root.ok()) << root.status().ToString();
  EXPECT_EQ(*root->FindString("CFBundleIdentifier"), "com.tencent.xin");
  EXPECT_EQ(*root->FindString("NSCameraUsageDescription"), "Scan <QR> codes & take photos \xf0\x9f\x98\x80 \xc3\xa9");
  EXPECT_EQ(root->FindStrings("UIRequiredDeviceCapabilities"), std::vector<std::string>{"arm64"});
  const auto* families = root->FindArray("UIDeviceFamily");
  ASSERT_EQ(families->size(), 3u);
  EXPECT_EQ((*families)[1].AsInteger(), 2);
  EXPECT_EQ((*families)[2].AsInteger(), -3);
  EXPECT_EQ(root->Find("Ratio")->AsReal(), -1500.0);
  EXPECT_EQ(root->Find("Expires")->AsDate(), 1803902400.0);
  EXPECT_EQ(*root->Find("Blob")->AsData(), std::string("\x00\x01\xff", 3));
  EXPECT_EQ(*root->FindString("Empty"), "");
  EXPECT_EQ(*root->FindString("CD"), "a<b>&c");
  EXPECT_EQ(root->FindBoolean("On"), true);
  EXPECT_TRUE(root->FindArray("NoArray")->empty());
}

TEST(PlistXmlTest, WriterOutputReadsBackToTheSameValue) {
  std::string bytes = FromHex(kPythonBinaryPlist);
  auto original = Parse(AsBytes(bytes));
  ASSERT_TRUE(original.ok());
  Value root = *original;
  root.Set("Escapes", Value::String("<a & b>\x01"));
  root.Set("Uid", Value::Uid(12));
  std::string xml = WriteXml(root);
  EXPECT_THAT(xml, HasSubstr("<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\""));
  EXPECT_THAT(xml, HasSubstr("\t<key>CFBundleIdentifier</key>\n\t<string>com.example.app</string>\n"));
  EXPECT_THAT(xml, HasSubstr("<date>2024-01-02T03:04:05Z</date>"));
  EXPECT_THAT(xml, HasSubstr("<string>&lt;a &amp; b&gt;\xef\xbf\xbd</string>"));
  EXPECT_THAT(xml, HasSubstr("<key>CF$UID</key>"));
  auto back = ParseText(xml);
  ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << xml;
  ExpectPythonValues(*back);
  EXPECT_EQ(*back->FindString("Escapes"), "<a & b>\xef\xbf\xbd");
}

TEST(PlistXmlTest, LongDataIsWrappedAndRoundTrips) {
  std::string blob;
  for (int i = 0; i < 1000; ++i) blob.push_back(static_cast<char>(i * 7));
  Value root = Value::MakeDict();
  root.Set("Payload", Value::Data(blob));
  std::string xml = WriteXml(root);
  auto back = ParseText(xml);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back->Find("Payload")->AsData(), blob);
}

TEST(PlistXmlTest, MalformedDocumentsAreClearErrors) {
  struct Case {
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"<plist><dict><key>a</key></dict></plist>", "has no value"},
      {"<plist><dict><string>x</string></dict></plist>", "where a <key> belongs"},
      {"<plist><string>unterminated</plist>", "<string> closed by </plist>"},
      {"<plist><integer>12x</integer></plist>", "bad <integer>"},
      {"<plist><integer>99999999999999999999</integer></plist>", "does not fit in 64 bits"},
      {"<plist><date>yesterday</date></plist>", "bad <date>"},
      {"<plist><data>!!!!</data></plist>", "not valid base64"},
      {"<plist><string>&bogus;</string></plist>", "unknown entity"},
      {"<plist><frob/></plist>", "unknown element <frob>"},
      {"<!DOCTYPE plist [<!ENTITY x \"y\">]><plist/>", "internal subset"},
      {"<plist><true/></plist><extra/>", "content after the end"},
      {"", "unexpected end of document"},
      {"<plist><array><string>a</string>", "unexpected end of document"},
  };
  for (const Case& c : cases) {
    auto result = ParseText(c.text);
    ASSERT_FALSE(result.ok()) << c.text;
    EXPECT_THAT(result.status().message(), HasSubstr(c.message)) << c.text;
  }
}

TEST(PlistXmlTest, DepthLimitStopsDeepNesting) {
  std::string text = "<plist>";
  for (int i = 0; i < 200; ++i) text += "<array>";
  for (int i = 0; i < 200; ++i) text += "</array>";
  text += "</plist>";
  auto result = ParseText(text);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kLimitExceeded);
  EXPECT_THAT(result.status().message(), HasSubstr("max_depth"));
  Limits deep;
  deep.max_depth = 300;
  EXPECT_TRUE(ParseText(text, deep).ok());
}

// A hand-built binary plist: objects laid out one after another, then the offset table and the
// trailer, so every field can be falsified.
struct BinaryBuilder {
  std::vector<std::string> objects;
  int ref_width = 1;
  std::string Build(uint64_t top = 0, int offset_width = 2, std::optional<uint64_t> count = std::nullopt,
                    std::optional<uint64_t> table = std::nullopt) const {
    std::string out = "bplist00";
    std::vector<size_t> offsets;
    for (const std::string& object : objects) {
      offsets.push_back(out.size());
      out += object;
    }
    size_t table_offset = out.size();
    for (size_t offset : offsets) {
      for (int i = offset_width - 1; i >= 0; --i) out.push_back(static_cast<char>((offset >> (8 * i)) & 0xff));
    }
    out += std::string(6, '\0');
    out.push_back(static_cast<char>(offset_width));
    out.push_back(static_cast<char>(ref_width));
    auto be64 = [&](uint64_t v) {
      for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    };
    be64(count.value_or(objects.size()));
    be64(top);
    be64(table.value_or(table_offset));
    return out;
  }
};

TEST(PlistBinaryTest, ReferenceCycleIsAnError) {
  BinaryBuilder b;
  b.objects = {std::string("\xa1\x01", 2), std::string("\xa1\x00", 2)};  // 0 → [1], 1 → [0]
  std::string bytes = b.Build();
  auto result = Parse(AsBytes(bytes));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(result.status().message(), HasSubstr("reference cycle"));
}

TEST(PlistBinaryTest, SharedObjectsAreReadButTheirFanOutIsBounded) {
  // Object i is an array holding object i+1 twice: 2^24 leaves from 25 objects.
  BinaryBuilder b;
  for (int i = 0; i < 24; ++i) b.objects.push_back(std::string("\xa2") + char(i + 1) + char(i + 1));
  b.objects.push_back("\x09");
  std::string bytes = b.Build();
  auto result = Parse(AsBytes(bytes));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kLimitExceeded);
  EXPECT_THAT(result.status().message(), HasSubstr("max_values"));

  BinaryBuilder small;
  small.objects = {std::string("\xa2\x01\x01"), "\x09"};
  std::string ok_bytes = small.Build();
  auto ok = Parse(AsBytes(ok_bytes));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->AsArray()->size(), 2u);
}

TEST(PlistBinaryTest, ReadsLongCountsUidsSetsAndFloats) {
  BinaryBuilder b;
  std::string long_string = "\x5f\x10\x14" + std::string(20, 'x');  // count as a 1-byte integer object
  b.objects = {std::string("\xa4\x01\x02\x03\x04", 5), long_string, std::string("\x81\x01\x02", 3),
               std::string("\xcf\x10\x01\x01", 4), std::string("\x22\x3f\xc0\x00\x00", 5)};
  std::string bytes = b.Build();
  auto result = Parse(AsBytes(bytes));
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  const auto& items = *result->AsArray();
  EXPECT_EQ(*items[0].AsString(), std::string(20, 'x'));
  EXPECT_EQ(items[1].AsUid(), 0x0102u);
  EXPECT_EQ(items[2].AsArray()->size(), 1u);
  EXPECT_EQ(items[3].AsReal(), 1.5);
}

TEST(PlistBinaryTest, MalformedTrailersAndObjectsAreClearErrors) {
  BinaryBuilder b;
  b.objects = {std::string("\xa1\x01", 2), "\x09"};
  struct Case {
    std::string bytes;
    StatusCode code;
    std::string message;
  };
  BinaryBuilder wide = b;
  wide.ref_width = 9;
  BinaryBuilder dangling;
  dangling.objects = {std::string("\xa1\x05", 2)};
  BinaryBuilder bad_key;
  bad_key.objects = {std::string("\xd1\x01\x01", 3), "\x10\x01"};
  BinaryBuilder long_data;
  long_data.objects = {std::string("\x4f\x12\x7f\xff\xff\xff", 6)};
  BinaryBuilder null_object;
  null_object.objects = {std::string("\x00", 1)};
  BinaryBuilder unknown;
  unknown.objects = {"\x95"};
  std::vector<Case> cases = {
      {"bplist00", StatusCode::kTruncated, "shorter than its header"},
      {b.Build(5), StatusCode::kCorruption, "top object 5"},
      {b.Build(0, 0), StatusCode::kCorruption, "offset size 0"},
      {wide.Build(), StatusCode::kCorruption, "object reference size 9"},
      {b.Build(0, 2, uint64_t{2'000'000}), StatusCode::kLimitExceeded, "max_objects"},
      {b.Build(0, 2, uint64_t{1000}), StatusCode::kCorruption, "does not fit between the header and the trailer"},
      {b.Build(0, 2, std::nullopt, uint64_t{2}), StatusCode::kCorruption, "offset table at 2"},
      {dangling.Build(), StatusCode::kCorruption, "refers to object 5 of 1"},
      {bad_key.Build(), StatusCode::kCorruption, "keys must be strings"},
      {long_data.Build(), StatusCode::kTruncated, "data runs past the object area"},
      {null_object.Build(), StatusCode::kUnsupported, "null or fill"},
      {unknown.Build(), StatusCode::kCorruption, "unknown marker 0x95"},
      {"bplist15" + std::string(40, '\0'), StatusCode::kUnsupported, "only bplist00"},
  };
  for (const Case& c : cases) {
    auto result = Parse(AsBytes(c.bytes));
    ASSERT_FALSE(result.ok()) << c.message;
    EXPECT_EQ(result.status().code(), c.code) << result.status().ToString();
    EXPECT_THAT(result.status().message(), HasSubstr(c.message));
  }
}

TEST(PlistBinaryTest, EveryTruncationOfARealFileIsAnErrorNotACrash) {
  std::string bytes = FromHex(kPythonBinaryPlist);
  for (size_t size = 0; size < bytes.size(); ++size) {
    auto result = Parse(AsBytes(std::string_view(bytes).substr(0, size)));
    EXPECT_FALSE(result.ok()) << size;
  }
  // Flipping any single byte either still parses or fails cleanly.
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string flipped = bytes;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x5a);
    (void)Parse(AsBytes(flipped));
  }
}

TEST(PlistTest, LooksLikePlistSniffsBothForms) {
  EXPECT_TRUE(LooksLikePlist(AsBytes("bplist00....")));
  EXPECT_TRUE(LooksLikePlist(AsBytes("<?xml version=\"1.0\"?>\n<!DOCTYPE plist PUBLIC>")));
  EXPECT_TRUE(LooksLikePlist(AsBytes("<plist version=\"1.0\">")));
  EXPECT_FALSE(LooksLikePlist(AsBytes("<html>")));
  EXPECT_FALSE(LooksLikePlist(AsBytes("PK\x03\x04")));
}

}  // namespace
}  // namespace appban::plist
