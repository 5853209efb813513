// Android binary XML reader.
//
// What Android itself tolerates (frameworks/base/libs/androidfw/ResourceTypes.cpp, ResXMLTree::setTo
// and ResXMLParser::nextNode), which is what this reader mirrors:
//  - The file header's *type* is never checked; only its headerSize (<= declared size) and the
//    declared total size (<= the bytes given) are. Chunks start at headerSize, not at 8.
//  - Every chunk goes through validate_chunk(): headerSize >= the struct minimum, headerSize <= size,
//    both multiples of 4, size within the data end (= the header's declared size). A failure ends
//    the document (setTo fails before the root; nextNode returns BAD_DOCUMENT after it).
//  - Before the first XML node: every RES_STRING_POOL_TYPE chunk *replaces* the pool, every
//    RES_XML_RESOURCE_MAP_TYPE chunk replaces the id map, anything else is skipped silently.
//  - The first chunk typed 0x0100..0x017f is the root node; from there nextNode() walks chunk by
//    chunk, silently skipping unknown types (string pools and resource maps included: after the
//    first node they are ignored). A node's payload starts at its headerSize, which may exceed 16.
//  - A start element is valid when attributeStart + attributeSize * attributeCount fits in the
//    chunk; attributeSize itself is unchecked (0 makes every attribute alias the first; < 20 makes
//    them overlap) and attribute i is read at ext + attributeStart + i * attributeSize.
//  - Strings: see res_string_pool.cc; an index out of range reads as null (empty).
//  - Attribute resource ids come from the id map by the attribute's *name string index*; the
//    framework's obtainAttributes() matches android: attributes by that id alone, so stripped or
//    forged names do not matter to it. Attributes read by name (the manifest `package`) match a
//    local name with *no* namespace.
//  - Nesting is not checked: an end tag never has to match its start tag.
// Where Android would refuse the document we are more lenient (clamp an overrunning size, repair a
// string pool header, keep the tree read so far) — an installable app never looks like that, and
// an analyser that gives up is what the tricks aim for — and every deviation becomes an anomaly.
// Plain-text XML and anything without an XML or string-pool chunk up front is NotRecognized.
#include "appban/apk/axml.h"

#include <map>
#include <set>
#include <type_traits>

#include "appban/apk/res_string_pool.h"
#include "appban/common/text.h"

namespace appban::apk {

std::string_view KnownAndroidAttributeName(uint32_t resource_id) {
  struct Known {
    uint32_t id;
    std::string_view name;
  };
  static constexpr Known kKnown[] = {
      {attr::kLabel, "label"},
      {attr::kIcon, "icon"},
      {attr::kName, "name"},
      {attr::kPermission, "permission"},
      {attr::kReadPermission, "readPermission"},
      {attr::kWritePermission, "writePermission"},
      {attr::kProtectionLevel, "protectionLevel"},
      {attr::kHasCode, "hasCode"},
      {attr::kEnabled, "enabled"},
      {attr::kDebuggable, "debuggable"},
      {attr::kExported, "exported"},
      {attr::kAuthorities, "authorities"},
      {attr::kPriority, "priority"},
      {attr::kValue, "value"},
      {attr::kMimeType, "mimeType"},
      {attr::kScheme, "scheme"},
      {attr::kHost, "host"},
      {attr::kPort, "port"},
      {attr::kPath, "path"},
      {attr::kPathPrefix, "pathPrefix"},
      {attr::kPathPattern, "pathPattern"},
      {attr::kMinSdkVersion, "minSdkVersion"},
      {attr::kVersionCode, "versionCode"},
      {attr::kVersionName, "versionName"},
      {attr::kTargetSdkVersion, "targetSdkVersion"},
      {attr::kMaxSdkVersion, "maxSdkVersion"},
      {attr::kTestOnly, "testOnly"},
      {attr::kAllowBackup, "allowBackup"},
      {attr::kGlEsVersion, "glEsVersion"},
      {attr::kRequired, "required"},
      {attr::kUsesCleartextTraffic, "usesCleartextTraffic"},
      {attr::kAutoVerify, "autoVerify"},
      {attr::kNetworkSecurityConfig, "networkSecurityConfig"},
      {attr::kCompileSdkVersion, "compileSdkVersion"},
      {attr::kCompileSdkVersionCodename, "compileSdkVersionCodename"},
      {attr::kVersionCodeMajor, "versionCodeMajor"},
  };
  for (const Known& known : kKnown) {
    if (known.id == resource_id) return known.name;
  }
  return "";
}

const XmlAttribute* XmlElement::FindAndroidAttribute(uint32_t resource_id, std::string_view name) const {
  for (const XmlAttribute& attribute : attributes) {
    if (attribute.resource_id == resource_id) return &attribute;
  }
  // Only for hand-made documents without a resource map: an attribute that has a (different)
  // resource id is never matched by its name, since its name may be forged.
  for (const XmlAttribute& attribute : attributes) {
    if (attribute.resource_id == 0 && attribute.ns == kAndroidNamespace && attribute.name == name) return &attribute;
  }
  return nullptr;
}

const XmlAttribute* XmlElement::FindAttribute(std::string_view name) const {
  for (const XmlAttribute& attribute : attributes) {
    if (attribute.name == name) return &attribute;
  }
  return nullptr;
}

const XmlAttribute* XmlElement::FindPlainAttribute(std::string_view name) const {
  for (const XmlAttribute& attribute : attributes) {
    if (attribute.ns.empty() && attribute.name == name) return &attribute;
  }
  return nullptr;
}

namespace {

constexpr size_t kXmlHeaderBytes = 8;
constexpr size_t kNodeHeaderBytes = 16;            // ResXMLTree_node
constexpr size_t kAttrExtBytes = 20;               // ResXMLTree_attrExt
constexpr size_t kAttributeBytes = 20;             // ResXMLTree_attribute
constexpr size_t kNamespaceExtBytes = 8;           // ResXMLTree_namespaceExt
constexpr size_t kEndElementExtBytes = 8;          // ResXMLTree_endElementExt
constexpr size_t kCdataExtBytes = 12;              // ResXMLTree_cdataExt
constexpr size_t kMaxElementTextBytes = 64 << 10;  // text kept per element; more is dropped
constexpr uint16_t kResValueBytes = 8;

bool LooksLikePlainTextXml(Bytes data) {
  size_t i = 0;
  if (data.size() >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf) i = 3;  // UTF-8 BOM
  while (i < data.size() && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n')) ++i;
  return i < data.size() && data[i] == '<';
}

class AxmlReader {
 public:
  AxmlReader(Bytes data, const Limits& limits, Anomalies* anomalies)
      : data_(data), limits_(limits), anomalies_(anomalies) {}

  Result<XmlDocument> Read() {
    if (LooksLikePlainTextXml(data_)) {
      return Status::NotRecognized("plain-text XML, not Android binary XML");
    }
    auto header = ReadChunkHeader(data_, 0);
    if (!header) return Status::NotRecognized("only " + std::to_string(data_.size()) + " bytes: not binary XML");
    APPBAN_ASSIGN_OR_RETURN(size_t first_chunk, ReadFileHeader(*header));
    APPBAN_RETURN_IF_ERROR(WalkChunks(first_chunk));
    FinishAnomalies();
    if (!have_root_) return Status::Corruption("binary XML holds no element");
    XmlDocument document;
    document.root = std::move(root_);
    return document;
  }

 private:
  // Decides whether this is binary XML at all and where the data ends. Returns the first chunk.
  Result<size_t> ReadFileHeader(const ChunkHeader& header) {
    auto is_string_pool_at = [&](size_t offset) {
      auto chunk = ReadChunkHeader(data_, offset);
      return chunk && chunk->type == kResStringPoolType && chunk->header_size >= 28;
    };
    size_t first_chunk = header.header_size;
    bool header_size_usable = header.header_size >= kXmlHeaderBytes && header.header_size % 4 == 0 &&
                              header.header_size + kChunkHeaderBytes <= data_.size();
    if (!header_size_usable) first_chunk = kXmlHeaderBytes;
    if (header.type != kResXmlType) {
      // Android never checks this field; accept when a string pool follows, as it must.
      if (!is_string_pool_at(first_chunk) && !is_string_pool_at(kXmlHeaderBytes)) {
        return Status::NotRecognized("file type " + HexNumber(header.type) +
                                     " is not binary XML (0x3) and no string pool follows");
      }
      Report("axml.file_type", 0,
             "file header type is " + HexNumber(header.type) +
                 " instead of 0x3 (RES_XML_TYPE); Android does not "
                 "check it");
    }
    if (header.header_size != kXmlHeaderBytes) {
      if (header_size_usable && is_string_pool_at(first_chunk)) {
        Report("axml.header_size", 0,
               "file header size is " + std::to_string(header.header_size) +
                   " instead of 8; chunks read from there, as Android does");
      } else {
        first_chunk = kXmlHeaderBytes;
        Report("axml.header_size", 0,
               "file header size " + std::to_string(header.header_size) +
                   " is bogus; chunks read from offset 8 (Android rejects the file)");
      }
    }
    end_ = data_.size();
    if (header.size > data_.size()) {
      Report("axml.file_size", 0,
             "declared file size " + std::to_string(header.size) + " exceeds the " + std::to_string(data_.size()) +
                 " bytes present; read to the end of the data (Android rejects the file)");
    } else if (header.size < first_chunk + kChunkHeaderBytes) {
      Report("axml.file_size", 0,
             "declared file size " + std::to_string(header.size) +
                 " cannot hold any chunk; read to the end of the data (Android rejects the file)");
    } else if (header.size < data_.size()) {
      end_ = header.size;
      Report("axml.trailing_data", header.size,
             std::to_string(data_.size() - header.size) +
                 " bytes follow the declared end of the document; ignored, as Android does");
    }
    return first_chunk;
  }

  Status WalkChunks(size_t offset) {
    while (offset + kChunkHeaderBytes <= end_) {
      ChunkHeader chunk = *ReadChunkHeader(data_, offset);
      const bool in_tree = root_seen_;
      const size_t min_header = in_tree || (chunk.type >= kResXmlFirstChunkType && chunk.type <= kResXmlLastChunkType)
                                    ? kNodeHeaderBytes
                                    : kChunkHeaderBytes;
      std::string problem = ValidateChunk(chunk, min_header, end_ - offset);
      if (!problem.empty()) {
        bool only_overruns =
            chunk.header_size >= min_header && chunk.header_size <= chunk.size && chunk.header_size <= end_ - offset;
        if (!only_overruns) {
          Report("axml.bad_chunk", offset,
                 "chunk type " + HexNumber(chunk.type) + ": " + problem + "; reading stops here, as Android's does");
          return Status::Ok();
        }
        uint32_t clamped = static_cast<uint32_t>(end_ - offset);
        Report("axml.chunk_overrun", offset,
               "chunk type " + HexNumber(chunk.type) + ": " + problem + "; read as " + std::to_string(clamped) +
                   " bytes (Android rejects the document)");
        chunk.size = clamped & ~3u;
        if (chunk.size < chunk.header_size) return Status::Ok();
      }
      Bytes bytes = data_.subspan(offset, chunk.size);
      if (!root_seen_) {
        if (chunk.type == kResStringPoolType) {
          if (have_pool_) {
            Report("axml.multiple_string_pools", offset,
                   "another string pool before the first element replaces the previous one, as on Android");
          }
          APPBAN_ASSIGN_OR_RETURN(pool_, StringPool::Parse(bytes, offset, "axml", limits_, anomalies_));
          have_pool_ = true;
        } else if (chunk.type == kResXmlResourceMapType) {
          if (!resource_ids_.empty()) {
            Report("axml.multiple_resource_maps", offset,
                   "another resource-id map replaces the previous one, as on Android");
          }
          resource_ids_ = bytes.subspan(chunk.header_size);
          resource_ids_ = resource_ids_.first(resource_ids_.size() / 4 * 4);
        } else if (chunk.type >= kResXmlFirstChunkType && chunk.type <= kResXmlLastChunkType) {
          root_seen_ = true;
        } else {
          Report("axml.unknown_chunk", offset,
                 "chunk of unknown type " + HexNumber(chunk.type) +
                     " before the first element; skipped, as Android "
                     "does");
        }
      }
      if (root_seen_) {
        bool keep_going = true;
        APPBAN_RETURN_IF_ERROR(ReadNode(offset, chunk, &keep_going));
        if (!keep_going) return Status::Ok();
      }
      offset += chunk.size;
    }
    return Status::Ok();
  }

  Status ReadNode(size_t offset, const ChunkHeader& chunk, bool* keep_going) {
    size_t min_ext = 0;
    switch (chunk.type) {
      case kResXmlStartNamespaceType:
      case kResXmlEndNamespaceType:
        min_ext = kNamespaceExtBytes;
        break;
      case kResXmlStartElementType:
        min_ext = kAttrExtBytes;
        break;
      case kResXmlEndElementType:
        min_ext = kEndElementExtBytes;
        break;
      case kResXmlCdataType:
        min_ext = kCdataExtBytes;
        break;
      default:
        Report("axml.unknown_chunk", offset,
               "chunk of type " + HexNumber(chunk.type) + " between elements; skipped, as Android does");
        return Status::Ok();
    }
    if (chunk.size - chunk.header_size < min_ext) {
      Report("axml.bad_node", offset,
             "node of type " + HexNumber(chunk.type) +
                 " is too small for its payload; reading stops here, as "
                 "Android's does");
      *keep_going = false;
      return Status::Ok();
    }
    if (chunk.header_size != kNodeHeaderBytes) {
      Report("axml.node_header_size", offset,
             "node header size is " + std::to_string(chunk.header_size) +
                 " instead of 16; payload read after it, as Android does");
    }
    if (++node_count_ > limits_.max_xml_nodes) {
      return Status::LimitExceeded("more than " + std::to_string(limits_.max_xml_nodes) + " XML nodes");
    }
    Bytes node = data_.subspan(offset, chunk.size);
    const size_t ext = chunk.header_size;
    const uint32_t line = *LoadLE<uint32_t>(node, 8);
    switch (chunk.type) {
      case kResXmlStartNamespaceType: {
        std::string prefix = StringAt(*LoadLE<uint32_t>(node, ext), offset);
        std::string uri = StringAt(*LoadLE<uint32_t>(node, ext + 4), offset);
        NoteNamespace(prefix, uri, offset);
        break;
      }
      case kResXmlStartElementType:
        return StartElement(offset, node, ext, line);
      case kResXmlEndElementType:
        EndElement(offset, StringAt(*LoadLE<uint32_t>(node, ext + 4), offset));
        break;
      case kResXmlCdataType:
        // Element text: manifests have none worth reading, but other XML resources do (the
        // <domain> names of a network security config). Bounded like attribute strings.
        if (!stack_.empty()) {
          std::string text = StringAt(*LoadLE<uint32_t>(node, ext), offset);
          if (text.size() <= kMaxElementTextBytes - std::min(kMaxElementTextBytes, stack_.back().text.size())) {
            stack_.back().text += text;
          }
        }
        break;
      default:
        break;  // end namespace
    }
    return Status::Ok();
  }

  void NoteNamespace(const std::string& prefix, const std::string& uri, size_t offset) {
    if (prefix == "android" && uri != kAndroidNamespace) {
      Report("axml.namespace_masking", offset,
             "prefix 'android' is bound to '" + uri +
                 "'; Android matches attributes by resource id, so this "
                 "only misleads name-based tools");
    } else if (uri == kAndroidNamespace && prefix != "android") {
      Report("axml.namespace_prefix", offset,
             "the Android namespace is bound to prefix '" + prefix + "' instead of 'android'");
    }
    auto [it, inserted] = namespaces_.emplace(uri, prefix);
    if (!inserted) {
      Report("axml.duplicate_namespace", offset,
             "namespace '" + uri + "' is declared more than once (prefixes '" + it->second + "' and '" + prefix + "')");
    }
  }

  Status StartElement(size_t offset, Bytes node, size_t ext, uint32_t line) {
    if (stack_.size() >= limits_.max_xml_depth) {
      return Status::LimitExceeded("XML nesting deeper than " + std::to_string(limits_.max_xml_depth));
    }
    XmlElement element;
    element.line = line;
    element.ns = StringAt(*LoadLE<uint32_t>(node, ext), offset);
    element.name = StringAt(*LoadLE<uint32_t>(node, ext + 4), offset);
    const uint16_t attribute_start = *LoadLE<uint16_t>(node, ext + 8);
    const uint16_t attribute_size = *LoadLE<uint16_t>(node, ext + 10);
    const uint16_t attribute_count = *LoadLE<uint16_t>(node, ext + 12);
    if (element.name.empty()) {
      Report("axml.element_name_missing", offset, "an element's name string is missing or empty");
    }
    if (attribute_count > 0 && attribute_size != kAttributeBytes) {
      Report("axml.attribute_size", offset,
             "attribute size is " + std::to_string(attribute_size) +
                 " instead of 20; attributes read at that stride, as Android does");
    }
    if (attribute_start != kAttrExtBytes) {
      Report("axml.attribute_start", offset,
             "attributes start " + std::to_string(attribute_start) +
                 " bytes into the element instead of 20; read from there, as Android does");
    }
    const uint64_t declared_end = uint64_t{attribute_start} + uint64_t{attribute_size} * attribute_count;
    if (declared_end > node.size() - ext) {
      Report("axml.attribute_overrun", offset,
             std::to_string(attribute_count) + " attributes of " + std::to_string(attribute_size) +
                 " bytes overrun the element chunk; those inside the document are read (Android rejects it)");
    }
    if (node_count_ + attribute_count > limits_.max_xml_nodes) {
      return Status::LimitExceeded("more than " + std::to_string(limits_.max_xml_nodes) + " XML nodes and attributes");
    }
    node_count_ += attribute_count;
    const size_t node_offset = static_cast<size_t>(node.data() - data_.data());
    element.attributes.reserve(attribute_count);
    for (uint32_t i = 0; i < attribute_count; ++i) {
      // Android reads the whole 20-byte record even when the stride is smaller; so do we, within
      // the document.
      const uint64_t at = node_offset + ext + attribute_start + uint64_t{attribute_size} * i;
      auto record = SubSpan(data_.first(end_), at, kAttributeBytes);
      if (!record) break;
      element.attributes.push_back(ReadAttribute(*record, offset));
      APPBAN_RETURN_IF_ERROR(CheckStringBudget());
    }
    CheckAttributeNames(element, offset);
    stack_.push_back(std::move(element));
    return CheckStringBudget();
  }

  XmlAttribute ReadAttribute(Bytes record, size_t offset) {
    XmlAttribute attribute;
    const uint32_t ns_index = *LoadLE<uint32_t>(record, 0);
    const uint32_t name_index = *LoadLE<uint32_t>(record, 4);
    const uint32_t raw_index = *LoadLE<uint32_t>(record, 8);
    const uint16_t value_size = *LoadLE<uint16_t>(record, 12);
    attribute.type = static_cast<ValueType>(record[15]);
    attribute.data = *LoadLE<uint32_t>(record, 16);
    attribute.ns = StringAt(ns_index, offset);
    attribute.name = StringAt(name_index, offset);
    if (name_index != kNoStringIndex && uint64_t{name_index} * 4 + 4 <= resource_ids_.size()) {
      attribute.resource_id = *LoadLE<uint32_t>(resource_ids_, name_index * 4ull);
    }
    if (value_size != kResValueBytes) {
      Report("axml.value_size", offset, [&] {
        return std::string("attribute value size is " + std::to_string(value_size) +
                           " instead of 8; ignored, as Android does");
      });
    }
    if (raw_index != kNoStringIndex) attribute.raw_value = StringAt(raw_index, offset);
    if (attribute.type == ValueType::kString) {
      attribute.string_value = StringAt(attribute.data, offset);
    } else if (attribute.raw_value) {
      attribute.string_value = *attribute.raw_value;
    }
    return attribute;
  }

  void CheckAttributeNames(const XmlElement& element, size_t offset) {
    for (const XmlAttribute& attribute : element.attributes) {
      std::string_view expected = KnownAndroidAttributeName(attribute.resource_id);
      if (!expected.empty() && attribute.name != expected) {
        Report("axml.attribute_name_mismatch", offset, [&] {
          return std::string("attribute with resource id " + HexNumber(attribute.resource_id) + " is named '" +
                             attribute.name + "' instead of '" + std::string(expected) +
                             "'; matched by id, as Android does");
        });
      }
      if (attribute.resource_id == 0 && attribute.ns == kAndroidNamespace) {
        Report("axml.attribute_without_id", offset,
               [&] { return std::string("android:" + attribute.name + " has no resource id, so Android ignores it"); });
      }
    }
  }

  void EndElement(size_t offset, const std::string& name) {
    if (stack_.empty()) {
      Report("axml.unbalanced_end_element", offset, "end tag '" + name + "' with no open element; ignored");
      return;
    }
    if (stack_.back().name != name) {
      Report("axml.mismatched_end_element", offset,
             "end tag '" + name + "' closes element '" + stack_.back().name + "'; Android does not check names");
    }
    CloseTop(offset);
  }

  void CloseTop(size_t offset) {
    XmlElement element = std::move(stack_.back());
    stack_.pop_back();
    if (!stack_.empty()) {
      stack_.back().children.push_back(std::move(element));
    } else if (!have_root_) {
      root_ = std::move(element);
      have_root_ = true;
    } else {
      Report("axml.extra_root_element", offset,
             "a second top-level element '" + element.name +
                 "' follows the root; ignored, as PackageParser stops at "
                 "the root's end");
    }
  }

  Status CheckStringBudget() const {
    if (string_bytes_ <= limits_.max_xml_string_bytes) return Status::Ok();
    return Status::LimitExceeded("strings of the document exceed " + std::to_string(limits_.max_xml_string_bytes) +
                                 " bytes once decoded (attributes aliasing long strings)");
  }

  std::string StringAt(uint32_t index, size_t offset) {
    if (index == kNoStringIndex) return {};
    std::string out;
    switch (pool_.Get(index, &out)) {
      case StringPool::Lookup::kOk:
        break;
      case StringPool::Lookup::kOutOfRange:
        Report("axml.string_index", offset, [&] {
          return std::string("string index " + std::to_string(index) + " is beyond the pool's " +
                             std::to_string(pool_.size()) + " strings; read as empty (null on Android)");
        });
        break;
      case StringPool::Lookup::kBadOffset:
        Report("axml.string_offset", offset, [&] {
          return std::string("string " + std::to_string(index) +
                             " lies outside the pool's character data; read as empty");
        });
        break;
      case StringPool::Lookup::kUnterminated:
        Report("axml.string_unterminated", offset, [&] {
          return std::string("string " + std::to_string(index) +
                             " is not NUL-terminated; its length-prefixed text is used "
                             "(Android reads it as null)");
        });
        break;
    }
    string_bytes_ += out.size();
    return out;
  }

  // The first anomaly of each kind is kept with its details; repeats only bump a counter, so a
  // document with 10,000 forged attributes yields one line, not 10,000.
  // `detail` is a string or a callable returning one; hot paths pass a callable so that repeats,
  // which only bump a counter, do not build the sentence.
  template <typename Detail>
  void Report(std::string_view code, size_t offset, Detail&& detail) {
    auto it = reported_.find(code);
    if (it == reported_.end()) it = reported_.emplace(std::string(code), Reported{}).first;
    if (++it->second.count > 1 || anomalies_ == nullptr) return;
    it->second.index = anomalies_->size();
    std::string text;
    if constexpr (std::is_invocable_v<Detail>) {
      text = detail();
    } else {
      text = std::forward<Detail>(detail);
    }
    AddAnomaly(anomalies_, std::string(code), "binary XML chunk at " + HexNumber(offset), std::move(text));
  }

  void FinishAnomalies() {
    if (!stack_.empty()) {
      Report("axml.unclosed_element", end_,
             std::to_string(stack_.size()) + " element(s) still open at the end of the document; closed there");
      while (!stack_.empty()) CloseTop(end_);
    }
    if (anomalies_ == nullptr) return;
    for (const auto& [code, reported] : reported_) {
      if (reported.count > 1) {
        (*anomalies_)[reported.index].detail += " (" + std::to_string(reported.count) + " occurrences)";
      }
    }
  }

  struct Reported {
    size_t index = 0;
    size_t count = 0;
  };

  Bytes data_;
  const Limits& limits_;
  Anomalies* anomalies_;
  size_t end_ = 0;
  StringPool pool_;
  bool have_pool_ = false;
  Bytes resource_ids_;
  bool root_seen_ = false;
  uint64_t node_count_ = 0;
  uint64_t string_bytes_ = 0;  // decoded so far, against limits_.max_xml_string_bytes
  std::vector<XmlElement> stack_;
  XmlElement root_;
  bool have_root_ = false;
  std::map<std::string, std::string> namespaces_;  // uri -> first prefix
  std::map<std::string, Reported, std::less<>> reported_;
};

}  // namespace

Result<XmlDocument> ParseAxml(Bytes data, const Limits& limits, Anomalies* anomalies) {
  return AxmlReader(data, limits, anomalies).Read();
}

}  // namespace appban::apk
