// resources.arsc tests: every default-configuration string and integer aapt prints for the
// example APKs must resolve to the same value; reference chains, cycles, sparse and 16-bit offset
// type chunks are checked on tables built here byte by byte from the format spec (ResourceTypes.h).
#include "appban/apk/arsc.h"

#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <random>
#include <set>

#include "appban/apk/res_test_support.h"

namespace appban::apk {
namespace {

using testing::kExamples;
using testing::Put16;
using testing::Put32;

// ---- aapt cross-check ---------------------------------------------------------------------

struct DefaultValue {
  uint32_t id = 0;
  uint32_t type = 0;
  uint32_t data = 0;
  std::optional<std::string> text;  // for strings aapt printed without escapes
};

// Entries of "config (default):" sections in `aapt dump --values resources`.
std::vector<DefaultValue> DefaultValuesFromAapt(const std::string& output) {
  std::vector<DefaultValue> values;
  bool in_default = false;
  std::vector<std::string> lines = testing::Lines(output);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    size_t indent = line.find_first_not_of(' ');
    if (indent == std::string_view::npos) continue;
    line.remove_prefix(indent);
    if (line.starts_with("config ")) {
      in_default = line == "config (default):";
      continue;
    }
    if (line.starts_with("type ") || line.starts_with("Package")) in_default = false;
    if (!in_default || !line.starts_with("resource 0x")) continue;
    size_t t = line.find(": t=0x");
    if (t == std::string_view::npos) continue;  // a <bag>
    DefaultValue value;
    value.id = static_cast<uint32_t>(std::stoul(std::string(line.substr(9, 10)), nullptr, 16));
    value.type = static_cast<uint32_t>(std::stoul(std::string(line.substr(t + 4, 4)), nullptr, 16));
    value.data = static_cast<uint32_t>(std::stoul(std::string(line.substr(line.find(" d=0x") + 3, 10)), nullptr, 16));
    if (value.type == 0x03 && i + 1 < lines.size()) {
      const std::string& next = lines[i + 1];
      size_t open = next.find(") \"");
      if (open != std::string::npos && next.ends_with("\"")) {
        std::string text = next.substr(open + 3, next.size() - open - 4);
        if (text.find('\\') == std::string::npos && text.find('"') == std::string::npos) value.text = text;
      }
    }
    values.push_back(std::move(value));
  }
  return values;
}

TEST(ArscTest, DefaultValuesMatchAaptOnExampleApks) {
  size_t checked_apks = 0;
  for (const auto& apk : testing::ExampleApks()) {
    if (apk.filename().string().find("framework-res") != std::string::npos) continue;  // aapt's dump is huge
    SCOPED_TRACE(apk.filename().string());
    std::string arsc = testing::ReadApkEntry(apk, "resources.arsc");
    if (arsc.empty()) continue;
    auto values =
        DefaultValuesFromAapt(testing::RunCommand("aapt dump --values resources " + testing::ShellQuote(apk.string())));
    if (values.empty()) continue;
    Anomalies anomalies;
    auto table = ResourceTable::Parse(Buffer::CopyOf(AsBytes(arsc)), Limits{}, &anomalies);
    ASSERT_TRUE(table.ok()) << table.status().ToString();
    EXPECT_GE(table->package_count(), 1u);
    size_t strings = 0;
    for (const DefaultValue& want : values) {
      SCOPED_TRACE(testing::ShellQuote(std::to_string(want.id)));
      if (want.type == 0x01 || want.type == 0x07) continue;  // references: followed, checked below
      auto got = table->Resolve(want.id);
      ASSERT_TRUE(got.has_value()) << std::hex << want.id;
      EXPECT_EQ(static_cast<uint32_t>(got->type), want.type) << std::hex << want.id;
      EXPECT_EQ(got->data, want.data) << std::hex << want.id;
      if (want.text) {
        EXPECT_EQ(got->string_value, *want.text) << std::hex << want.id;
        EXPECT_EQ(table->ResolveString(want.id), *want.text);
        ++strings;
      }
    }
    // A reference resolves to what its target resolves to.
    for (const DefaultValue& want : values) {
      if (want.type != 0x01 || want.data == 0) continue;
      auto via_reference = table->Resolve(want.id);
      auto direct = table->Resolve(want.data);
      ASSERT_EQ(via_reference.has_value(), direct.has_value()) << std::hex << want.id;
      if (direct) {
        EXPECT_EQ(via_reference->data, direct->data);
      }
    }
    EXPECT_GT(strings, 0u);
    ++checked_apks;
  }
  EXPECT_GE(checked_apks, 5u);
}

TEST(ArscTest, NotATable) {
  EXPECT_EQ(
      ResourceTable::Parse(Buffer::CopyOf(AsBytes(std::string("<resources/>"))), Limits{}, nullptr).status().code(),
      StatusCode::kNotRecognized);
  EXPECT_EQ(ResourceTable::Parse(Buffer(), Limits{}, nullptr).status().code(), StatusCode::kNotRecognized);
}

TEST(ArscTest, LargeFrameworkTableIndexesQuickly) {
  // LineageOS framework-res: a 19 MB table with thousands of type chunks.
  const auto apk = kExamples / "tests" / "lineageos_nexus5_framework-res.apk";
  std::string arsc = testing::ReadApkEntry(apk, "resources.arsc");
  if (arsc.size() < (10u << 20)) GTEST_SKIP() << "framework-res example missing";
  double best_ms = 1e9;
  std::optional<ResourceTable> kept;
  for (int round = 0; round < 5; ++round) {
    Buffer copy = Buffer::CopyOf(AsBytes(arsc));
    auto start = std::chrono::steady_clock::now();
    auto table = ResourceTable::Parse(std::move(copy), Limits{}, nullptr);
    auto elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(table.ok());
    best_ms = std::min(best_ms, elapsed);
    kept.emplace(std::move(table).value());
  }
  std::cout << "[ timing ] indexing " << arsc.size() << "-byte resources.arsc: " << best_ms << " ms\n";
  // Hang guard, not a timing goal (bench/ holds those): decoding the whole table would take seconds.
  EXPECT_LT(best_ms, 2000.0) << "indexing must not decode the table";
  // android:string/ok style lookups work (aapt badging shows the label resolved from here too).
  EXPECT_EQ(kept->package_count(), 1u);
}

// ---- Hand-built tables ----------------------------------------------------------------------

std::string Align4(std::string s) {
  while (s.size() % 4) s.push_back('\0');
  return s;
}

std::string Utf8Pool(const std::vector<std::string>& strings) {
  std::string data;
  std::vector<uint32_t> offsets;
  for (const std::string& s : strings) {
    offsets.push_back(static_cast<uint32_t>(data.size()));
    data.push_back(static_cast<char>(s.size()));  // UTF-16 length (ASCII here)
    data.push_back(static_cast<char>(s.size()));  // UTF-8 byte length
    data += s;
    data.push_back('\0');
  }
  data = Align4(data);
  std::string chunk(28 + 4 * strings.size(), '\0');
  Put16(&chunk, 0, 0x0001);
  Put16(&chunk, 2, 28);
  Put32(&chunk, 8, static_cast<uint32_t>(strings.size()));
  Put32(&chunk, 16, 0x100);
  Put32(&chunk, 20, static_cast<uint32_t>(chunk.size()));
  for (size_t i = 0; i < offsets.size(); ++i) Put32(&chunk, 28 + 4 * i, offsets[i]);
  chunk += data;
  Put32(&chunk, 4, static_cast<uint32_t>(chunk.size()));
  return chunk;
}

struct Entry {
  uint32_t index;
  uint8_t type;
  uint32_t data;
  bool complex = false;
};

enum class Layout { kDense32, kOffset16, kSparse };

// A RES_TABLE_TYPE_TYPE chunk; `language` non-empty makes it a non-default configuration.
std::string TypeChunk(uint8_t type_id, uint32_t entry_count, const std::vector<Entry>& entries, Layout layout,
                      const std::string& language = "") {
  constexpr size_t kConfigSize = 64;
  const size_t header = 20 + kConfigSize;
  std::string entry_bytes;
  std::vector<std::pair<uint32_t, uint32_t>> offsets;  // index, offset
  for (const Entry& e : entries) {
    offsets.push_back({e.index, static_cast<uint32_t>(entry_bytes.size())});
    std::string entry(16, '\0');
    Put16(&entry, 0, e.complex ? 16 : 8);
    Put16(&entry, 2, e.complex ? 1 : 0);
    if (e.complex) {
      entry += std::string(8, '\0');  // parent + count 0
    } else {
      Put16(&entry, 8, 8);
      entry[11] = static_cast<char>(e.type);
      Put32(&entry, 12, e.data);
    }
    entry_bytes += entry;
  }
  std::string offset_bytes;
  if (layout == Layout::kSparse) {
    for (auto [index, offset] : offsets) {
      std::string pair(4, '\0');
      Put16(&pair, 0, static_cast<uint16_t>(index));
      Put16(&pair, 2, static_cast<uint16_t>(offset / 4));
      offset_bytes += pair;
    }
  } else {
    const size_t width = layout == Layout::kOffset16 ? 2 : 4;
    offset_bytes.assign(width * entry_count, '\xff');
    for (auto [index, offset] : offsets) {
      if (width == 2) {
        Put16(&offset_bytes, 2 * index, static_cast<uint16_t>(offset / 4));
      } else {
        Put32(&offset_bytes, 4 * index, offset);
      }
    }
  }
  offset_bytes = Align4(offset_bytes);
  std::string chunk(header, '\0');
  Put16(&chunk, 0, 0x0201);
  Put16(&chunk, 2, static_cast<uint16_t>(header));
  chunk[8] = static_cast<char>(type_id);
  chunk[9] = static_cast<char>(layout == Layout::kSparse ? 0x01 : layout == Layout::kOffset16 ? 0x02 : 0x00);
  Put32(&chunk, 12, layout == Layout::kSparse ? static_cast<uint32_t>(offsets.size()) : entry_count);
  Put32(&chunk, 16, static_cast<uint32_t>(header + offset_bytes.size()));
  Put32(&chunk, 20, kConfigSize);
  if (!language.empty()) {
    chunk[20 + 8] = language[0];
    chunk[20 + 9] = language[1];
  }
  chunk += offset_bytes + entry_bytes;
  Put32(&chunk, 4, static_cast<uint32_t>(chunk.size()));
  return chunk;
}

std::string Table(const std::vector<std::string>& strings, const std::vector<std::string>& type_chunks,
                  uint32_t package_id = 0x7f) {
  std::string package(288, '\0');
  Put16(&package, 0, 0x0200);
  Put16(&package, 2, 288);
  Put32(&package, 8, package_id);
  for (const std::string& chunk : type_chunks) package += chunk;
  Put32(&package, 4, static_cast<uint32_t>(package.size()));
  std::string table(12, '\0');
  Put16(&table, 0, 0x0002);
  Put16(&table, 2, 12);
  Put32(&table, 8, 1);
  table += Utf8Pool(strings) + package;
  Put32(&table, 4, static_cast<uint32_t>(table.size()));
  return table;
}

ResourceTable ParseOrDie(const std::string& bytes, Anomalies* anomalies = nullptr, Limits limits = {}) {
  auto table = ResourceTable::Parse(Buffer::CopyOf(AsBytes(bytes)), limits, anomalies);
  EXPECT_TRUE(table.ok()) << table.status().ToString();
  return std::move(table).value();
}

constexpr uint8_t kString = 0x03, kReference = 0x01, kInt = 0x10;

TEST(ArscBuiltTest, ReferencesAreFollowedAndCyclesEnd) {
  // type 1 (string): 0 -> "Hello", 1 -> @0x7f010000, 2 -> @0x7f010001 (a chain),
  // 3 <-> 4 (a cycle), 5 -> @null.
  std::string table = Table({"Hello"}, {TypeChunk(1, 6,
                                                  {{0, kString, 0},
                                                   {1, kReference, 0x7f010000},
                                                   {2, kReference, 0x7f010001},
                                                   {3, kReference, 0x7f010004},
                                                   {4, kReference, 0x7f010003},
                                                   {5, kReference, 0}},
                                                  Layout::kDense32)});
  ResourceTable resources = ParseOrDie(table);
  EXPECT_EQ(resources.ResolveString(0x7f010000), "Hello");
  EXPECT_EQ(resources.ResolveString(0x7f010002), "Hello");
  EXPECT_EQ(resources.Resolve(0x7f010003), std::nullopt);
  EXPECT_EQ(resources.Resolve(0x7f010005)->type, ValueType::kReference);  // @null stays as is
  EXPECT_EQ(resources.Resolve(0x7f010006), std::nullopt);                 // beyond entryCount
  EXPECT_EQ(resources.Resolve(0x7f020000), std::nullopt);                 // no such type
  EXPECT_EQ(resources.Resolve(0x01010000), std::nullopt);                 // no such package

  Limits shallow;
  shallow.max_resource_reference_depth = 1;
  ResourceTable limited = ParseOrDie(table, nullptr, shallow);
  EXPECT_EQ(limited.ResolveString(0x7f010001), "Hello");
  EXPECT_EQ(limited.ResolveString(0x7f010002), std::nullopt);
}

TEST(ArscBuiltTest, DefaultConfigurationWinsAndFirstConfigIsTheFallback) {
  std::string table =
      Table({"Bonjour", "Hello", "Hallo"}, {TypeChunk(1, 2, {{0, kString, 0}, {1, kString, 2}}, Layout::kDense32, "fr"),
                                            TypeChunk(1, 2, {{0, kString, 1}}, Layout::kDense32),
                                            TypeChunk(1, 2, {{1, kString, 0}}, Layout::kDense32, "de")});
  ResourceTable resources = ParseOrDie(table);
  EXPECT_EQ(resources.ResolveString(0x7f010000), "Hello");  // default, though "fr" comes first
  EXPECT_EQ(resources.ResolveString(0x7f010001), "Hallo");  // no default: the first config that has it
}

TEST(ArscBuiltTest, SparseAndOffset16TypeChunks) {
  std::string table = Table({"zero", "five hundred"},
                            {TypeChunk(1, 1000, {{0, kString, 0}, {500, kString, 1}, {999, kInt, 42}}, Layout::kSparse),
                             TypeChunk(2, 300, {{7, kInt, 7}, {299, kString, 1}}, Layout::kOffset16),
                             TypeChunk(3, 4, {{0, kInt, 1, /*complex=*/true}, {1, kInt, 5}}, Layout::kDense32)});
  ResourceTable resources = ParseOrDie(table);
  EXPECT_EQ(resources.ResolveString(0x7f010000), "zero");
  EXPECT_EQ(resources.ResolveString(0x7f0101f4), "five hundred");
  EXPECT_EQ(resources.Resolve(0x7f0103e7)->data, 42u);
  EXPECT_EQ(resources.Resolve(0x7f010001), std::nullopt);
  EXPECT_EQ(resources.Resolve(0x7f020007)->data, 7u);
  EXPECT_EQ(resources.ResolveString(0x7f02012b), "five hundred");
  EXPECT_EQ(resources.Resolve(0x7f020008), std::nullopt);  // 0xffff: no entry
  EXPECT_EQ(resources.Resolve(0x7f030000), std::nullopt);  // complex (a bag): skipped
  EXPECT_EQ(resources.Resolve(0x7f030001)->data, 5u);
}

TEST(ArscBuiltTest, TamperedHeadersAreReportedNotFatal) {
  std::string table = Table({"Hello"}, {TypeChunk(1, 1, {{0, kString, 0}}, Layout::kDense32)});
  std::string tampered = table;
  Put32(&tampered, 4, 0x7fffffff);  // declared table size overruns
  Put32(&tampered, 8, 9);           // bogus package count
  Anomalies anomalies;
  ResourceTable resources = ParseOrDie(tampered, &anomalies);
  EXPECT_EQ(resources.ResolveString(0x7f010000), "Hello");
  std::set<std::string> codes;
  for (const Anomaly& a : anomalies) codes.insert(a.code);
  EXPECT_TRUE(codes.count("arsc.file_size"));
  EXPECT_TRUE(codes.count("arsc.package_count"));

  // Every truncation and random corruption: no crash, and lookups stay in bounds.
  std::mt19937 random(1234);
  for (size_t length = 0; length <= table.size(); ++length) {
    auto truncated =
        ResourceTable::Parse(Buffer::CopyOf(AsBytes(std::string_view(table).substr(0, length))), Limits{}, nullptr);
    if (truncated.ok()) (void)truncated->Resolve(0x7f010000);
  }
  for (int round = 0; round < 2000; ++round) {
    std::string corrupt = table;
    for (int flips = 0; flips < 4; ++flips) corrupt[random() % corrupt.size()] = static_cast<char>(random());
    auto parsed = ResourceTable::Parse(Buffer::CopyOf(AsBytes(corrupt)), Limits{}, nullptr);
    if (parsed.ok()) (void)parsed->Resolve(0x7f010000);
  }
}

}  // namespace
}  // namespace appban::apk
