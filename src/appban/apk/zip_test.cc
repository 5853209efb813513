#include "appban/apk/zip.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <stdlib.h>
#include <sys/wait.h>

namespace appban::apk {
namespace {

using ::testing::HasSubstr;

// ---------------------------------------------------------------------------------------------
// A small ZIP writer whose every header field can be falsified, to build each trick by hand.

void PutLE(std::string* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

std::string RawDeflate(const std::string& data) {
  z_stream stream{};
  EXPECT_EQ(deflateInit2(&stream, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&stream, data.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

uint32_t Crc(const std::string& data) {
  return static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

struct HeaderFields {
  std::string name;
  uint16_t method = 8;
  uint16_t flags = 0;
  uint32_t crc = 0;
  uint32_t compressed = 0;
  uint32_t uncompressed = 0;
  std::string extra;
};

class ZipBuilder {
 public:
  struct Entry {
    std::string content;
    std::string payload;     // the bytes written after the local header
    std::string descriptor;  // bytes written after the payload (a data descriptor)
    HeaderFields local;
    HeaderFields central;
    std::optional<uint32_t> central_offset;  // overrides where the central record points
  };

  // Adds an entry whose local and central headers agree; tweak the returned fields to lie.
  Entry& Add(const std::string& name, const std::string& content, uint16_t method = kZipMethodDeflate) {
    Entry& entry = entries_.emplace_back();
    entry.content = content;
    entry.payload = method == kZipMethodDeflate ? RawDeflate(content) : content;
    entry.local.name = name;
    entry.local.method = method;
    entry.local.crc = Crc(content);
    entry.local.compressed = static_cast<uint32_t>(entry.payload.size());
    entry.local.uncompressed = static_cast<uint32_t>(content.size());
    entry.central = entry.local;
    return entry;
  }

  std::string prefix;
  std::string comment;
  std::optional<uint16_t> comment_length;
  std::string suffix;
  std::optional<uint16_t> declared_count;

  std::string Build() const {
    std::string out = prefix;
    std::vector<uint32_t> offsets;
    for (const Entry& entry : entries_) {
      offsets.push_back(static_cast<uint32_t>(out.size()));
      const HeaderFields& h = entry.local;
      PutLE(&out, 0x04034b50, 4);
      PutLE(&out, 20, 2);
      PutLE(&out, h.flags, 2);
      PutLE(&out, h.method, 2);
      PutLE(&out, 0, 4);  // time, date
      PutLE(&out, h.crc, 4);
      PutLE(&out, h.compressed, 4);
      PutLE(&out, h.uncompressed, 4);
      PutLE(&out, h.name.size(), 2);
      PutLE(&out, h.extra.size(), 2);
      out += h.name + h.extra + entry.payload + entry.descriptor;
    }
    const size_t directory_offset = out.size();
    for (size_t i = 0; i < entries_.size(); ++i) {
      const HeaderFields& h = entries_[i].central;
      PutLE(&out, 0x02014b50, 4);
      PutLE(&out, 0x0314, 2);  // made by: Unix
      PutLE(&out, 20, 2);
      PutLE(&out, h.flags, 2);
      PutLE(&out, h.method, 2);
      PutLE(&out, 0, 4);
      PutLE(&out, h.crc, 4);
      PutLE(&out, h.compressed, 4);
      PutLE(&out, h.uncompressed, 4);
      PutLE(&out, h.name.size(), 2);
      PutLE(&out, h.extra.size(), 2);
      PutLE(&out, 0, 2);  // comment
      PutLE(&out, 0, 2);  // disk
      PutLE(&out, 0, 2);  // internal attributes
      PutLE(&out, 0, 4);  // external attributes
      PutLE(&out, entries_[i].central_offset.value_or(offsets[i]), 4);
      out += h.name + h.extra;
    }
    const size_t directory_size = out.size() - directory_offset;
    const uint16_t count = declared_count.value_or(static_cast<uint16_t>(entries_.size()));
    PutLE(&out, 0x06054b50, 4);
    PutLE(&out, 0, 4);
    PutLE(&out, count, 2);
    PutLE(&out, count, 2);
    PutLE(&out, directory_size, 4);
    PutLE(&out, directory_offset, 4);
    PutLE(&out, comment_length.value_or(static_cast<uint16_t>(comment.size())), 2);
    return out + comment + suffix;
  }

 private:
  std::deque<Entry> entries_;
};

// Archives are views: the bytes must outlive the ZipArchive, so temporaries are refused.
Bytes View(const std::string& bytes) { return AsBytes(bytes); }
Bytes View(std::string&&) = delete;

std::string ReadToString(const ZipArchive& zip, const ZipEntry& entry, Anomalies* anomalies = nullptr) {
  auto data = zip.Read(entry, nullptr, anomalies);
  EXPECT_TRUE(data.ok()) << data.status().ToString();
  return data.ok() ? std::string(AsStringView(data->bytes())) : std::string();
}

std::vector<std::string> Codes(const Anomalies& anomalies) {
  std::vector<std::string> codes;
  for (const Anomaly& anomaly : anomalies) codes.push_back(anomaly.code);
  return codes;
}

std::string Repeat(const std::string& text, size_t times) {
  std::string out;
  out.reserve(text.size() * times);
  for (size_t i = 0; i < times; ++i) out += text;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Healthy archives.

TEST(ZipTest, ReadsStoredAndDeflatedEntriesWithoutAnomalies) {
  ZipBuilder builder;
  const std::string text = Repeat("The quick brown fox jumps over the lazy dog. ", 200);
  builder.Add("AndroidManifest.xml", text);
  builder.Add("assets/raw.bin", "stored bytes", kZipMethodStored);
  builder.Add("empty.txt", "");
  builder.Add("empty-stored", "", kZipMethodStored);
  const std::string bytes = builder.Build();

  auto zip = ZipArchive::Open(View(bytes), Limits{});
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  ASSERT_EQ(zip->entries().size(), 4u);
  EXPECT_EQ(zip->entries()[0].name, "AndroidManifest.xml");
  EXPECT_TRUE(zip->entries()[0].is_deflated());
  EXPECT_EQ(zip->entries()[0].uncompressed_size, text.size());
  EXPECT_LT(zip->entries()[0].compressed_size, text.size());
  EXPECT_FALSE(zip->entries()[1].is_deflated());

  Anomalies anomalies;
  EXPECT_EQ(ReadToString(*zip, *zip->Find("AndroidManifest.xml"), &anomalies), text);
  EXPECT_EQ(ReadToString(*zip, *zip->Find("assets/raw.bin"), &anomalies), "stored bytes");
  EXPECT_EQ(ReadToString(*zip, *zip->Find("empty.txt"), &anomalies), "");
  EXPECT_EQ(ReadToString(*zip, *zip->Find("empty-stored"), &anomalies), "");
  EXPECT_THAT(anomalies, ::testing::IsEmpty());
  EXPECT_THAT(zip->anomalies(), ::testing::IsEmpty());
  EXPECT_TRUE(zip->android_rejection().empty());
  EXPECT_EQ(zip->Find("missing"), nullptr);

  // The structure offsets point at the records the builder wrote.
  EXPECT_EQ(LoadLE<uint32_t>(View(bytes), zip->central_directory_offset()), 0x02014b50u);
  EXPECT_EQ(LoadLE<uint32_t>(View(bytes), zip->end_of_central_directory_offset()), 0x06054b50u);
  EXPECT_EQ(zip->end_of_central_directory_offset(), bytes.size() - 22);
}

TEST(ZipTest, EmptyArchiveOpensWithNoEntries) {
  ZipBuilder builder;
  const std::string builder_bytes = builder.Build();
  auto zip = ZipArchive::Open(View(builder_bytes), Limits{});
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  EXPECT_TRUE(zip->entries().empty());
}

TEST(ZipTest, ReadIsSafeFromSeveralThreads) {
  ZipBuilder builder;
  for (int i = 0; i < 8; ++i) builder.Add("file" + std::to_string(i), Repeat(std::to_string(i), 100000));
  const std::string bytes = builder.Build();
  auto zip = ZipArchive::Open(View(bytes), Limits{});
  ASSERT_TRUE(zip.ok());
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (const ZipEntry& entry : zip->entries()) {
          auto data = zip->Read(entry);
          if (!data.ok() || data->size() != entry.uncompressed_size) ++failures[t];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_THAT(failures, ::testing::Each(0));
}

// ---------------------------------------------------------------------------------------------
// Tricks Android tolerates: read as Android reads them, reported as anomalies.

TEST(ZipTest, EncryptionFlagOnPlainEntryIsIgnored) {
  ZipBuilder builder;
  auto& entry = builder.Add("classes.dex", "dex\n035 plain data");
  entry.local.flags = entry.central.flags = 0x0001;
  const std::string bytes = builder.Build();
  auto zip = ZipArchive::Open(View(bytes), Limits{});
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  EXPECT_THAT(Codes(zip->anomalies()), ::testing::ElementsAre("zip.encryption_flag_ignored"));
  EXPECT_EQ(zip->anomalies()[0].where, "classes.dex");
  EXPECT_EQ(ReadToString(*zip, zip->entries()[0]), "dex\n035 plain data");
  EXPECT_TRUE(zip->android_rejection().empty());
}

TEST(ZipTest, UnknownCompressionMethodIsReadAsStored) {
  ZipBuilder builder;
  auto& entry = builder.Add("AndroidManifest.xml", "raw manifest bytes", kZipMethodStored);
  entry.local.method = entry.central.method = 0x5a;
  const std::string bytes = builder.Build();
  auto zip = ZipArchive::Open(View(bytes), Limits{});
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  const ZipEntry& read = zip->entries()[0];
  EXPECT_EQ(read.declared_method, 0x5a);
  EXPECT_TRUE(read.read_as_stored);
  EXPECT_FALSE(read.is_deflated());
  EXPECT_THAT(Codes(zip->anomalies()), ::testing::ElementsAre("zip.unknown_method_read_as_stored"));
  EXPECT_EQ(ReadToString(*zip, read), "raw manifest bytes");
}

TEST(ZipTest, LocalMethodDisagreementFollowsCentralDirectory) {
  ZipBuilder builder;
  auto& entry = builder.Add("a.txt", Repeat("abc", 100));
  entry.local.method = 0;  // the local header claims STORED; the central directory says DEFLATE
  const std::string bytes = builder.Build();
  auto zip = ZipArchive::Open(View(bytes), Limits{});
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  EXPECT_THAT(Codes(zip->anomalies()), ::testing::ElementsAre("zip.local_method_mismatch"));
  EXPECT_EQ(ReadToString(*zip, zip->entries()[0]), Repeat("abc", 100));
}

TEST(ZipTest, LocalSizeDisagreementUsesCentralDirectoryAndIsAnAndroidRejection) {
  ZipBuilder builder;
  auto& entry = builder.Add("classes.dex", Repeat("payload ", 50));
  entry.local.uncompressed = 3;
  entry.local.crc = 0x12345678;
  const std::string bytes = builder.Build();
  auto zip = ZipArchive::Open(View(bytes), Limits{});
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  EXPECT_THAT(Codes(zip->anomalies()), ::testing::ElementsAre("zip.local_header_mismatch"));
  EXPECT_THAT(zip->android_rejection(), HasSubstr("classes.dex"));
  EXPECT_EQ(ReadToString(*zip, zip->entries()[0]), Repeat("payload ", 50));
}

TEST(ZipTest, DataDescriptorBitLetsLocalSizesBeZero) {
  ZipBuilder builder;
  const std::string content = Repeat("streamed ", 40);
  auto& entry = builder.Add("streamed.txt", content);
  entry.local.flags = entry.central.flags = 0x0008;
  entry.local.crc = entry.local.compressed = entry.local.uncompressed = 0;
  PutLE(&entry.descriptor, 0x08074b50, 4);
  PutLE(&entry.descriptor, entry.central.crc, 4);
  PutLE(&entry.descriptor, entry.central.compressed, 4);
  PutLE(&entry.descriptor, entry.central.uncompressed, 4);
  const std::string bytes = builder.Build();
  auto zip = ZipArchive::Open(View(bytes), Limits{});
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  EXPECT_THAT(zip->anomalies(), ::testing::IsEmpty());
  EXPECT_EQ(ReadToString(*zip, zip->entries()[0]), content);
}

TEST(ZipTest, DataDescriptorContradictingCentralDirectoryIsReported) {
  ZipBuilder builder;
  auto& entry = builder.Add("streamed.txt", "streamed data");
  entry.local.flags = entry.central.flags = 0x0008;
  PutLE(&entry.descriptor, entry.central.crc ^ 1, 4);  // no optional signature this time
  PutLE(&entry.descriptor, entry.central.compressed, 4);
  PutLE(&entry.descriptor, entry.central.uncompressed, 4);
  const std::string builder_bytes = builder.Build();
  auto zip = ZipArchive::Open(View(builder_bytes), Limits{});
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  EXPECT_THAT(Codes(zip->anomalies()), ::testing::ElementsAre("zip.data_descriptor_mismatch"));
  EXPECT_FALSE(zip->android_rejection().empty());
}

TEST(ZipTest, LocalNameDisagreementIsReported) {
  ZipBuilder builder;
  auto& entry = builder.Add("AndroidManifest.xml", "manifest");
  entry.local.name = "AndroidManifest.xmI";  // same length, different bytes
  builder.Add("b", "second entry");
  auto& longer = builder.Add("c", "third entry");
  longer.local.name = "c-with-a-longer-local-name";  // different length: data still found
  const std::string bytes = builder.Build();
  auto zip = ZipArchive::Open(View(bytes), Limits{});
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  EXPECT_THAT(Codes(zip->anomalies()), ::testing::ElementsAre("zip.local_name_mismatch", "zip.local_name_mismatch"));
  EXPECT_EQ(ReadToString(*zip, *zip->Find("AndroidManifest.xml")), "manifest");
  EXPECT_EQ(ReadToString(*zip, *zip->Find("c")), "third entry");
}

TEST(ZipTest, DuplicateNamesResolveToTheFirstEntry) {
  ZipBuilder builder;
  builder.Add("classes.dex", "first dex");
  builder.Add("other", "x");
  builder.Add("classes.dex", "second dex");
  const std::string bytes = builder.Build();
  auto zip = ZipArchive::Open(View(bytes), Limits{});
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  EXPECT_EQ(zip->entries().size(), 3u);
  const ZipEntry* found = zip->Find("classes.dex");
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found, &zip->entries()[0]);
  EXPECT_EQ(ReadToString(*zip, *found), "first dex");
  EXPECT_THAT(Codes(zip->anomalies()), ::testing::ElementsAre("zip.duplicate_entry"));
  EXPECT_EQ(zip->anomalies()[0].where, "classes.dex");
  EXPECT_FALSE(zip->android_rejection().empty());
}

TEST(ZipTest, DataBeforeArchiveIsReported) {
  ZipBuilder builder;
  builder.prefix = "#!/bin/sh\nexit 0\n";  // offsets in the directory account for it
  builder.Add("a.txt", "content");
  const std::string builder_bytes = builder.Build();
  auto zip = ZipArchive::Open(View(builder_bytes), Limits{});
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  EXPECT_THAT(Codes(zip->anomalies()), ::testing::ElementsAre("zip.data_before_archive"));
  EXPECT_THAT(zip->anomalies()[0].detail, HasSubstr("17 bytes precede the first local header"));
  EXPECT_FALSE(zip->android_rejection().empty());
  EXPECT_EQ(ReadToString(*zip, zip->entries()[0]), "content");
}

TEST(ZipTest, HiddenLocalEntryBeforeArchiveIsReported) {
  // A local entry that no central record names: desktop tools that scan local headers see it,
  // Android does not.
  ZipBuilder hidden;
  hidden.Add("classes.dex", "hidden dex");
  const std::string hidden_bytes = hidden.Build();
  ZipBuilder builder;
  builder.prefix = hidden_bytes.substr(0, hidden_bytes.find(std::string("PK\x01\x02", 4)));
  builder.Add("classes.dex", "visible dex");
  const std::string builder_bytes = builder.Build();
  auto zip = ZipArchive::Open(View(builder_bytes), Limits{});
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  EXPECT_THAT(Codes(zip->anomalies()), ::testing::ElementsAre("zip.data_before_archive"));
  EXPECT_TRUE(zip->android_rejection().empty());
  EXPECT_EQ(ReadToString(*zip, *zip->Find("classes.dex")), "visible dex");
}

TEST(ZipTest, CommentTricksAreReported) {
  {
    ZipBuilder builder;
    builder.Add("a", "a");
    builder.comment = "comment";
    builder.suffix = "trailing garbage";
    const std::string builder_bytes = builder.Build();
    auto zip = ZipArchive::Open(View(builder_bytes), Limits{});
    ASSERT_TRUE(zip.ok()) << zip.status().ToString();
    EXPECT_THAT(Codes(zip->anomalies()), ::testing::ElementsAre("zip.comment_length_mismatch"));
    EXPECT_THAT(zip->anomalies()[0].detail, HasSubstr("16 bytes follow the archive comment"));
  }
  {
    ZipBuilder builder;
    builder.Add("a", "a");
    builder.comment = "short";
    builder.comment_length = 500;
    const std::string builder_bytes = builder.Build();
    auto zip = ZipArchive::Open(View(builder_bytes), Limits{});
    ASSERT_TRUE(zip.ok()) << zip.status().ToString();
    EXPECT_THAT(Codes(zip->anomalies()), ::testing::ElementsAre("zip.comment_truncated"));
  }
  {
    // A second end record hidden at the end of the first one's comment: like Android, we read
    // the last one.
    ZipBuilder outer;
    outer.Add("outer.txt", "outer");
    const std::string outer_bytes = outer.Build();
    // An end record inside the comment; it describes the same central directory.
    const std::string fake_end = outer_bytes.substr(outer_bytes.size() - 22);
    ZipBuilder with_comment;
    with_comment.Add("outer.txt", "outer");
    with_comment.comment = std::string("note") + fake_end;
    const std::string bytes = with_comment.Build();
    auto zip = ZipArchive::Open(View(bytes), Limits{});
    ASSERT_TRUE(zip.ok()) << zip.status().ToString();
    EXPECT_EQ(zip->end_of_central_directory_offset(), bytes.size() - 22);
    EXPECT_THAT(Codes(zip->anomalies()), ::testing::Contains("zip.multiple_end_records"));
  }
}

TEST(ZipTest, CrcMismatchIsReportedButDataIsReturned) {
  ZipBuilder builder;
  auto& entry = builder.Add("a.txt", "some content");
  entry.local.crc = entry.central.crc = 0xdeadbeef;
  const std::string builder_bytes = builder.Build();
  auto zip = ZipArchive::Open(View(builder_bytes), Limits{});
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  Anomalies anomalies;
  EXPECT_EQ(ReadToString(*zip, zip->entries()[0], &anomalies), "some content");
  EXPECT_THAT(Codes(anomalies), ::testing::ElementsAre("zip.crc_mismatch"));
}

// ---------------------------------------------------------------------------------------------
// Structural errors.

TEST(ZipTest, NoEndRecordIsNotRecognized) {
  for (const std::string& bytes : {std::string(), std::string("PK"), Repeat("not a zip file at all ", 5000)}) {
    auto zip = ZipArchive::Open(View(bytes), Limits{});
    ASSERT_FALSE(zip.ok());
    EXPECT_EQ(zip.status().code(), StatusCode::kNotRecognized);
    EXPECT_EQ(zip.status().message(), "no central directory");
  }
  // An archive cut before its end record.
  ZipBuilder builder;
  builder.Add("a", "a");
  std::string bytes = builder.Build();
  bytes.resize(bytes.size() - 22);
  auto zip = ZipArchive::Open(View(bytes), Limits{});
  ASSERT_FALSE(zip.ok());
  EXPECT_EQ(zip.status().code(), StatusCode::kNotRecognized);
  // An end record more than 64 KiB + 22 bytes from the end is outside Android's search window.
  ZipBuilder far;
  far.Add("a", "a");
  far.suffix = std::string(70000, 'x');
  const std::string far_bytes = far.Build();
  zip = ZipArchive::Open(View(far_bytes), Limits{});
  ASSERT_FALSE(zip.ok());
  EXPECT_EQ(zip.status().code(), StatusCode::kNotRecognized);
}

TEST(ZipTest, TruncatedCentralDirectoryIsTruncated) {
  ZipBuilder builder;
  builder.Add("a", "a");
  builder.Add("b", "b");
  builder.declared_count = 3;
  const std::string builder_bytes = builder.Build();
  auto zip = ZipArchive::Open(View(builder_bytes), Limits{});
  ASSERT_FALSE(zip.ok());
  EXPECT_EQ(zip.status().code(), StatusCode::kTruncated);
  EXPECT_THAT(zip.status().message(), HasSubstr("central directory ends after 2 of 3 entries"));

  // A record whose name runs past the declared central directory size.
  ZipBuilder cut;
  cut.Add("a-long-name", "a");
  std::string bytes = cut.Build();
  const size_t size_field = bytes.size() - 22 + 12;
  bytes[size_field] = static_cast<char>(46 + 3);  // central directory said to be 49 bytes
  zip = ZipArchive::Open(View(bytes), Limits{});
  ASSERT_FALSE(zip.ok());
  EXPECT_EQ(zip.status().code(), StatusCode::kTruncated);
  EXPECT_THAT(zip.status().message(), HasSubstr("runs past the end of the central directory"));
}

TEST(ZipTest, ContradictoryOffsetsAreCorruption) {
  ZipBuilder builder;
  auto& entry = builder.Add("a", std::string(100, 'a'), kZipMethodStored);
  entry.central_offset = 5;  // no local header there
  const std::string builder_bytes = builder.Build();
  auto zip = ZipArchive::Open(View(builder_bytes), Limits{});
  ASSERT_FALSE(zip.ok());
  EXPECT_EQ(zip.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(zip.status().message(), HasSubstr("a: no local header signature at offset 5"));

  ZipBuilder past;
  past.Add("a", "a").central.compressed = 1000;  // data said to run into the central directory
  const std::string past_bytes = past.Build();
  zip = ZipArchive::Open(View(past_bytes), Limits{});
  ASSERT_FALSE(zip.ok());
  EXPECT_EQ(zip.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(zip.status().message(), HasSubstr("run into the central directory"));
}

// ---------------------------------------------------------------------------------------------
// Limits and zip bombs.

TEST(ZipTest, TooManyEntriesIsLimitExceeded) {
  ZipBuilder builder;
  for (int i = 0; i < 3; ++i) builder.Add("f" + std::to_string(i), "x");
  Limits limits;
  limits.max_zip_entries = 2;
  const std::string builder_bytes = builder.Build();
  auto zip = ZipArchive::Open(View(builder_bytes), limits);
  ASSERT_FALSE(zip.ok());
  EXPECT_EQ(zip.status().code(), StatusCode::kLimitExceeded);
  EXPECT_THAT(zip.status().message(), HasSubstr("3 entries"));
  EXPECT_THAT(zip.status().message(), HasSubstr("max_zip_entries"));
}

TEST(ZipTest, LongEntryNameIsLimitExceeded) {
  ZipBuilder builder;
  builder.Add(std::string(300, 'n'), "x");
  Limits limits;
  limits.max_entry_name_bytes = 255;
  const std::string builder_bytes = builder.Build();
  auto zip = ZipArchive::Open(View(builder_bytes), limits);
  ASSERT_FALSE(zip.ok());
  EXPECT_EQ(zip.status().code(), StatusCode::kLimitExceeded);
  EXPECT_THAT(zip.status().message(), HasSubstr("300 bytes"));
  EXPECT_THAT(zip.status().message(), HasSubstr("max_entry_name_bytes"));
}

TEST(ZipTest, BombByCompressionRatioIsRefusedBeforeInflating) {
  ZipBuilder builder;
  builder.Add("bomb.bin", std::string(4 << 20, '\0'));  // deflates about 1030:1
  std::string varied(2 << 20, '\0');
  uint32_t state = 12345;
  for (char& c : varied) c = static_cast<char>('a' + ((state = state * 1103515245 + 12345) >> 16) % 4);
  builder.Add("varied.bin", varied);  // 2 MiB that deflate only about 4:1
  const std::string bytes = builder.Build();
  auto zip = ZipArchive::Open(View(bytes), Limits{});
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  auto data = zip->Read(zip->entries()[0]);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), StatusCode::kLimitExceeded);
  EXPECT_THAT(data.status().message(), HasSubstr("bomb.bin"));
  EXPECT_THAT(data.status().message(), HasSubstr(std::to_string(4 << 20)));
  EXPECT_THAT(data.status().message(), HasSubstr("max_compression_ratio"));
  // An ordinary large entry passes.
  auto varied_data = zip->Read(zip->entries()[1]);
  ASSERT_TRUE(varied_data.ok()) << varied_data.status().ToString();
  EXPECT_EQ(varied_data->size(), varied.size());
}

TEST(ZipTest, BombByDeclaredSizeLieStopsAtTheDeclaredSize) {
  ZipBuilder builder;
  auto& entry = builder.Add("liar.bin", std::string(8 << 20, 'A'));
  entry.local.uncompressed = entry.central.uncompressed = 1000;
  const std::string builder_bytes = builder.Build();
  auto zip = ZipArchive::Open(View(builder_bytes), Limits{});
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  auto data = zip->Read(zip->entries()[0]);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(data.status().message(), HasSubstr("liar.bin: inflates to more than the declared 1000 bytes"));
}

TEST(ZipTest, DeclaredSizeTooLargeIsCorruption) {
  ZipBuilder builder;
  auto& entry = builder.Add("short.bin", "only a few bytes");
  entry.local.uncompressed = entry.central.uncompressed = 100;
  const std::string builder_bytes = builder.Build();
  auto zip = ZipArchive::Open(View(builder_bytes), Limits{});
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  auto data = zip->Read(zip->entries()[0]);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(data.status().message(), HasSubstr("short.bin: inflates to 16 bytes but 100 are declared"));
}

TEST(ZipTest, HugeDeclaredSizeIsRefusedWithoutAllocating) {
  ZipBuilder builder;
  auto& entry = builder.Add("huge.bin", "tiny");
  entry.local.uncompressed = entry.central.uncompressed = 0xfffffff0u;
  const std::string builder_bytes = builder.Build();
  auto zip = ZipArchive::Open(View(builder_bytes), Limits{});
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  auto data = zip->Read(zip->entries()[0]);
  ASSERT_FALSE(data.ok());
  EXPECT_EQ(data.status().code(), StatusCode::kLimitExceeded);
  EXPECT_THAT(data.status().message(), HasSubstr("huge.bin"));
  EXPECT_THAT(data.status().message(), HasSubstr(std::to_string(0xfffffff0u)));
  EXPECT_THAT(data.status().message(), HasSubstr("max_entry_inflated_bytes"));
}

TEST(ZipTest, TotalBudgetIsEnforcedAndDecremented) {
  ZipBuilder builder;
  builder.Add("a", std::string(1000, 'a'));
  builder.Add("b", std::string(1000, 'b'));
  const std::string builder_bytes = builder.Build();
  auto zip = ZipArchive::Open(View(builder_bytes), Limits{});
  ASSERT_TRUE(zip.ok());
  uint64_t budget = 1500;
  ASSERT_TRUE(zip->Read(zip->entries()[0], &budget).ok());
  EXPECT_EQ(budget, 500u);
  auto second = zip->Read(zip->entries()[1], &budget);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kLimitExceeded);
  EXPECT_THAT(second.status().message(), HasSubstr("max_total_inflated_bytes"));
  EXPECT_EQ(budget, 500u);
}

TEST(ZipTest, OverlappingEntriesAreRefused) {
  // Quoted overlap: entry "a" is STORED and its data is entry "b"'s local header and data.
  ZipBuilder inner;
  inner.Add("b", std::string(10000, 'z'));
  const std::string inner_bytes = inner.Build();
  const std::string quoted = inner_bytes.substr(0, inner_bytes.find(std::string("PK\x01\x02", 4)));
  ZipBuilder builder;
  auto& a = builder.Add("a", "", kZipMethodStored);
  a.local.crc = a.central.crc = Crc(quoted);
  a.local.compressed = a.central.compressed = static_cast<uint32_t>(quoted.size());
  a.local.uncompressed = a.central.uncompressed = static_cast<uint32_t>(quoted.size());
  builder.Add("b", std::string(10000, 'z'));
  const std::string builder_bytes = builder.Build();
  auto zip = ZipArchive::Open(View(builder_bytes), Limits{});
  ASSERT_FALSE(zip.ok());
  EXPECT_EQ(zip.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(zip.status().message(), HasSubstr("\"a\""));
  EXPECT_THAT(zip.status().message(), HasSubstr("\"b\""));
  EXPECT_THAT(zip.status().message(), HasSubstr("overlap"));

  // Two central records sharing one local header.
  ZipBuilder shared;
  shared.Add("x", "same data");
  shared.Add("x", "same data").central_offset = 0;
  const std::string shared_bytes = shared.Build();
  zip = ZipArchive::Open(View(shared_bytes), Limits{});
  ASSERT_FALSE(zip.ok());
  EXPECT_EQ(zip.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(zip.status().message(), HasSubstr("overlap"));
}

// ---------------------------------------------------------------------------------------------
// Real archives, compared with Info-ZIP's view of them.

struct CommandOutput {
  int exit_code = -1;
  std::string out;
};

std::string ShellQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

CommandOutput RunShell(const std::string& command) {
  CommandOutput result;
  FILE* pipe = popen((command + " 2>/dev/null").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[65536];
  size_t read;
  while ((read = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.out.append(buffer, read);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

struct ListedEntry {
  uint64_t length = 0;
  uint64_t compressed = 0;
  uint32_t crc = 0;
};

// Parses `unzip -v` ("Length Method Size Cmpr Date Time CRC-32 Name") into name -> sizes/CRC,
// in listing order.
std::vector<std::pair<std::string, ListedEntry>> ListWithUnzip(const std::filesystem::path& apk) {
  std::vector<std::pair<std::string, ListedEntry>> listed;
  CommandOutput output = RunShell("unzip -v " + ShellQuote(apk.string()));
  std::istringstream lines(output.out);
  std::string line;
  bool in_table = false;
  while (std::getline(lines, line)) {
    if (line.starts_with("--------")) {
      if (in_table) break;
      in_table = true;
      continue;
    }
    if (!in_table) continue;
    std::istringstream fields(line);
    ListedEntry entry;
    std::string method, ratio, date, time, crc;
    fields >> entry.length >> method >> entry.compressed >> ratio >> date >> time >> crc;
    if (!fields || crc.size() != 8) continue;  // an entry comment, printed on its own line
    entry.crc = static_cast<uint32_t>(std::stoul(crc, nullptr, 16));
    std::string name;
    std::getline(fields, name);
    if (name.size() >= 2) name.erase(0, 2);  // the two spaces before the name column
    listed.emplace_back(name, entry);
  }
  return listed;
}

// How unzip prints a name: up to the first NUL, control characters as ^X.
std::string AsUnzipPrintsIt(std::string_view name) {
  std::string out;
  for (char c : name.substr(0, name.find('\0'))) {
    if (static_cast<unsigned char>(c) < 0x20) {
      out += '^';
      out += static_cast<char>(c + 64);
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<std::filesystem::path> AndroguardApks() {
  std::vector<std::filesystem::path> apks;
  const std::filesystem::path root = "/usr/share/doc/androguard/examples";
  if (!std::filesystem::exists(root)) return apks;
  for (const auto& item : std::filesystem::recursive_directory_iterator(root)) {
    if (item.is_regular_file() && item.path().extension() == ".apk") apks.push_back(item.path());
  }
  std::sort(apks.begin(), apks.end());
  return apks;
}

TEST(ZipTest, RealApksMatchUnzipListingAndCrcs) {
  const auto apks = AndroguardApks();
  if (apks.empty()) GTEST_SKIP() << "androguard examples are not installed";
  int compared = 0;
  for (const auto& path : apks) {
    SCOPED_TRACE(path.string());
    auto listed = ListWithUnzip(path);
    if (listed.empty()) continue;  // unzip cannot list it either (deliberately broken sample)
    const std::string bytes = ReadFile(path);
    auto zip = ZipArchive::Open(View(bytes), Limits{});
    const std::string file_name = path.filename().string();
    if (file_name.find("invalid-zip") != std::string::npos || file_name.find("truncated-cd") != std::string::npos) {
      // apksig's samples whose central directory runs into the end record: unzip shrugs,
      // Android (and we) refuse them.
      ASSERT_FALSE(zip.ok());
      EXPECT_EQ(zip.status().code(), StatusCode::kTruncated);
      EXPECT_THAT(zip.status().message(), HasSubstr("remain before the end record"));
      continue;
    }
    ASSERT_TRUE(zip.ok()) << zip.status().ToString();
    ASSERT_EQ(zip->entries().size(), listed.size());
    for (size_t i = 0; i < listed.size(); ++i) {
      const ZipEntry& entry = zip->entries()[i];
      const auto& [name, expected] = listed[i];
      if (name != AsUnzipPrintsIt(entry.name)) {
        ADD_FAILURE() << "entry " << i << ": unzip lists \"" << name << "\", we read \"" << entry.name << "\"";
        continue;
      }
      EXPECT_EQ(entry.uncompressed_size, expected.length) << name;
      EXPECT_EQ(entry.compressed_size, expected.compressed) << name;
      EXPECT_EQ(entry.crc32, expected.crc) << name;
      Anomalies anomalies;
      auto data = zip->Read(entry, nullptr, &anomalies);
      ASSERT_TRUE(data.ok()) << name << ": " << data.status().ToString();
      if (entry.read_as_stored) {
        // apksig's weird-compression-method.apk: method 21, which Android reads as stored and
        // unzip cannot read at all; we return the entry's bytes as they are in the file.
        EXPECT_EQ(data->size(), entry.compressed_size) << name;
        EXPECT_THAT(Codes(zip->anomalies()), ::testing::Contains("zip.unknown_method_read_as_stored"));
        continue;
      }
      EXPECT_THAT(anomalies, ::testing::IsEmpty()) << name;
      EXPECT_EQ(static_cast<uint32_t>(crc32(0, data->data(), static_cast<uInt>(data->size()))), expected.crc) << name;
    }
    ++compared;
  }
  EXPECT_GT(compared, 100);
}

TEST(ZipTest, RealApkEntryBytesMatchUnzip) {
  const std::filesystem::path apk = "/usr/share/doc/androguard/examples/tests/com.politedroid_4.apk";
  if (!std::filesystem::exists(apk)) GTEST_SKIP() << "androguard examples are not installed";
  const std::string bytes = ReadFile(apk);
  auto zip = ZipArchive::Open(View(bytes), Limits{});
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  for (const char* name : {"AndroidManifest.xml", "classes.dex", "resources.arsc"}) {
    const ZipEntry* entry = zip->Find(name);
    ASSERT_NE(entry, nullptr) << name;
    CommandOutput expected = RunShell("unzip -p " + ShellQuote(apk.string()) + " " + name);
    ASSERT_EQ(expected.exit_code, 0);
    EXPECT_EQ(ReadToString(*zip, *entry), expected.out) << name;
  }
}

TEST(ZipTest, Zip64ArchiveFromInfoZipIsRead) {
  char directory_template[] = "/tmp/appban-zip-test-XXXXXX";
  ASSERT_NE(mkdtemp(directory_template), nullptr);
  const std::filesystem::path directory = directory_template;
  {
    std::ofstream(directory / "hello.txt") << Repeat("hello zip64 ", 1000);
    std::ofstream(directory / "second.txt") << "second";
  }
  // -fz forces ZIP64 records; reading from a pipe ("-") makes zip write data descriptors too.
  CommandOutput made = RunShell("cd " + ShellQuote(directory.string()) + " && zip -q -fz out.zip hello.txt second.txt");
  if (made.exit_code != 0) {
    std::filesystem::remove_all(directory);
    GTEST_SKIP() << "zip -fz is not available";
  }
  const std::string bytes = ReadFile(directory / "out.zip");
  auto listed = ListWithUnzip(directory / "out.zip");
  std::filesystem::remove_all(directory);
  auto zip = ZipArchive::Open(View(bytes), Limits{});
  ASSERT_TRUE(zip.ok()) << zip.status().ToString();
  ASSERT_EQ(zip->entries().size(), 2u);
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(zip->entries()[0].uncompressed_size, listed[0].second.length);
  EXPECT_EQ(zip->entries()[0].compressed_size, listed[0].second.compressed);
  EXPECT_EQ(ReadToString(*zip, *zip->Find("hello.txt")), Repeat("hello zip64 ", 1000));
  EXPECT_EQ(ReadToString(*zip, *zip->Find("second.txt")), "second");
}

}  // namespace
}  // namespace appban::apk
