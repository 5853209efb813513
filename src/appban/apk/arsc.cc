// STUB: replaced by the real implementation.
#include "appban/apk/arsc.h"
namespace appban::apk {
Result<ResourceTable> ResourceTable::Parse(Buffer, const Limits&, Anomalies*) { return Status::Unsupported("arsc"); }
std::optional<ResourceValue> ResourceTable::Resolve(uint32_t) const { return std::nullopt; }
std::optional<std::string> ResourceTable::ResolveString(uint32_t) const { return std::nullopt; }
}  // namespace appban::apk
