// STUB: replaced by the real implementation.
#include "appban/apk/zip.h"
namespace appban::apk {
Result<ZipArchive> ZipArchive::Open(Bytes, const Limits&) { return Status::Unsupported("zip: not implemented"); }
const ZipEntry* ZipArchive::Find(std::string_view) const { return nullptr; }
Result<Buffer> ZipArchive::Read(const ZipEntry&, uint64_t*, Anomalies*) const { return Status::Unsupported("zip"); }
}  // namespace appban::apk
