// Apple code signatures: the superblob LC_CODE_SIGNATURE points at. Reads every CodeDirectory
// (SHA-1, SHA-256 and the alternates), identifier, Team ID, flags and cdhash; entitlements in
// XML and DER form; the CMS signature (signer chain, organisation, Team ID from the leaf
// certificate's OU) through OpenSSL. Checks what can be checked from the bytes alone: that the
// CMS signature verifies over the CodeDirectory, that each page hash matches the code, that the
// special-slot hashes match the entitlements/requirements blobs and Info.plist. The chain to
// Apple's roots is checked apart (trust_anchors.h, VerifyChain) from the certificates kept here.
// Mismatches are anomalies, as for APKs. Pure; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "appban/apk/anomaly.h"
#include "appban/common/bytes.h"
#include "appban/common/status.h"
#include "appban/ios/limits.h"
#include "appban/plist/plist.h"

namespace appban::ios {

struct CodeDirectory {
  uint32_t slot = 0;  // 0 for the primary, 0x1000+n for alternates
  uint32_t version = 0;
  uint32_t flags = 0;  // CS_ADHOC 0x2, CS_RUNTIME 0x10000, ...
  std::vector<std::string> flag_names;
  std::string hash_type;  // "sha1", "sha256", "sha256-truncated", "sha384"
  std::string identifier;
  std::string team_id;  // "" when the directory carries none (ad hoc)
  std::string cdhash;   // hex, the first 20 bytes of the directory's hash, as codesign prints
  uint32_t code_slots = 0;
  uint32_t special_slots = 0;
  uint32_t page_size = 0;
  uint64_t code_limit = 0;
  uint64_t exec_segment_flags = 0;
  // Page hashes checked against the code; mismatched ones listed (capped).
  uint32_t pages_checked = 0;
  std::vector<uint32_t> mismatched_pages;
  bool pages_match() const { return mismatched_pages.empty(); }
};

struct SignerCertificate {
  std::string subject;  // one-line RFC 2253 form
  std::string issuer;
  std::string common_name;          // "Apple Distribution: Tencent Technology (Shenzhen) Company Limited (88L2Q4487U)"
  std::string organization;         // O=
  std::string organizational_unit;  // OU= (the Team ID on Apple-issued certificates)
  std::string sha256;
  std::string not_before, not_after;
  std::string der;  // the certificate itself (not printed), for the chain check
};

struct CodeSignature {
  std::vector<CodeDirectory> code_directories;
  bool has_requirements = false;
  std::optional<plist::Value> entitlements;  // from the XML blob, else from the DER blob
  std::string entitlements_source;           // "xml", "der", "" when none
  bool has_der_entitlements = false;
  bool adhoc = false;  // no CMS signer: ad hoc or linker-signed
  // The CMS signature, when present.
  bool has_cms = false;
  bool cms_verifies = false;                    // signature over the primary CodeDirectory checks out
  std::string cms_error;                        // why it does not, "" when it does
  std::vector<SignerCertificate> certificates;  // leaf first when it can be told
  std::string team_id;                          // the CodeDirectory's, else the leaf certificate's OU
  std::string organization;                     // leaf certificate's O
  std::string certificate_kind;  // "Apple Development", "Apple Distribution", "iPhone Distribution", "Developer ID
                                 // Application", ...
  std::string signer_der;        // the certificate the CMS signature verifies with, "" when it does not
  std::optional<int64_t> signing_time;  // the CMS signingTime attribute (Unix seconds), when present
  // The chain from the signer to Apple's roots (trust_anchors.h): checked, verified, the root it
  // ends in, and the time it was checked at; chain_note says why not when it is not verified.
  bool chain_checked = false;
  bool chain_verified = false;
  std::string chain_anchor;  // the root's common name, "" when not verified
  int64_t chain_checked_at = 0;
  std::string chain_note;
};

// Parses the superblob `blob` of a slice whose bytes are `slice` (page hashes are checked over
// it). `info_plist`, when given, is checked against the Info.plist special slot.
// Errors only when the superblob itself is unreadable; everything else is an anomaly.
Result<CodeSignature> ParseCodeSignature(Bytes blob, Bytes slice, const std::optional<Bytes>& info_plist,
                                         const Limits& limits, apk::Anomalies* anomalies, const std::string& where);

// DER entitlements (CSSLOT_DER_ENTITLEMENTS): Apple's ASN.1 encoding of the entitlements dict.
Result<plist::Value> ParseDerEntitlements(Bytes der, const Limits& limits);

// A CMS SignedData with embedded content (a provisioning profile): the content and the signer
// certificates; `verified` says whether the signature over the content checks out (no chain).
struct SignedContent {
  std::string content;
  std::vector<SignerCertificate> certificates;
  bool verified = false;
  std::string error;
  std::string signer_der;               // the certificate the signature verifies with, when it does
  std::optional<int64_t> signing_time;  // the signingTime attribute (Unix seconds), when present
};
Result<SignedContent> ReadCmsSignedData(Bytes der, const Limits& limits);

}  // namespace appban::ios
