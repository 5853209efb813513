// STUB: replaced by the real implementation.
#include "appban/apk/axml.h"
namespace appban::apk {
const XmlAttribute* XmlElement::FindAndroidAttribute(uint32_t, std::string_view) const { return nullptr; }
const XmlAttribute* XmlElement::FindAttribute(std::string_view) const { return nullptr; }
Result<XmlDocument> ParseAxml(Bytes, const Limits&, Anomalies*) { return Status::Unsupported("axml"); }
}  // namespace appban::apk
