// STUB: replaced by the real implementation.
#include "appban/apk/signing.h"
namespace appban::apk {
bool SigningInfo::any_debug() const { return false; }
Result<SigningInfo> ReadSigningInfo(const ZipArchive&, const Limits&, Anomalies*) { return SigningInfo{}; }
}  // namespace appban::apk
