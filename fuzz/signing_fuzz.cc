// libFuzzer target for signer extraction over raw bytes, without the ZIP reader: the input is
// read as an APK Signing Block ending where a central directory would start (the end of the
// input), as a v1 PKCS#7 signature block file and as an X.509 certificate. Seeds (from
// fuzz/seeds/make_signing.sh) are real signing blocks, META-INF/*.RSA|DSA|EC files and
// certificates. Any crash, hang, leak or sanitizer report is a bug in signing.cc.
#include <cstddef>
#include <cstdint>

#include "appban/apk/signing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  appban::Bytes input(data, size);
  appban::apk::Limits limits;
  limits.max_signers = 16;
  limits.max_certificates_per_signer = 16;
  appban::apk::Anomalies anomalies;

  auto block = appban::apk::ParseSigningBlock(input, size, limits, &anomalies);
  if (block.ok()) {
    if (block->signers.size() > 3u * limits.max_signers) __builtin_trap();  // at most v2, v3 and v3.1
    appban::apk::SigningInfo info = appban::apk::GroupSigners(block->signers, &anomalies);
    if (info.signers.size() > block->signers.size()) __builtin_trap();
    (void)info.any_debug();
  }
  (void)appban::apk::ParsePkcs7Signer(input, "fuzz", limits, &anomalies);
  (void)appban::apk::ParseCertificate(input);
  return 0;
}
