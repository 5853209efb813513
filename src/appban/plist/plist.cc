#include "appban/plist/plist.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "appban/common/text.h"
#include "appban/common/time.h"
#include "appban/common/utf16.h"

namespace appban::plist {

// Seconds between the Unix epoch and Apple's reference date, 2001-01-01T00:00:00Z.
constexpr double kAppleEpochOffset = 978307200.0;
// Dates a plist can write as text: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
constexpr double kEarliestDate = -62135596800.0;
constexpr double kLatestDate = 253402300799.0;

std::optional<int64_t> Value::AsInteger() const {
  if (type_ != Type::kInteger) return std::nullopt;
  return std::get<int64_t>(data_);
}
std::optional<double> Value::AsReal() const {
  if (type_ == Type::kReal) return std::get<double>(data_);
  if (type_ == Type::kInteger) return static_cast<double>(std::get<int64_t>(data_));
  return std::nullopt;
}
std::optional<bool> Value::AsBoolean() const {
  if (type_ != Type::kBoolean) return std::nullopt;
  return std::get<bool>(data_);
}
std::optional<double> Value::AsDate() const {
  if (type_ != Type::kDate) return std::nullopt;
  return std::get<double>(data_);
}
std::optional<uint64_t> Value::AsUid() const {
  if (type_ != Type::kUid) return std::nullopt;
  return static_cast<uint64_t>(std::get<int64_t>(data_));
}

const Value* Value::Find(std::string_view key) const {
  const Dict* dict = AsDict();
  if (dict == nullptr) return nullptr;
  for (const auto& [name, value] : *dict) {
    if (name == key) return &value;
  }
  return nullptr;
}
const std::string* Value::FindString(std::string_view key) const {
  const Value* value = Find(key);
  return value ? value->AsString() : nullptr;
}
std::optional<bool> Value::FindBoolean(std::string_view key) const {
  const Value* value = Find(key);
  return value ? value->AsBoolean() : std::nullopt;
}
const Value::Dict* Value::FindDict(std::string_view key) const {
  const Value* value = Find(key);
  return value ? value->AsDict() : nullptr;
}
const Value::Array* Value::FindArray(std::string_view key) const {
  const Value* value = Find(key);
  return value ? value->AsArray() : nullptr;
}
std::vector<std::string> Value::FindStrings(std::string_view key) const {
  std::vector<std::string> out;
  if (const Array* items = FindArray(key)) {
    for (const Value& item : *items) {
      if (const std::string* text = item.AsString()) out.push_back(*text);
    }
  }
  return out;
}

Value& Value::Set(std::string key, Value value) {
  Dict& dict = std::get<Dict>(data_);
  for (auto& [name, existing] : dict) {
    if (name == key) return existing = std::move(value);
  }
  dict.emplace_back(std::move(key), std::move(value));
  return dict.back().second;
}

bool operator==(const Value& a, const Value& b) { return a.type_ == b.type_ && a.data_ == b.data_; }

std::string_view TypeName(Value::Type type) {
  switch (type) {
    case Value::Type::kString:
      return "string";
    case Value::Type::kInteger:
      return "integer";
    case Value::Type::kReal:
      return "real";
    case Value::Type::kBoolean:
      return "boolean";
    case Value::Type::kDate:
      return "date";
    case Value::Type::kData:
      return "data";
    case Value::Type::kArray:
      return "array";
    case Value::Type::kDict:
      return "dict";
    case Value::Type::kUid:
      return "uid";
  }
  return "unknown";
}

namespace {

constexpr std::string_view kBinaryMagic = "bplist00";
constexpr size_t kTrailerBytes = 32;

std::string MarkerHex(uint8_t marker) {
  char text[3];
  std::snprintf(text, sizeof text, "%02x", marker);
  return text;
}

uint64_t LoadBE(Bytes bytes, size_t offset, size_t width) {
  uint64_t value = 0;
  for (size_t i = 0; i < width; ++i) value = (value << 8) | bytes[offset + i];
  return value;
}

// Counts what one parse materialises against the limits, whatever the form.
class Budget {
 public:
  explicit Budget(const Limits& limits) : limits_(limits) {}
  Status AddValue() {
    if (++values_ > limits_.max_values) {
      return Status::LimitExceeded("plist materialises more than " + std::to_string(limits_.max_values) +
                                   " values (Limits::max_values)");
    }
    return Status::Ok();
  }
  Status AddPayload(uint64_t bytes) {
    payload_ += bytes;
    if (payload_ > limits_.max_payload_bytes) {
      return Status::LimitExceeded("plist materialises more than " + std::to_string(limits_.max_payload_bytes) +
                                   " bytes of strings and data (Limits::max_payload_bytes)");
    }
    return Status::Ok();
  }
  Status EnterDepth(uint32_t depth) const {
    if (depth > limits_.max_depth) {
      return Status::LimitExceeded("plist nests deeper than " + std::to_string(limits_.max_depth) +
                                   " levels (Limits::max_depth)");
    }
    return Status::Ok();
  }

 private:
  const Limits& limits_;
  uint64_t values_ = 0;
  uint64_t payload_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Binary plist ("bplist00"): objects, then an offset table, then a 32-byte trailer giving the
// widths of offsets and object references, the object count, the top object and where the offset
// table starts. All integers big-endian.

class BinaryReader {
 public:
  BinaryReader(Bytes bytes, const Limits& limits) : bytes_(bytes), limits_(limits), budget_(limits) {}

  Result<Value> Read() {
    if (bytes_.size() > limits_.max_input_bytes) {
      return Status::LimitExceeded("binary plist of " + std::to_string(bytes_.size()) + " bytes exceeds " +
                                   std::to_string(limits_.max_input_bytes) + " (Limits::max_input_bytes)");
    }
    if (bytes_.size() < kBinaryMagic.size() + kTrailerBytes) {
      return Status::Truncated("binary plist of " + std::to_string(bytes_.size()) +
                               " bytes is shorter than its header and trailer (40 bytes)");
    }
    if (AsStringView(bytes_.first(kBinaryMagic.size())) != kBinaryMagic) {
      return Status::NotRecognized("not a binary plist: no bplist00 magic");
    }
    const size_t trailer = bytes_.size() - kTrailerBytes;
    offset_width_ = bytes_[trailer + 6];
    ref_width_ = bytes_[trailer + 7];
    const uint64_t object_count = LoadBE(bytes_, trailer + 8, 8);
    const uint64_t top_object = LoadBE(bytes_, trailer + 16, 8);
    const uint64_t table_offset = LoadBE(bytes_, trailer + 24, 8);
    if (offset_width_ < 1 || offset_width_ > 8) {
      return Status::Corruption("binary plist trailer: offset size " + std::to_string(offset_width_) +
                                " is not 1 to 8 bytes");
    }
    if (ref_width_ < 1 || ref_width_ > 8) {
      return Status::Corruption("binary plist trailer: object reference size " + std::to_string(ref_width_) +
                                " is not 1 to 8 bytes");
    }
    if (object_count == 0) return Status::Corruption("binary plist trailer: zero objects");
    if (object_count > limits_.max_objects) {
      return Status::LimitExceeded("binary plist declares " + std::to_string(object_count) + " objects, more than " +
                                   std::to_string(limits_.max_objects) + " (Limits::max_objects)");
    }
    if (top_object >= object_count) {
      return Status::Corruption("binary plist trailer: top object " + std::to_string(top_object) + " of " +
                                std::to_string(object_count) + " objects");
    }
    if (table_offset < kBinaryMagic.size() || table_offset > trailer ||
        (trailer - table_offset) / offset_width_ < object_count) {
      return Status::Corruption("binary plist trailer: offset table at " + std::to_string(table_offset) + " with " +
                                std::to_string(object_count) + " entries of " + std::to_string(offset_width_) +
                                " bytes does not fit between the header and the trailer at " + std::to_string(trailer));
    }
    table_offset_ = static_cast<size_t>(table_offset);
    object_count_ = object_count;
    in_progress_.assign(object_count, false);
    return ReadObject(top_object, 0);
  }

 private:
  Result<size_t> ObjectOffset(uint64_t index) const {
    uint64_t offset = LoadBE(bytes_, table_offset_ + index * offset_width_, offset_width_);
    if (offset < kBinaryMagic.size() || offset >= table_offset_) {
      return Status::Corruption("binary plist: object " + std::to_string(index) + " at offset " +
                                std::to_string(offset) + " lies outside the object area [8, " +
                                std::to_string(table_offset_) + ")");
    }
    return static_cast<size_t>(offset);
  }

  // Reads the count of a container/string whose marker's low nibble is 0xF: an integer object
  // follows the marker. Advances *pos past what it read.
  Result<uint64_t> ReadCount(uint8_t low, size_t* pos, uint64_t index) const {
    if (low != 0x0f) return low;
    if (*pos >= table_offset_) return TruncatedObject(index, "count");
    uint8_t marker = bytes_[*pos];
    if ((marker & 0xf0) != 0x10 || (marker & 0x0f) > 3) {
      return Status::Corruption("binary plist: object " + std::to_string(index) + " has a length marker 0x" +
                                MarkerHex(marker) + " that is not an integer");
    }
    size_t width = size_t{1} << (marker & 0x0f);
    if (table_offset_ - *pos - 1 < width) return TruncatedObject(index, "count");
    uint64_t count = LoadBE(bytes_, *pos + 1, width);
    *pos += 1 + width;
    return count;
  }

  Status TruncatedObject(uint64_t index, std::string_view what) const {
    return Status::Truncated("binary plist: object " + std::to_string(index) + " " + std::string(what) +
                             " runs past the object area");
  }

  // Checks that `count` items of `width` bytes fit between *pos and the offset table.
  Status CheckFits(uint64_t index, size_t pos, uint64_t count, uint64_t width, std::string_view what) const {
    uint64_t room = table_offset_ - pos;
    if (width != 0 && count > room / width) return TruncatedObject(index, what);
    return Status::Ok();
  }

  Result<Value> ReadObject(uint64_t index, uint32_t depth) {
    APPBAN_RETURN_IF_ERROR(budget_.AddValue());
    APPBAN_ASSIGN_OR_RETURN(size_t pos, ObjectOffset(index));
    const uint8_t marker = bytes_[pos++];
    const uint8_t high = marker >> 4, low = marker & 0x0f;
    switch (high) {
      case 0x0:
        if (marker == 0x08) return Value::Boolean(false);
        if (marker == 0x09) return Value::Boolean(true);
        return Status::Unsupported("binary plist: object " + std::to_string(index) + " has marker 0x" +
                                   MarkerHex(marker) + " (null or fill), which no property list can hold");
      case 0x1: {
        if (low > 4) return BadMarker(index, marker);
        size_t width = size_t{1} << low;
        APPBAN_RETURN_IF_ERROR(CheckFits(index, pos, 1, width, "integer"));
        if (width == 16) {
          uint64_t high_bits = LoadBE(bytes_, pos, 8), low_bits = LoadBE(bytes_, pos + 8, 8);
          bool fits =
              (high_bits == 0 && low_bits <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) ||
              (high_bits == ~uint64_t{0} && low_bits > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
          if (!fits) {
            return Status::Unsupported("binary plist: object " + std::to_string(index) +
                                       " is a 128-bit integer outside the 64-bit range");
          }
          return Value::Integer(static_cast<int64_t>(low_bits));
        }
        uint64_t raw = LoadBE(bytes_, pos, width);
        // 1-, 2- and 4-byte integers are unsigned; 8-byte ones are signed.
        return Value::Integer(static_cast<int64_t>(raw));
      }
      case 0x2:
      case 0x3: {
        if (high == 0x3 && marker != 0x33) return BadMarker(index, marker);
        if (high == 0x2 && low != 2 && low != 3) return BadMarker(index, marker);
        size_t width = high == 0x3 ? 8 : size_t{1} << low;
        APPBAN_RETURN_IF_ERROR(CheckFits(index, pos, 1, width, high == 0x3 ? "date" : "real"));
        uint64_t raw = LoadBE(bytes_, pos, width);
        double number;
        if (width == 4) {
          float single;
          uint32_t raw32 = static_cast<uint32_t>(raw);
          std::memcpy(&single, &raw32, 4);
          number = single;
        } else {
          std::memcpy(&number, &raw, 8);
        }
        if (high == 0x3) {
          double unix_seconds = number + kAppleEpochOffset;
          if (!(unix_seconds >= kEarliestDate && unix_seconds <= kLatestDate)) {
            return Status::Corruption("binary plist: date object " + std::to_string(index) +
                                      " lies outside the years 1 to 9999");
          }
          return Value::Date(unix_seconds);
        }
        return Value::Real(number);
      }
      case 0x4: {
        APPBAN_ASSIGN_OR_RETURN(uint64_t count, ReadCount(low, &pos, index));
        APPBAN_RETURN_IF_ERROR(CheckFits(index, pos, count, 1, "data"));
        APPBAN_RETURN_IF_ERROR(budget_.AddPayload(count));
        return Value::Data(std::string(reinterpret_cast<const char*>(bytes_.data() + pos), count));
      }
      case 0x5: {
        APPBAN_ASSIGN_OR_RETURN(uint64_t count, ReadCount(low, &pos, index));
        APPBAN_RETURN_IF_ERROR(CheckFits(index, pos, count, 1, "ASCII string"));
        APPBAN_RETURN_IF_ERROR(budget_.AddPayload(count));
        std::string text;
        text.reserve(count);
        for (uint64_t i = 0; i < count; ++i) {
          uint8_t c = bytes_[pos + i];
          if (c < 0x80) {
            text.push_back(static_cast<char>(c));
          } else {
            AppendUtf8(0xfffd, &text);  // not ASCII: shown as a replacement character
          }
        }
        return Value::String(std::move(text));
      }
      case 0x6: {
        APPBAN_ASSIGN_OR_RETURN(uint64_t count, ReadCount(low, &pos, index));
        APPBAN_RETURN_IF_ERROR(CheckFits(index, pos, count, 2, "UTF-16 string"));
        APPBAN_RETURN_IF_ERROR(budget_.AddPayload(count * 3));
        std::string text = Utf16ToUtf8(bytes_.subspan(pos, count * 2), Utf16Order::kBigEndian);
        return Value::String(std::move(text));
      }
      case 0x8: {
        size_t width = size_t{low} + 1;
        APPBAN_RETURN_IF_ERROR(CheckFits(index, pos, 1, width, "UID"));
        return Value::Uid(LoadBE(bytes_, pos, width));
      }
      case 0xa:
      case 0xb:
      case 0xc: {  // array, ordered set, set: all read as arrays
        APPBAN_ASSIGN_OR_RETURN(uint64_t count, ReadCount(low, &pos, index));
        APPBAN_RETURN_IF_ERROR(CheckFits(index, pos, count, ref_width_, "array"));
        APPBAN_RETURN_IF_ERROR(budget_.EnterDepth(depth + 1));
        ContainerGuard guard(this, index);
        APPBAN_RETURN_IF_ERROR(guard.status());
        Value::Array items;
        items.reserve(count);
        for (uint64_t i = 0; i < count; ++i) {
          APPBAN_ASSIGN_OR_RETURN(uint64_t ref, ReadRef(pos + i * ref_width_, index));
          APPBAN_ASSIGN_OR_RETURN(Value item, ReadObject(ref, depth + 1));
          items.push_back(std::move(item));
        }
        return Value::MakeArray(std::move(items));
      }
      case 0xd: {
        APPBAN_ASSIGN_OR_RETURN(uint64_t count, ReadCount(low, &pos, index));
        // Keys, then values: 2 × count references.
        APPBAN_RETURN_IF_ERROR(CheckFits(index, pos, count, 2 * uint64_t{ref_width_}, "dict"));
        APPBAN_RETURN_IF_ERROR(budget_.EnterDepth(depth + 1));
        ContainerGuard guard(this, index);
        APPBAN_RETURN_IF_ERROR(guard.status());
        Value dict = Value::MakeDict();
        for (uint64_t i = 0; i < count; ++i) {
          APPBAN_ASSIGN_OR_RETURN(uint64_t key_ref, ReadRef(pos + i * ref_width_, index));
          APPBAN_ASSIGN_OR_RETURN(uint64_t value_ref, ReadRef(pos + (count + i) * ref_width_, index));
          APPBAN_ASSIGN_OR_RETURN(Value key, ReadObject(key_ref, depth + 1));
          if (key.AsString() == nullptr) {
            return Status::Corruption("binary plist: dict object " + std::to_string(index) + " has a key of type " +
                                      std::string(TypeName(key.type())) + " (object " + std::to_string(key_ref) +
                                      "); keys must be strings");
          }
          APPBAN_ASSIGN_OR_RETURN(Value value, ReadObject(value_ref, depth + 1));
          dict.Set(*key.AsString(), std::move(value));
        }
        return dict;
      }
      default:
        return BadMarker(index, marker);
    }
  }

  Status BadMarker(uint64_t index, uint8_t marker) const {
    return Status::Corruption("binary plist: object " + std::to_string(index) + " has unknown marker 0x" +
                              MarkerHex(marker));
  }

  Result<uint64_t> ReadRef(size_t pos, uint64_t container) const {
    uint64_t ref = LoadBE(bytes_, pos, ref_width_);
    if (ref >= object_count_) {
      return Status::Corruption("binary plist: object " + std::to_string(container) + " refers to object " +
                                std::to_string(ref) + " of " + std::to_string(object_count_));
    }
    return ref;
  }

  // Marks a container as being read while its children are; meeting it again below itself is a
  // reference cycle, which would otherwise recurse until the depth limit on every path.
  class ContainerGuard {
   public:
    ContainerGuard(BinaryReader* reader, uint64_t index) : reader_(reader), index_(index) {
      if (reader_->in_progress_[index_]) {
        status_ = Status::Corruption("binary plist: object " + std::to_string(index_) +
                                     " contains itself (a reference cycle)");
        reader_ = nullptr;
      } else {
        reader_->in_progress_[index_] = true;
      }
    }
    ~ContainerGuard() {
      if (reader_ != nullptr) reader_->in_progress_[index_] = false;
    }
    ContainerGuard(const ContainerGuard&) = delete;
    ContainerGuard& operator=(const ContainerGuard&) = delete;
    Status status() const { return status_; }

   private:
    BinaryReader* reader_;
    uint64_t index_;
    Status status_;
  };

  Bytes bytes_;
  const Limits& limits_;
  Budget budget_;
  size_t offset_width_ = 0;
  size_t ref_width_ = 0;
  size_t table_offset_ = 0;
  uint64_t object_count_ = 0;
  std::vector<bool> in_progress_;
};

// ---------------------------------------------------------------------------------------------
// XML plist: the subset of XML that plists use — a prolog (XML declaration, DOCTYPE, comments,
// processing instructions), then elements without meaningful attributes, text with the five
// predefined entities and character references, CDATA sections in text. Anything else is an
// error naming the line.

class XmlReader {
 public:
  XmlReader(std::string_view text, const Limits& limits) : text_(text), limits_(limits), budget_(limits) {}

  Result<Value> Read() {
    if (text_.size() > limits_.max_input_bytes) {
      return Status::LimitExceeded("XML plist of " + std::to_string(text_.size()) + " bytes exceeds " +
                                   std::to_string(limits_.max_input_bytes) + " (Limits::max_input_bytes)");
    }
    if (text_.size() >= 2 &&
        ((text_[0] == '\xfe' && text_[1] == '\xff') || (text_[0] == '\xff' && text_[1] == '\xfe'))) {
      return Status::Unsupported("XML plist in UTF-16 is not supported (only UTF-8)");
    }
    if (text_.substr(0, 3) == "\xef\xbb\xbf") pos_ = 3;
    APPBAN_RETURN_IF_ERROR(SkipMisc());
    APPBAN_ASSIGN_OR_RETURN(Tag tag, ReadTag());
    Value result;
    if (tag.name == "plist") {
      if (tag.self_closing) return Error("empty <plist/> element");
      APPBAN_RETURN_IF_ERROR(SkipMisc());
      APPBAN_ASSIGN_OR_RETURN(Tag inner, ReadTag());
      if (inner.closing) return Error("<plist> holds no value");
      APPBAN_ASSIGN_OR_RETURN(result, ReadValue(inner, 1));
      APPBAN_RETURN_IF_ERROR(SkipMisc());
      APPBAN_ASSIGN_OR_RETURN(Tag end, ReadTag());
      if (!end.closing || end.name != "plist") return Error("expected </plist> after the top value");
    } else {
      // Some tools write a bare value without the <plist> wrapper; CoreFoundation reads it.
      APPBAN_ASSIGN_OR_RETURN(result, ReadValue(tag, 1));
    }
    APPBAN_RETURN_IF_ERROR(SkipMisc());
    if (pos_ != text_.size()) return Error("content after the end of the plist");
    return result;
  }

 private:
  struct Tag {
    std::string_view name;
    bool closing = false;
    bool self_closing = false;
  };

  Status Error(std::string_view what) const {
    size_t line = 1;
    for (size_t i = 0; i < pos_ && i < text_.size(); ++i) line += text_[i] == '\n';
    return Status::Corruption("XML plist line " + std::to_string(line) + ": " + std::string(what));
  }

  static bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
  void SkipSpace() {
    while (pos_ < text_.size() && IsSpace(text_[pos_])) ++pos_;
  }
  bool StartsWith(std::string_view prefix) const { return text_.substr(pos_, prefix.size()) == prefix; }

  Status SkipPast(std::string_view terminator, std::string_view what) {
    size_t end = text_.find(terminator, pos_);
    if (end == std::string_view::npos) return Error("unterminated " + std::string(what));
    pos_ = end + terminator.size();
    return Status::Ok();
  }

  // Skips whitespace, comments, processing instructions and the DOCTYPE.
  Status SkipMisc() {
    for (;;) {
      SkipSpace();
      if (StartsWith("<?")) {
        APPBAN_RETURN_IF_ERROR(SkipPast("?>", "processing instruction"));
      } else if (StartsWith("<!--")) {
        APPBAN_RETURN_IF_ERROR(SkipPast("-->", "comment"));
      } else if (StartsWith("<!DOCTYPE")) {
        // Apple's DOCTYPE has no internal subset; one with '[' would declare entities we refuse.
        size_t end = text_.find('>', pos_);
        if (end == std::string_view::npos) return Error("unterminated DOCTYPE");
        if (text_.substr(pos_, end - pos_).find('[') != std::string_view::npos) {
          return Error("DOCTYPE with an internal subset (entity declarations are not supported)");
        }
        pos_ = end + 1;
      } else {
        return Status::Ok();
      }
    }
  }

  Result<Tag> ReadTag() {
    if (pos_ >= text_.size()) return Error("unexpected end of document");
    if (text_[pos_] != '<') return Error("expected an element");
    size_t end = text_.find('>', pos_);
    if (end == std::string_view::npos) return Error("unterminated element tag");
    std::string_view inside = text_.substr(pos_ + 1, end - pos_ - 1);
    Tag tag;
    if (!inside.empty() && inside.front() == '/') {
      tag.closing = true;
      inside.remove_prefix(1);
    }
    if (!inside.empty() && inside.back() == '/') {
      tag.self_closing = true;
      inside.remove_suffix(1);
    }
    size_t name_end = 0;
    while (name_end < inside.size() && !IsSpace(inside[name_end])) ++name_end;
    tag.name = inside.substr(0, name_end);
    if (tag.name.empty()) return Error("element without a name");
    pos_ = end + 1;
    return tag;
  }

  // Reads character data up to the next '<' that is not a CDATA section, decoding entities.
  Result<std::string> ReadText() {
    std::string out;
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == '<') {
        if (!StartsWith("<![CDATA[")) break;
        size_t end = text_.find("]]>", pos_ + 9);
        if (end == std::string_view::npos) return Error("unterminated CDATA section");
        out.append(text_.substr(pos_ + 9, end - pos_ - 9));
        pos_ = end + 3;
      } else if (c == '&') {
        size_t end = text_.find(';', pos_);
        if (end == std::string_view::npos || end - pos_ > 12) return Error("unterminated entity reference");
        std::string_view entity = text_.substr(pos_ + 1, end - pos_ - 1);
        if (entity == "lt")
          out.push_back('<');
        else if (entity == "gt")
          out.push_back('>');
        else if (entity == "amp")
          out.push_back('&');
        else if (entity == "quot")
          out.push_back('"');
        else if (entity == "apos")
          out.push_back('\'');
        else if (entity.size() > 1 && entity[0] == '#') {
          bool hex = entity[1] == 'x' || entity[1] == 'X';
          std::string_view digits = entity.substr(hex ? 2 : 1);
          if (digits.empty()) return Error("empty character reference");
          uint32_t code = 0;
          for (char d : digits) {
            int v = (d >= '0' && d <= '9')          ? d - '0'
                    : hex && (d >= 'a' && d <= 'f') ? d - 'a' + 10
                    : hex && (d >= 'A' && d <= 'F') ? d - 'A' + 10
                                                    : -1;
            if (v < 0) return Error("bad character reference &" + std::string(entity) + ";");
            code = code * (hex ? 16 : 10) + static_cast<uint32_t>(v);
            if (code > 0x10ffff) return Error("character reference &" + std::string(entity) + "; out of range");
          }
          AppendUtf8(code, &out);
        } else {
          return Error("unknown entity &" + std::string(entity) + ";");
        }
        pos_ = end + 1;
      } else {
        out.push_back(c);
        ++pos_;
      }
    }
    return out;
  }

  // Reads the text of a leaf element whose opening tag was just read, and its closing tag.
  Result<std::string> ReadLeaf(const Tag& open) {
    if (open.self_closing) return std::string();
    APPBAN_ASSIGN_OR_RETURN(std::string text, ReadText());
    APPBAN_ASSIGN_OR_RETURN(Tag close, ReadTag());
    if (!close.closing || close.name != open.name) {
      return Error("<" + std::string(open.name) + "> closed by <" + (close.closing ? "/" : "") +
                   std::string(close.name) + ">");
    }
    APPBAN_RETURN_IF_ERROR(budget_.AddPayload(text.size()));
    return text;
  }

  static std::string_view Trim(std::string_view s) {
    while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
    while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
    return s;
  }

  Result<Value> ReadValue(const Tag& open, uint32_t depth) {
    APPBAN_RETURN_IF_ERROR(budget_.AddValue());
    if (open.closing) return Error("unexpected </" + std::string(open.name) + ">");
    std::string_view name = open.name;
    if (name == "string") {
      APPBAN_ASSIGN_OR_RETURN(std::string text, ReadLeaf(open));
      return Value::String(std::move(text));
    }
    if (name == "true" || name == "false") {
      APPBAN_ASSIGN_OR_RETURN(std::string text, ReadLeaf(open));
      if (!Trim(text).empty()) return Error("<" + std::string(name) + "> with content");
      return Value::Boolean(name == "true");
    }
    if (name == "integer") {
      APPBAN_ASSIGN_OR_RETURN(std::string text, ReadLeaf(open));
      return ParseInteger(Trim(text));
    }
    if (name == "real") {
      APPBAN_ASSIGN_OR_RETURN(std::string text, ReadLeaf(open));
      std::string trimmed(Trim(text));
      if (trimmed == "nan") return Value::Real(std::numeric_limits<double>::quiet_NaN());
      if (trimmed == "+infinity" || trimmed == "inf") return Value::Real(std::numeric_limits<double>::infinity());
      if (trimmed == "-infinity" || trimmed == "-inf") return Value::Real(-std::numeric_limits<double>::infinity());
      char* end = nullptr;
      double number = std::strtod(trimmed.c_str(), &end);
      if (trimmed.empty() || end != trimmed.c_str() + trimmed.size()) return Error("bad <real> \"" + trimmed + "\"");
      return Value::Real(number);
    }
    if (name == "date") {
      APPBAN_ASSIGN_OR_RETURN(std::string text, ReadLeaf(open));
      auto at = ParseTimestamp(Trim(text));
      if (!at.ok() || Trim(text).size() != 20) return Error("bad <date> \"" + std::string(Trim(text)) + "\"");
      return Value::Date(static_cast<double>(*at));
    }
    if (name == "data") {
      APPBAN_ASSIGN_OR_RETURN(std::string text, ReadLeaf(open));
      return DecodeBase64(text);
    }
    if (name == "array") {
      APPBAN_RETURN_IF_ERROR(budget_.EnterDepth(depth));
      Value::Array items;
      if (open.self_closing) return Value::MakeArray();
      for (;;) {
        APPBAN_RETURN_IF_ERROR(SkipMisc());
        APPBAN_ASSIGN_OR_RETURN(Tag tag, ReadTag());
        if (tag.closing) {
          if (tag.name != "array") return Error("<array> closed by </" + std::string(tag.name) + ">");
          return Value::MakeArray(std::move(items));
        }
        APPBAN_ASSIGN_OR_RETURN(Value item, ReadValue(tag, depth + 1));
        items.push_back(std::move(item));
      }
    }
    if (name == "dict") {
      APPBAN_RETURN_IF_ERROR(budget_.EnterDepth(depth));
      Value dict = Value::MakeDict();
      if (open.self_closing) return dict;
      for (;;) {
        APPBAN_RETURN_IF_ERROR(SkipMisc());
        APPBAN_ASSIGN_OR_RETURN(Tag tag, ReadTag());
        if (tag.closing) {
          if (tag.name != "dict") return Error("<dict> closed by </" + std::string(tag.name) + ">");
          return dict;
        }
        if (tag.name != "key") return Error("<dict> holds <" + std::string(tag.name) + "> where a <key> belongs");
        APPBAN_ASSIGN_OR_RETURN(std::string key, ReadLeaf(tag));
        APPBAN_RETURN_IF_ERROR(SkipMisc());
        APPBAN_ASSIGN_OR_RETURN(Tag value_tag, ReadTag());
        if (value_tag.closing) return Error("<key>" + key + "</key> has no value");
        APPBAN_ASSIGN_OR_RETURN(Value value, ReadValue(value_tag, depth + 1));
        dict.Set(std::move(key), std::move(value));
      }
    }
    return Error("unknown element <" + std::string(name) + ">");
  }

  Result<Value> ParseInteger(std::string_view text) const {
    bool negative = false;
    std::string_view digits = text;
    if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) {
      negative = digits[0] == '-';
      digits.remove_prefix(1);
    }
    bool hex = digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X');
    if (hex) digits.remove_prefix(2);
    if (digits.empty()) return Error("empty <integer>");
    uint64_t magnitude = 0;
    const uint64_t base = hex ? 16 : 10;
    for (char d : digits) {
      int v = (d >= '0' && d <= '9')          ? d - '0'
              : hex && (d >= 'a' && d <= 'f') ? d - 'a' + 10
              : hex && (d >= 'A' && d <= 'F') ? d - 'A' + 10
                                              : -1;
      if (v < 0) return Error("bad <integer> \"" + std::string(text) + "\"");
      if (magnitude > (std::numeric_limits<uint64_t>::max() - static_cast<uint64_t>(v)) / base) {
        return Error("<integer> \"" + std::string(text) + "\" does not fit in 64 bits");
      }
      magnitude = magnitude * base + static_cast<uint64_t>(v);
    }
    constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    if (negative) {
      if (magnitude > kMax + 1) return Error("<integer> \"" + std::string(text) + "\" does not fit in 64 bits");
      return Value::Integer(magnitude == kMax + 1 ? std::numeric_limits<int64_t>::min()
                                                  : -static_cast<int64_t>(magnitude));
    }
    // CoreFoundation keeps unsigned values above INT64_MAX; they are read here as their
    // two's-complement bit pattern, as CFNumber's kCFNumberSInt64Type does.
    return Value::Integer(static_cast<int64_t>(magnitude));
  }

  Result<Value> DecodeBase64(std::string_view text) const {
    std::string compact;
    compact.reserve(text.size());
    for (char c : text) {
      if (!IsSpace(c)) compact.push_back(c);
    }
    std::string out(compact.size() / 4 * 3 + 3, '\0');
    EVP_ENCODE_CTX* ctx = EVP_ENCODE_CTX_new();
    if (ctx == nullptr) return Status::Internal("out of memory creating a base64 decoder");
    EVP_DecodeInit(ctx);
    int written = 0, tail = 0;
    int rc = EVP_DecodeUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &written,
                              reinterpret_cast<const unsigned char*>(compact.data()), static_cast<int>(compact.size()));
    int rc2 = rc < 0 ? -1 : EVP_DecodeFinal(ctx, reinterpret_cast<unsigned char*>(out.data()) + written, &tail);
    EVP_ENCODE_CTX_free(ctx);
    if (rc < 0 || rc2 < 0) return Error("<data> is not valid base64");
    out.resize(static_cast<size_t>(written + tail));
    return Value::Data(std::move(out));
  }

  std::string_view text_;
  const Limits& limits_;
  Budget budget_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------
// XML writer.

void WriteEscaped(std::string* out, std::string_view text) {
  std::string clean = SanitizeUtf8(text);
  for (size_t i = 0; i < clean.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(clean[i]);
    switch (c) {
      case '<':
        *out += "&lt;";
        break;
      case '>':
        *out += "&gt;";
        break;
      case '&':
        *out += "&amp;";
        break;
      default:
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          *out += "\xef\xbf\xbd";  // XML 1.0 cannot carry other control characters
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
}

void WriteValue(std::string* out, const Value& value, int depth) {
  std::string indent(static_cast<size_t>(depth), '\t');
  *out += indent;
  switch (value.type()) {
    case Value::Type::kString:
      *out += "<string>";
      WriteEscaped(out, *value.AsString());
      *out += "</string>\n";
      break;
    case Value::Type::kInteger:
      *out += "<integer>" + std::to_string(*value.AsInteger()) + "</integer>\n";
      break;
    case Value::Type::kReal: {
      double number = *value.AsReal();
      std::string text;
      if (std::isnan(number)) {
        text = "nan";
      } else if (std::isinf(number)) {
        text = number > 0 ? "+infinity" : "-infinity";
      } else {
        char buffer[40];
        std::snprintf(buffer, sizeof buffer, "%.17g", number);
        text = buffer;
      }
      *out += "<real>" + text + "</real>\n";
      break;
    }
    case Value::Type::kBoolean:
      *out += *value.AsBoolean() ? "<true/>\n" : "<false/>\n";
      break;
    case Value::Type::kDate:
      *out +=
          "<date>" +
          FormatTimestamp(static_cast<UnixSeconds>(std::floor(
              std::isnan(*value.AsDate()) ? kEarliestDate : std::clamp(*value.AsDate(), kEarliestDate, kLatestDate)))) +
          "</date>\n";
      break;
    case Value::Type::kData: {
      const std::string& bytes = *value.AsData();
      *out += "<data>\n";
      // 48 input bytes → one 64-character line, as Apple writes it.
      for (size_t i = 0; i < bytes.size(); i += 48) {
        size_t n = std::min<size_t>(48, bytes.size() - i);
        unsigned char encoded[65];
        int length =
            EVP_EncodeBlock(encoded, reinterpret_cast<const unsigned char*>(bytes.data() + i), static_cast<int>(n));
        *out += indent;
        out->append(reinterpret_cast<const char*>(encoded), static_cast<size_t>(length));
        *out += "\n";
      }
      *out += indent + "</data>\n";
      break;
    }
    case Value::Type::kArray:
      if (value.AsArray()->empty()) {
        *out += "<array/>\n";
        break;
      }
      *out += "<array>\n";
      for (const Value& item : *value.AsArray()) WriteValue(out, item, depth + 1);
      *out += indent + "</array>\n";
      break;
    case Value::Type::kDict:
      if (value.AsDict()->empty()) {
        *out += "<dict/>\n";
        break;
      }
      *out += "<dict>\n";
      for (const auto& [key, item] : *value.AsDict()) {
        *out += indent + "\t<key>";
        WriteEscaped(out, key);
        *out += "</key>\n";
        WriteValue(out, item, depth + 1);
      }
      *out += indent + "</dict>\n";
      break;
    case Value::Type::kUid:
      *out += "<dict>\n" + indent + "\t<key>CF$UID</key>\n" + indent + "\t<integer>" + std::to_string(*value.AsUid()) +
              "</integer>\n" + indent + "</dict>\n";
      break;
  }
}

}  // namespace

Result<Value> ParseBinary(Bytes bytes, const Limits& limits) { return BinaryReader(bytes, limits).Read(); }

Result<Value> ParseXml(Bytes bytes, const Limits& limits) { return XmlReader(AsStringView(bytes), limits).Read(); }

bool LooksLikePlist(Bytes bytes) {
  std::string_view text = AsStringView(bytes);
  if (text.substr(0, kBinaryMagic.size()) == kBinaryMagic) return true;
  if (text.substr(0, 3) == "\xef\xbb\xbf") text.remove_prefix(3);
  while (!text.empty() &&
         (text.front() == ' ' || text.front() == '\t' || text.front() == '\r' || text.front() == '\n')) {
    text.remove_prefix(1);
  }
  std::string_view head = text.substr(0, 512);
  return head.substr(0, 5) == "<?xml"
             ? head.find("<plist") != std::string_view::npos || head.find("<!DOCTYPE plist") != std::string_view::npos
             : head.substr(0, 6) == "<plist";
}

Result<Value> Parse(Bytes bytes, const Limits& limits) {
  if (AsStringView(bytes).substr(0, kBinaryMagic.size()) == kBinaryMagic) return ParseBinary(bytes, limits);
  if (AsStringView(bytes).substr(0, 6) == "bplist") {
    return Status::Unsupported("binary plist version \"" + SanitizeUtf8(AsStringView(bytes).substr(0, 8)) +
                               "\" (only bplist00 is read)");
  }
  return ParseXml(bytes, limits);
}

std::string WriteXml(const Value& value) {
  std::string out =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
      "<plist version=\"1.0\">\n";
  WriteValue(&out, value, 0);
  out += "</plist>\n";
  return out;
}

}  // namespace appban::plist
