// Apple's root certificates (data/apple-roots.pem) and the check of a code signature's CMS signer
// chain against them. A root is accepted at load only when it is self-signed and its SHA-256 is
// one of the fingerprints Apple publishes (kAppleRootFingerprints), so a tampered data file cannot
// add an anchor. The chain is verified with OpenSSL at the CMS signing time (the signingTime
// attribute; the current time when the signature has none), the CMS's own certificates serving as
// untrusted intermediates: a root the signature carries counts only if it is one of the anchors.
#pragma once

#include <string>
#include <vector>

#include "appban/common/status.h"

namespace appban::ios {

struct CodeSignature;

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

// Sets signature->chain_* : whether the signer certificate chains to one of `anchors` (nullptr:
// none loaded, said so in chain_note). Only a signature whose CMS verifies over the CodeDirectory
// is checked.
void VerifyChain(const TrustAnchors* anchors, CodeSignature* signature);

}  // namespace appban::ios
