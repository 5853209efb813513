// Android binary XML (AXML, the compiled AndroidManifest.xml) parser. Produces a plain element
// tree. Tolerant the way the Android framework's ResXMLTree is: tampered chunk header sizes,
// bogus string-pool counts/flags/offsets, unknown chunk types and namespace tricks are read as
// Android reads them and reported as anomalies; only input Android itself would reject fails.
// Pure function over bytes; thread-safe.
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

// Res_value data types used by manifests.
enum class ValueType : uint8_t {
  kNull = 0x00,
  kReference = 0x01,
  kAttribute = 0x02,
  kString = 0x03,
  kFloat = 0x04,
  kDimension = 0x05,
  kFraction = 0x06,
  kDynamicReference = 0x07,
  kIntDec = 0x10,
  kIntHex = 0x11,
  kIntBoolean = 0x12,
};

struct XmlAttribute {
  std::string ns;            // namespace URI ("http://schemas.android.com/apk/res/android") or ""
  std::string name;          // local name as stored in the string pool (may be stripped/forged)
  uint32_t resource_id = 0;  // attribute resource id (0x0101xxxx for android:); Android matches by this
  ValueType type = ValueType::kNull;
  uint32_t data = 0;         // typed value data
  std::string string_value;  // the string for kString, or the raw value string when present
  // The raw (source text) value string, when the attribute carries one. Android's
  // XmlPullParser.getAttributeValue() prefers it over the typed value (the manifest `package`
  // attribute is read that way), while TypedArray-based reads use the typed value.
  std::optional<std::string> raw_value;

  bool is_true() const { return type == ValueType::kIntBoolean ? data != 0 : string_value == "true"; }
};

struct XmlElement {
  std::string ns;
  std::string name;
  uint32_t line = 0;
  std::vector<XmlAttribute> attributes;
  std::vector<XmlElement> children;
  std::string text;  // character data directly inside the element (first 64 KiB)

  // Finds an android: attribute by resource id (how Android resolves it), falling back to the
  // local name only when no attribute carries a resource id for it.
  const XmlAttribute* FindAndroidAttribute(uint32_t resource_id, std::string_view name) const;
  const XmlAttribute* FindAttribute(std::string_view name) const;  // by local name, any namespace
  // By local name among attributes with no namespace — XmlPullParser.getAttributeValue(null, name),
  // which is how PackageParser reads `package`, `split`, `sharedUserId`-less plain attributes.
  const XmlAttribute* FindPlainAttribute(std::string_view name) const;
};

struct XmlDocument {
  XmlElement root;
};

// Well-known android: attribute resource ids (frameworks/base/core/res/res/values/public.xml).
namespace attr {
inline constexpr uint32_t kLabel = 0x01010001;
inline constexpr uint32_t kName = 0x01010003;
inline constexpr uint32_t kPermission = 0x01010006;
inline constexpr uint32_t kExported = 0x01010010;
inline constexpr uint32_t kProtectionLevel = 0x01010009;
inline constexpr uint32_t kDebuggable = 0x0101000f;
inline constexpr uint32_t kEnabled = 0x0101000e;
inline constexpr uint32_t kAuthorities = 0x01010018;
inline constexpr uint32_t kReadPermission = 0x01010007;
inline constexpr uint32_t kWritePermission = 0x01010008;
inline constexpr uint32_t kMinSdkVersion = 0x0101020c;
inline constexpr uint32_t kTargetSdkVersion = 0x01010270;
inline constexpr uint32_t kMaxSdkVersion = 0x01010271;
inline constexpr uint32_t kVersionCode = 0x0101021b;
inline constexpr uint32_t kVersionName = 0x0101021c;
inline constexpr uint32_t kAllowBackup = 0x01010280;
inline constexpr uint32_t kTestOnly = 0x01010272;
inline constexpr uint32_t kUsesCleartextTraffic = 0x010104ec;
inline constexpr uint32_t kNetworkSecurityConfig = 0x01010527;
inline constexpr uint32_t kCompileSdkVersion = 0x01010572;
inline constexpr uint32_t kCompileSdkVersionCodename = 0x01010573;
inline constexpr uint32_t kScheme = 0x01010027;
inline constexpr uint32_t kHost = 0x01010028;
inline constexpr uint32_t kPort = 0x01010029;
inline constexpr uint32_t kPath = 0x0101002a;
inline constexpr uint32_t kPathPrefix = 0x0101002b;
inline constexpr uint32_t kPathPattern = 0x0101002c;
inline constexpr uint32_t kMimeType = 0x01010026;
inline constexpr uint32_t kPriority = 0x0101001c;
inline constexpr uint32_t kAutoVerify = 0x010104ee;
inline constexpr uint32_t kIcon = 0x01010002;
inline constexpr uint32_t kValue = 0x01010024;
inline constexpr uint32_t kRequired = 0x0101028e;
inline constexpr uint32_t kGlEsVersion = 0x01010281;
inline constexpr uint32_t kVersionCodeMajor = 0x01010576;
inline constexpr uint32_t kHasCode = 0x0101000c;
}  // namespace attr

inline constexpr std::string_view kAndroidNamespace = "http://schemas.android.com/apk/res/android";

// The public attribute name for a resource id from `attr` above, or "" when not one of them; used to
// flag attributes whose stored name was stripped or forged while their resource id stayed.
std::string_view KnownAndroidAttributeName(uint32_t resource_id);

// Parses `data` (the raw AndroidManifest.xml entry). Errors: NotRecognized when the bytes are not
// binary XML at all (plain-text XML included), Corruption/Truncated when no element can be read,
// LimitExceeded when a named limit is hit.
Result<XmlDocument> ParseAxml(Bytes data, const Limits& limits, Anomalies* anomalies);

}  // namespace appban::apk
