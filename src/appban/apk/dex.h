// DEX (Dalvik executable) reader: header checks and the string, type, proto, field, method and
// class-definition tables, exposed as a query API for the assessment (class descriptors, strings,
// method references). Zero-copy: a DexFile owns the inflated bytes and hands out views into them.
// Every table offset and every string is validated once in Parse, so accessors need no error
// paths. Immutable after Parse; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
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

  // --- Lookups for the assessment. -------------------------------------------------------------
  // The format requires string_ids sorted by UTF-16 code units, type_ids by string index and
  // method_ids by defining class; Parse checks whether this file honours that (hostile files may
  // not), so these are O(log n) on a well-formed file and fall back to a linear scan otherwise.
  // Never wrong either way.

  // Index of the string whose MUTF-8 bytes equal `mutf8`, or nullopt.
  std::optional<uint32_t> FindString(std::string_view mutf8) const;
  // Type index of `descriptor` ("Landroid/telephony/SmsManager;"), or nullopt when this DEX never
  // mentions that type.
  std::optional<uint32_t> FindType(std::string_view descriptor) const;
  // Type index of the class that method `index` belongs to. REQUIRES: index < method_count()
  uint32_t MethodClassType(uint32_t index) const;
  // Indices of every method_id whose class is type `type_index` — both the methods this DEX
  // defines and the framework/library methods it calls, in method_id order.
  // REQUIRES: type_index < type_count()
  std::vector<uint32_t> MethodsOfType(uint32_t type_index) const;
  // Whether this DEX references method `class_descriptor`.`name` (any prototype).
  bool ReferencesMethod(std::string_view class_descriptor, std::string_view name) const;
  // Full prototype of method `index` in descriptor form, "(Ljava/lang/String;I)V".
  // REQUIRES: index < method_count()
  std::string MethodPrototype(uint32_t index) const;
  // class_def indices whose descriptor starts with `prefix` ("Lcom/facebook/ads/"), in order.
  std::vector<uint32_t> ClassesWithPrefix(std::string_view prefix) const;
  // Indices of strings containing `needle` as a byte substring, at most `max_results` of them.
  std::vector<uint32_t> StringsContaining(std::string_view needle, size_t max_results = SIZE_MAX) const;

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
  // Whether the tables are in the order the format requires (see the lookups above).
  bool strings_sorted_ = false;
  bool types_sorted_ = false;
  bool methods_sorted_by_class_ = false;
};

}  // namespace appban::apk
