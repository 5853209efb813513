// STUB: replaced by the real implementation.
#include "appban/apk/dex.h"
namespace appban::apk {
Result<DexFile> DexFile::Parse(std::string, Buffer, const Limits&, Anomalies*) { return Status::Unsupported("dex"); }
std::string_view DexFile::String(uint32_t) const { return {}; }
std::string_view DexFile::TypeDescriptor(uint32_t) const { return {}; }
MethodRef DexFile::Method(uint32_t) const { return {}; }
FieldRef DexFile::Field(uint32_t) const { return {}; }
std::string_view DexFile::ClassDescriptor(uint32_t) const { return {}; }
std::string_view DexFile::SuperclassDescriptor(uint32_t) const { return {}; }
}  // namespace appban::apk
