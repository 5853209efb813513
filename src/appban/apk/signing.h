// APK signers: APK Signature Scheme v2, v3 and v3.1 (the APK Signing Block before the ZIP central
// directory) and v1 (JAR signing: META-INF/*.SF plus a PKCS#7 SignedData in *.RSA/*.DSA/*.EC).
// Reports, per distinct signing certificate, which schemes it appears in and the certificate's
// facts. Certificates are parsed with OpenSSL. Pure over bytes; thread-safe.
//
// This reads who signed the package; it does not (yet) verify the signatures' digests over the
// APK contents, and says so in the report (`verified: false`). It does verify each v2/v3/v3.1
// signer's signature over its signed data (Signer::signed_data_verified), so a certificate
// pasted into a block without its private key is caught. v1 PKCS#7 signatures are not checked.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "appban/apk/anomaly.h"
#include "appban/apk/limits.h"
#include "appban/apk/zip.h"
#include "appban/common/status.h"

namespace appban::apk {

struct Certificate {
  std::string sha256;  // of the DER encoding, lowercase hex (apksigner --print-certs)
  std::string sha1;
  std::string subject;  // RFC 2253 order and escaping, as apksigner prints "Signer #1 certificate DN"
  std::string issuer;
  std::string serial_hex;
  std::string not_before;  // ISO 8601 UTC, "2019-05-01T12:00:00Z"
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
  // True when every v2/v3/v3.1 signature of this signer over its signed data (which holds the
  // content digests and the certificate) verifies with the signer's public key, for the
  // algorithms Android supports. The content digests themselves are NOT checked, so this proves
  // the holder of the key vouched for the certificate, not that the APK is unmodified.
  // False for v1-only signers (not checked).
  bool signed_data_verified = false;
};

// One ID-value pair of the APK Signing Block, as found (signature schemes and everything else:
// padding, source stamps, Play frosting, SDK dependency info, unknown vendor blocks).
struct SigningBlockEntry {
  uint32_t id = 0;
  uint64_t size = 0;  // bytes of the value
  std::string kind;   // "v2", "v3", "v3.1", "padding", "source_stamp_v1", "source_stamp_v2",
                      // "play_frosting", "dependency_info", "unknown"
};

struct SigningInfo {
  std::vector<Signer> signers;  // one per distinct certificate, the v3.1/v3 signer first
  // A scheme's flag is set when its signature data is present and yielded at least one signer
  // certificate. Nothing here is cryptographically verified.
  bool v1 = false, v2 = false, v3 = false, v31 = false;
  std::vector<SigningBlockEntry> block_entries;  // empty when there is no APK Signing Block
  bool v1_only() const { return v1 && !v2 && !v3 && !v31; }
  bool any_debug() const;
};

// Reads the signing block located just before `zip`'s central directory and the v1 files in
// META-INF. An unsigned APK is not an error (empty signers). Errors only for LimitExceeded.
// Malformed blocks and certificates are skipped and reported as anomalies.
Result<SigningInfo> ReadSigningInfo(const ZipArchive& zip, const Limits& limits, Anomalies* anomalies);

// ---- Building blocks of ReadSigningInfo, exposed for tests and fuzzing. All pure over bytes. ----

// One signer as found in one scheme, before signers are grouped by certificate across schemes.
struct SchemeSigner {
  std::string scheme;  // "v1", "v2", "v3", "v3.1"
  Certificate certificate;
  std::optional<int> min_sdk;  // v3/v3.1 only
  std::optional<int> max_sdk;
  std::vector<Certificate> lineage;   // v3/v3.1 proof-of-rotation, oldest first, without `certificate`
  bool signed_data_verified = false;  // see Signer::signed_data_verified; always false for v1
};

struct SigningBlock {
  bool present = false;  // a well-formed block sits right before the central directory
  std::vector<SigningBlockEntry> entries;
  std::vector<SchemeSigner> signers;                                 // v3.1, then v3, then v2 signers
  bool v2_present = false, v3_present = false, v31_present = false;  // the scheme's pair exists
};

// Parses the APK Signing Block that ends at `central_directory_offset` in `file` (the whole APK).
// No block is not an error (present == false). Malformed structures become anomalies; errors
// only for LimitExceeded.
Result<SigningBlock> ParseSigningBlock(Bytes file, uint64_t central_directory_offset, const Limits& limits,
                                       Anomalies* anomalies);

// Facts about one X.509 certificate (DER or BER; digests are over `der` exactly as given).
// Corruption when OpenSSL cannot parse it.
Result<Certificate> ParseCertificate(Bytes der);

// The signer certificate of a v1 signature block file (META-INF/*.RSA|DSA|EC, a PKCS#7
// SignedData): the certificate matching the first SignerInfo by issuer and serial number, which
// is the one Android uses. `where` names the file in anomalies. Corruption when the PKCS#7
// structure or the certificate cannot be read; LimitExceeded for too many certificates/signers.
Result<Certificate> ParsePkcs7Signer(Bytes pkcs7_der, std::string_view where, const Limits& limits,
                                     Anomalies* anomalies);

// Groups per-scheme signers into one Signer per distinct certificate (by SHA-256), v3.1/v3
// signers first, and sets the scheme flags. Adds an anomaly when schemes disagree on signers.
SigningInfo GroupSigners(const std::vector<SchemeSigner>& scheme_signers, Anomalies* anomalies);

}  // namespace appban::apk
