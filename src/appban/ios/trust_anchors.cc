#include "appban/ios/trust_anchors.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>
#include <memory>
#include <string_view>

#include "appban/common/crypto.h"
#include "appban/common/file.h"
#include "appban/ios/code_signature.h"

namespace appban::ios {

const char* const kAppleRootFingerprints[3] = {
    "b0b1730ecbc7ff4505142c49f1295e6eda6bcaed7e2c68c5be91b5a11001f024",  // Apple Root CA
    "c2b9b042dd57830e7d117dac55ac8ae19407d38e41d88f3215bc3a890444a050",  // Apple Root CA - G2
    "63343abfb89a6a03ebb57e9b3f5fa7be7c4f5c756f3017b3a8c488c3653e9179",  // Apple Root CA - G3
};

namespace {

// A PEM file of roots is a handful of certificates; a larger one is not a root list.
constexpr size_t kMaxAnchorFileBytes = 1 << 20;
constexpr int kMaxAnchors = 16;

struct Freer {
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
  void operator()(STACK_OF(X509) * p) const { sk_X509_pop_free(p, X509_free); }
};
template <typename T>
using Owned = std::unique_ptr<T, Freer>;

Owned<X509> FromDer(const std::string& der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  return Owned<X509>(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
}

std::string CommonName(X509* cert) {
  char text[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, text, sizeof text);
  return text;
}

// Apple marks its own certificate-policy extensions critical (1.2.840.113635.100.6.1.13 on a
// Developer ID Application certificate, …), which OpenSSL does not know and so refuses. Those, and
// only those, are accepted: any other unknown critical extension still fails the chain.
bool OnlyAppleCriticalExtensions(X509* cert) {
  for (int i = 0; i < X509_get_ext_count(cert); ++i) {
    X509_EXTENSION* extension = X509_get_ext(cert, i);
    if (!X509_EXTENSION_get_critical(extension) || X509_supported_extension(extension)) continue;
    char oid[80] = {};
    OBJ_obj2txt(oid, sizeof oid, X509_EXTENSION_get_object(extension), 1);
    if (!std::string_view(oid).starts_with("1.2.840.113635.100.6.")) return false;
  }
  return true;
}

int AcceptAppleExtensions(int ok, X509_STORE_CTX* context) {
  if (ok == 0 && X509_STORE_CTX_get_error(context) == X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION &&
      OnlyAppleCriticalExtensions(X509_STORE_CTX_get_current_cert(context))) {
    X509_STORE_CTX_set_error(context, X509_V_OK);
    return 1;
  }
  return ok;
}

}  // namespace

Result<TrustAnchors> TrustAnchors::LoadPem(const std::string& path) {
  APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, kMaxAnchorFileBytes));
  Owned<BIO> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  TrustAnchors out;
  while (true) {
    Owned<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) break;
    if (static_cast<int>(out.der_.size()) >= kMaxAnchors) {
      return Status::LimitExceeded(path + ": more than " + std::to_string(kMaxAnchors) + " root certificates");
    }
    unsigned char* der = nullptr;
    int length = i2d_X509(cert.get(), &der);
    if (length <= 0) return Status::Corruption(path + ": a certificate cannot be re-encoded");
    std::string bytes(reinterpret_cast<const char*>(der), static_cast<size_t>(length));
    OPENSSL_free(der);
    const std::string fingerprint = Sha256Hex(AsBytes(bytes));
    if (std::find(std::begin(kAppleRootFingerprints), std::end(kAppleRootFingerprints), fingerprint) ==
        std::end(kAppleRootFingerprints)) {
      return Status::InvalidArgument(path + ": certificate " + fingerprint +
                                     " is not one of Apple's published root certificates");
    }
    if (X509_check_issued(cert.get(), cert.get()) != X509_V_OK) {
      return Status::InvalidArgument(path + ": certificate " + fingerprint + " is not self-signed");
    }
    out.names_.push_back(CommonName(cert.get()));
    out.der_.push_back(std::move(bytes));
  }
  ERR_clear_error();  // the end of the file reads as a "no start line" error
  if (out.der_.empty()) return Status::InvalidArgument(path + ": no certificate in it");
  return out;
}

ChainCheck CheckCertificateChain(const std::vector<std::string>& anchors_der, const std::string& signer_der,
                                 const std::vector<SignerCertificate>& certificates, int64_t at,
                                 const std::string& at_what) {
  ChainCheck out;
  Owned<X509_STORE> store(X509_STORE_new());
  X509_STORE_set_verify_cb(store.get(), AcceptAppleExtensions);
  for (const std::string& der : anchors_der) {
    Owned<X509> root = FromDer(der);
    if (root) X509_STORE_add_cert(store.get(), root.get());
  }
  Owned<STACK_OF(X509)> untrusted(sk_X509_new_null());
  for (const auto& certificate : certificates) {
    Owned<X509> cert = FromDer(certificate.der);
    if (cert && sk_X509_push(untrusted.get(), cert.get()) > 0) cert.release();
  }
  Owned<X509> leaf = FromDer(signer_der);
  Owned<X509_STORE_CTX> context(X509_STORE_CTX_new());
  if (!leaf || !context || X509_STORE_CTX_init(context.get(), store.get(), leaf.get(), untrusted.get()) != 1) {
    out.note = "not verified: the signer certificate cannot be read";
    ERR_clear_error();
    return out;
  }
  X509_STORE_CTX_set_time(context.get(), 0, static_cast<time_t>(at));
  out.checked = true;
  out.checked_at = at;
  if (X509_verify_cert(context.get()) == 1) {
    STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(context.get());
    out.verified = true;
    out.anchor = CommonName(sk_X509_value(chain, sk_X509_num(chain) - 1));
    out.note = "verified to " + out.anchor + " at " + at_what;
  } else {
    out.note = std::string("not verified: ") + X509_verify_cert_error_string(X509_STORE_CTX_get_error(context.get()));
  }
  ERR_clear_error();
  return out;
}

void VerifyChain(const TrustAnchors* anchors, CodeSignature* signature) {
  signature->chain_checked = false;
  signature->chain_verified = false;
  signature->chain_anchor.clear();
  if (!signature->has_cms) {
    signature->chain_note = "no CMS signature (ad hoc): no chain";
    return;
  }
  if (!signature->cms_verifies || signature->signer_der.empty()) {
    signature->chain_note = "not checked: the CMS signature does not verify over the CodeDirectory";
    return;
  }
  if (anchors == nullptr || anchors->der().empty()) {
    signature->chain_note = "not verified: no trust anchor loaded (data/apple-roots.pem)";
    return;
  }
  const int64_t at = signature->signing_time.value_or(static_cast<int64_t>(std::time(nullptr)));
  ChainCheck chain = CheckCertificateChain(anchors->der(), signature->signer_der, signature->certificates, at,
                                           signature->signing_time ? "the signing time" : "the current time");
  signature->chain_checked = chain.checked;
  signature->chain_verified = chain.verified;
  signature->chain_anchor = std::move(chain.anchor);
  signature->chain_checked_at = chain.checked_at;
  signature->chain_note = std::move(chain.note);
}

}  // namespace appban::ios
