// Building blocks shared by the APK signature readers (signing.cc for the APK Signing Block,
// signing_pkcs7.cc for v1): OpenSSL ownership and X.509 certificate decoding. Internal to the apk
// part; the public entry points are in signing.h. Pure over bytes; thread-safe.
#pragma once

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "appban/apk/signing.h"
#include "appban/common/bytes.h"
#include "appban/common/status.h"

namespace appban::apk {

// ---- OpenSSL ownership. ----
struct OpenSslFree {
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_NAME* p) const { X509_NAME_free(p); }
  void operator()(ASN1_INTEGER* p) const { ASN1_INTEGER_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(PKCS7* p) const { PKCS7_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(char* p) const { OPENSSL_free(p); }
  void operator()(unsigned char* p) const { OPENSSL_free(p); }
};
template <typename T>
using OpenSslPtr = std::unique_ptr<T, OpenSslFree>;

// Decodes one DER X.509 certificate; null when OpenSSL cannot.
OpenSslPtr<X509> DecodeX509(Bytes der);

struct ParsedCertificate {
  Certificate facts;
  std::string public_key_der;  // SubjectPublicKeyInfo, to compare with a v2/v3 signer's key
};

// ParseCertificate plus the public key, which a v2/v3 signer's signatures are checked with.
Result<ParsedCertificate> ParseCertificateWithKey(Bytes der);

}  // namespace appban::apk
