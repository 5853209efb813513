// Apple's root certificates (data/apple-roots.pem) and the check of a code signature's CMS signer
// chain against them. A root is accepted at load only when it is self-signed and its SHA-256 is
// one of the fingerprints Apple publishes (kAppleRootFingerprints), so a tampered data file cannot
// add an anchor. The chain is verified with OpenSSL at the CMS signing time (the signingTime
// attribute; the current time when the signature has none), the CMS's own certificates serving as
// untrusted intermediates: a root the signature carries counts only if it is one of the anchors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "appban/common/status.h"

namespace appban::ios {

struct CodeSignature;
struct SignerCertificate;

// SHA-256 (lower-case hex, of the DER) of Apple Root CA, Apple Root CA - G2 and - G3, as published
// on Apple's certificate authority page.
extern const char* const kAppleRootFingerprints[3];

class TrustAnchors {
 public:
  // Reads every certificate of a PEM file (text around them is ignored). Errors when the file
  // cannot be read, holds no certificate, or holds one that is not a published Apple root.
  static Result<TrustAnchors> LoadPem(const std::string& path);
  // The roots as DER, with their common names.
  const std::vector<std::string>& der() const { return der_; }
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<std::string> der_, names_;
};

// Whether a signer certificate chains to a root.
struct ChainCheck {
  bool checked = false;    // a chain was looked for (a signer and anchors were there)
  bool verified = false;   // and it ends in one of the anchors
  std::string anchor;      // that root's common name, "" when not verified
  int64_t checked_at = 0;  // the time the certificates had to be valid at (Unix seconds)
  std::string note;        // what was found, one clause: "verified to Apple Root CA at the signing time"
};

// Checks `signer_der`'s chain to one of the roots `anchors_der` at time `at`, the `certificates`
// the signature carries serving as untrusted intermediates (a root among them counts only if it is
// an anchor). Apple's own critical policy extensions are accepted; any other unknown critical
// extension fails the chain. `at_what` names the time in the note ("the signing time").
ChainCheck CheckCertificateChain(const std::vector<std::string>& anchors_der, const std::string& signer_der,
                                 const std::vector<SignerCertificate>& certificates, int64_t at,
                                 const std::string& at_what);

// Sets signature->chain_* : whether the signer certificate chains to one of `anchors` (nullptr:
// none loaded, said so in chain_note). Only a signature whose CMS verifies over the CodeDirectory
// is checked.
void VerifyChain(const TrustAnchors* anchors, CodeSignature* signature);

}  // namespace appban::ios
