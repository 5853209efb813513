// STUB: replaced by the real implementation.
#include "appban/apk/manifest.h"
namespace appban::apk {
std::string_view ComponentKindName(ComponentKind) { return "activity"; }
Result<Manifest> ExtractManifest(const XmlDocument&, const ResourceTable*, Anomalies*) { return Status::Unsupported("manifest"); }
}  // namespace appban::apk
