// APK signers: APK Signature Scheme v2, v3 and v3.1 (the APK Signing Block before the ZIP central
// directory) and v1 (JAR signing: META-INF/*.SF plus a PKCS#7 SignedData in *.RSA/*.DSA/*.EC).
// Reports, per distinct signing certificate, which schemes it appears in and the certificate's
// facts. Certificates are parsed with OpenSSL. Pure over bytes; thread-safe.
//
// This reads who signed the package; it does not (yet) verify the signatures' digests over the
// APK contents, and says so in the report (`verified: false`).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "appban/apk/anomaly.h"
#include "appban/apk/limits.h"
#include "appban/apk/zip.h"
#include "appban/common/status.h"

namespace appban::apk {

struct Certificate {
  std::string sha256;       // of the DER encoding, lowercase hex (apksigner --print-certs)
  std::string sha1;
  std::string subject;      // RFC 2253 order and escaping, as apksigner prints "Signer #1 certificate DN"
  std::string issuer;
  std::string serial_hex;
  std::string not_before;   // ISO 8601 UTC, "2019-05-01T12:00:00Z"
  std::string not_after;
  std::string key_algorithm;  // "RSA", "EC", "DSA", "Ed25519"
  int key_bits = 0;
  std::string subject_organization;  // O= of the subject, "" when absent
  std::string subject_country;       // C= of the subject
  bool self_signed = false;
  bool debug = false;  // the Android SDK debug certificate ("CN=Android Debug,O=Android,C=US")
};

struct Signer {
  Certificate certificate;
  std::vector<std::string> schemes;  // subset of "v1", "v2", "v3", "v3.1" in that order
  std::optional<int> min_sdk;        // v3/v3.1 signer's SDK range
  std::optional<int> max_sdk;
  std::vector<Certificate> lineage;  // v3 proof-of-rotation: earlier certificates, oldest first
};

struct SigningInfo {
  std::vector<Signer> signers;  // one per distinct certificate, the v3.1/v3 signer first
  bool v1 = false, v2 = false, v3 = false, v31 = false;
  bool v1_only() const { return v1 && !v2 && !v3 && !v31; }
  bool any_debug() const;
};

// Reads the signing block located just before `zip`'s central directory and the v1 files in
// META-INF. An unsigned APK is not an error (empty signers). Errors only for LimitExceeded.
// Malformed blocks and certificates are skipped and reported as anomalies.
Result<SigningInfo> ReadSigningInfo(const ZipArchive& zip, const Limits& limits, Anomalies* anomalies);

}  // namespace appban::apk
