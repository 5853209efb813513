// DEX (Dalvik executable) reader: header checks and the string, type, proto, field, method and
// class-definition tables, exposed as a query API for the assessment (class descriptors, strings,
// method references). Zero-copy: a DexFile owns the inflated bytes and hands out views into them.
// Every table offset and every string is validated once in Parse, so accessors need no error
// paths. Immutable after Parse; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "appban/apk/anomaly.h"
#include "appban/apk/limits.h"
#include "appban/common/bytes.h"
#include "appban/common/status.h"

namespace appban::apk {

struct MethodRef {
  std::string_view class_descriptor;  // "Landroid/location/LocationManager;"
  std::string_view name;              // "getLastKnownLocation"
  std::string_view shorty;            // prototype shorty descriptor, "LL"
};

struct FieldRef {
  std::string_view class_descriptor;
  std::string_view name;
  std::string_view type_descriptor;
};

class DexFile {
 public:
  // `name` is the ZIP entry it came from ("classes2.dex"), used in errors and anomalies.
  // Errors: NotRecognized (no "dex\n" magic), Truncated (header or a table runs past the end),
  // Corruption (an index or offset points outside its table), LimitExceeded.
  static Result<DexFile> Parse(std::string name, Buffer data, const Limits& limits, Anomalies* anomalies);

  const std::string& name() const { return name_; }
  uint32_t version() const { return version_; }  // 35, 37, 38, 39, 40, 41
  size_t size_bytes() const { return data_.size(); }

  uint32_t string_count() const { return string_count_; }
  uint32_t type_count() const { return type_count_; }
  uint32_t proto_count() const { return proto_count_; }
  uint32_t field_count() const { return field_count_; }
  uint32_t method_count() const { return method_count_; }
  uint32_t class_count() const { return class_def_count_; }

  // MUTF-8 bytes of string `index` (identical to UTF-8 for ASCII, which covers class names).
  // REQUIRES: index < string_count()
  std::string_view String(uint32_t index) const;
  // REQUIRES: index < type_count()
  std::string_view TypeDescriptor(uint32_t index) const;
  // REQUIRES: index < method_count()
  MethodRef Method(uint32_t index) const;
  // REQUIRES: index < field_count()
  FieldRef Field(uint32_t index) const;
  // Descriptor of the class defined by class_def `index`. REQUIRES: index < class_count()
  std::string_view ClassDescriptor(uint32_t index) const;
  // Superclass descriptor of class_def `index`, "" when none.
  std::string_view SuperclassDescriptor(uint32_t index) const;

 private:
  DexFile() = default;

  std::string name_;
  Buffer data_;
  uint32_t version_ = 0;
  uint32_t string_count_ = 0, string_ids_offset_ = 0;
  uint32_t type_count_ = 0, type_ids_offset_ = 0;
  uint32_t proto_count_ = 0, proto_ids_offset_ = 0;
  uint32_t field_count_ = 0, field_ids_offset_ = 0;
  uint32_t method_count_ = 0, method_ids_offset_ = 0;
  uint32_t class_def_count_ = 0, class_defs_offset_ = 0;
  // Start and length of each string's bytes, validated in Parse (index = string id).
  std::vector<uint32_t> string_offsets_;
  std::vector<uint32_t> string_lengths_;
};

}  // namespace appban::apk
