#include "appban/net/tls.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <atomic>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>

#include "appban/common/crypto.h"
#include "appban/common/file.h"

namespace appban::net {
namespace {

// Certificates and keys are small; anything larger is not ours.
constexpr uint64_t kMaxPemFileBytes = 1024 * 1024;
constexpr int kMaxValidityDays = 3650 * 3;

struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct KeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct ExtensionFree {
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, ExtensionFree>;

// The most recent OpenSSL error as text (and clears the queue), for messages.
std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

BioPtr ReadOnlyBio(std::string_view text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return size > 0 ? std::string(data, static_cast<size_t>(size)) : std::string();
}

Result<X509Ptr> ParseCertificate(std::string_view pem) {
  if (pem.size() > kMaxPemFileBytes) return Status::LimitExceeded("certificate PEM is larger than 1 MiB");
  BioPtr bio = ReadOnlyBio(pem);
  X509Ptr certificate(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!certificate) return Status::Corruption("not a PEM certificate: " + OpenSslError());
  return certificate;
}

Result<KeyPtr> ParsePrivateKey(std::string_view pem) {
  if (pem.size() > kMaxPemFileBytes) return Status::LimitExceeded("private key PEM is larger than 1 MiB");
  BioPtr bio = ReadOnlyBio(pem);
  KeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) return Status::Corruption("not a PEM private key: " + OpenSslError());
  return key;
}

Result<std::string> CertificateToPem(X509* certificate) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), certificate) != 1)
    return Status::Internal("cannot encode certificate: " + OpenSslError());
  return BioToString(bio.get());
}

Result<std::string> PrivateKeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Status::Internal("cannot encode private key: " + OpenSslError());
  }
  return BioToString(bio.get());
}

Result<KeyPtr> GenerateKey() {
  KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return Status::Internal("cannot generate an EC P-256 key: " + OpenSslError());
  return key;
}

Status AddExtension(X509* certificate, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer, certificate, nullptr, nullptr, 0);
  ExtensionPtr extension(X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str()));
  if (!extension || X509_add_ext(certificate, extension.get(), -1) != 1) {
    return Status::Internal("cannot add certificate extension " + std::string(OBJ_nid2sn(nid)) + "=" + value + ": " +
                            OpenSslError());
  }
  return Status::Ok();
}

// A certificate with a random positive 127-bit serial, CN=common_name, valid from now for `days`.
Result<X509Ptr> NewCertificate(EVP_PKEY* key, std::string_view common_name, int days) {
  if (days <= 0 || days > kMaxValidityDays)
    return Status::InvalidArgument("certificate validity must be 1.." + std::to_string(kMaxValidityDays) + " days");
  if (common_name.empty() || common_name.size() > 64)
    return Status::InvalidArgument("certificate common name must be 1..64 bytes");
  X509Ptr certificate(X509_new());
  if (!certificate) return Status::Internal("X509_new failed");
  unsigned char serial_bytes[16];
  if (RAND_bytes(serial_bytes, sizeof(serial_bytes)) != 1) return Status::Internal("no randomness for a serial number");
  serial_bytes[0] &= 0x7f;
  std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(BN_bin2bn(serial_bytes, sizeof(serial_bytes), nullptr), BN_free);
  bool ok = serial && X509_set_version(certificate.get(), 2) == 1 &&
            BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(certificate.get())) != nullptr &&
            X509_gmtime_adj(X509_getm_notBefore(certificate.get()), -60) != nullptr &&
            X509_time_adj_ex(X509_getm_notAfter(certificate.get()), days, 0, nullptr) != nullptr &&
            X509_set_pubkey(certificate.get(), key) == 1;
  X509_NAME* name = X509_get_subject_name(certificate.get());
  ok = ok &&
       X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(common_name.data()),
                                  static_cast<int>(common_name.size()), -1, 0) == 1;
  if (!ok) return Status::Internal("cannot fill in a certificate: " + OpenSslError());
  return certificate;
}

}  // namespace

Result<CertificateAndKey> GenerateSelfSignedCa(std::string_view common_name, int days) {
  APPBAN_ASSIGN_OR_RETURN(KeyPtr key, GenerateKey());
  APPBAN_ASSIGN_OR_RETURN(X509Ptr certificate, NewCertificate(key.get(), common_name, days));
  X509* cert = certificate.get();
  if (X509_set_issuer_name(cert, X509_get_subject_name(cert)) != 1) return Status::Internal("cannot set issuer");
  APPBAN_RETURN_IF_ERROR(AddExtension(cert, cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  APPBAN_RETURN_IF_ERROR(AddExtension(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign"));
  APPBAN_RETURN_IF_ERROR(AddExtension(cert, cert, NID_subject_key_identifier, "hash"));
  if (X509_sign(cert, key.get(), EVP_sha256()) <= 0)
    return Status::Internal("cannot sign the CA certificate: " + OpenSslError());
  CertificateAndKey result;
  APPBAN_ASSIGN_OR_RETURN(result.certificate_pem, CertificateToPem(cert));
  APPBAN_ASSIGN_OR_RETURN(result.private_key_pem, PrivateKeyToPem(key.get()));
  return result;
}

Result<CertificateAndKey> IssueServerCertificate(const CertificateAndKey& ca,
                                                 const std::vector<std::string>& subject_alt_names, int days) {
  if (subject_alt_names.empty()) return Status::InvalidArgument("a server certificate needs at least one name");
  APPBAN_ASSIGN_OR_RETURN(X509Ptr ca_certificate, ParseCertificate(ca.certificate_pem));
  APPBAN_ASSIGN_OR_RETURN(KeyPtr ca_key, ParsePrivateKey(ca.private_key_pem));
  if (X509_check_private_key(ca_certificate.get(), ca_key.get()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument("the CA private key does not belong to the CA certificate");
  }
  std::string alt_names;
  for (const std::string& name : subject_alt_names) {
    if (name.empty() || name.find_first_of(",:\r\n\0 ", 0, 6) != std::string::npos) {
      boost::system::error_code ec;
      boost::asio::ip::make_address(name, ec);
      if (ec) return Status::InvalidArgument("not a DNS name or IP address: '" + name + "'");
    }
    boost::system::error_code ec;
    boost::asio::ip::address ip = boost::asio::ip::make_address(name, ec);
    if (!alt_names.empty()) alt_names += ",";
    alt_names += (ec ? "DNS:" : "IP:") + (ec ? name : ip.to_string());
  }
  APPBAN_ASSIGN_OR_RETURN(KeyPtr key, GenerateKey());
  APPBAN_ASSIGN_OR_RETURN(X509Ptr certificate, NewCertificate(key.get(), subject_alt_names.front(), days));
  X509* cert = certificate.get();
  if (X509_set_issuer_name(cert, X509_get_subject_name(ca_certificate.get())) != 1)
    return Status::Internal("cannot set issuer");
  APPBAN_RETURN_IF_ERROR(AddExtension(cert, ca_certificate.get(), NID_basic_constraints, "critical,CA:FALSE"));
  APPBAN_RETURN_IF_ERROR(AddExtension(cert, ca_certificate.get(), NID_key_usage, "critical,digitalSignature"));
  APPBAN_RETURN_IF_ERROR(AddExtension(cert, ca_certificate.get(), NID_ext_key_usage, "serverAuth"));
  APPBAN_RETURN_IF_ERROR(AddExtension(cert, ca_certificate.get(), NID_subject_alt_name, alt_names));
  APPBAN_RETURN_IF_ERROR(AddExtension(cert, ca_certificate.get(), NID_authority_key_identifier, "keyid:always"));
  if (X509_sign(cert, ca_key.get(), EVP_sha256()) <= 0)
    return Status::Internal("cannot sign the server certificate: " + OpenSslError());
  CertificateAndKey result;
  APPBAN_ASSIGN_OR_RETURN(result.certificate_pem, CertificateToPem(cert));
  APPBAN_ASSIGN_OR_RETURN(result.private_key_pem, PrivateKeyToPem(key.get()));
  return result;
}

Status WriteCertificateAndKey(const CertificateAndKey& material, const std::string& certificate_path,
                              const std::string& key_path) {
  APPBAN_RETURN_IF_ERROR(WriteFileAtomically(key_path, material.private_key_pem, 0600));
  return WriteFileAtomically(certificate_path, material.certificate_pem, 0644);
}

Result<CertificateAndKey> ReadCertificateAndKey(const std::string& certificate_path, const std::string& key_path) {
  CertificateAndKey material;
  APPBAN_ASSIGN_OR_RETURN(material.certificate_pem, ReadFileToString(certificate_path, kMaxPemFileBytes));
  APPBAN_ASSIGN_OR_RETURN(material.private_key_pem, ReadFileToString(key_path, kMaxPemFileBytes));
  auto certificate = ParseCertificate(material.certificate_pem);
  if (!certificate.ok()) return certificate.status().WithContext(certificate_path);
  auto key = ParsePrivateKey(material.private_key_pem);
  if (!key.ok()) return key.status().WithContext(key_path);
  if (X509_check_private_key(certificate->get(), key->get()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument(key_path + " is not the private key of " + certificate_path);
  }
  return material;
}

Result<std::string> CertificateSha256Hex(std::string_view certificate_pem) {
  APPBAN_ASSIGN_OR_RETURN(X509Ptr certificate, ParseCertificate(certificate_pem));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (X509_digest(certificate.get(), EVP_sha256(), digest, &length) != 1)
    return Status::Internal("cannot hash the certificate");
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kDigits[digest[i] >> 4]);
    hex.push_back(kDigits[digest[i] & 15]);
  }
  return hex;
}

Result<std::vector<std::string>> NamesNotInCertificate(std::string_view certificate_pem,
                                                       const std::vector<std::string>& names) {
  APPBAN_ASSIGN_OR_RETURN(X509Ptr certificate, ParseCertificate(certificate_pem));
  std::vector<std::string> missing;
  for (const std::string& name : names) {
    boost::system::error_code not_an_address;
    boost::asio::ip::make_address(name, not_an_address);
    const int held = not_an_address ? X509_check_host(certificate.get(), name.data(), name.size(),
                                                      X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, nullptr)
                                    : X509_check_ip_asc(certificate.get(), name.c_str(), 0);
    if (held != 1) missing.push_back(name);
  }
  return missing;
}

Result<std::string> CertificateSha256Fingerprint(std::string_view certificate_pem) {
  APPBAN_ASSIGN_OR_RETURN(std::string hex, CertificateSha256Hex(certificate_pem));
  std::string fingerprint;
  for (size_t i = 0; i < hex.size(); i += 2) {
    if (i > 0) fingerprint.push_back(':');
    fingerprint.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(hex[i]))));
    fingerprint.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(hex[i + 1]))));
  }
  return fingerprint;
}

Result<std::shared_ptr<boost::asio::ssl::context>> MakeServerContext(std::string_view certificate_chain_pem,
                                                                     std::string_view private_key_pem) {
  namespace ssl = boost::asio::ssl;
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // TLS 1.2: forward-secret AEAD suites only (TLS 1.3 suites are all AEAD already).
  if (SSL_CTX_set_cipher_list(native, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
    return Status::Internal("cannot set the TLS 1.2 cipher list: " + OpenSslError());
  }
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_session_id_context(native, reinterpret_cast<const unsigned char*>("appban"), 6);
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  boost::system::error_code ec;
  context->use_certificate_chain(boost::asio::buffer(certificate_chain_pem.data(), certificate_chain_pem.size()), ec);
  if (ec) return Status::InvalidArgument("unusable server certificate chain: " + ec.message());
  context->use_private_key(boost::asio::buffer(private_key_pem.data(), private_key_pem.size()), ssl::context::pem, ec);
  if (ec) return Status::InvalidArgument("unusable server private key: " + ec.message());
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument("the private key does not belong to the server certificate");
  }
  return context;
}

Result<std::shared_ptr<boost::asio::ssl::context>> MakeClientContext(std::string_view pinned_ca_pem) {
  namespace ssl = boost::asio::ssl;
  APPBAN_ASSIGN_OR_RETURN(X509Ptr ca, ParseCertificate(pinned_ca_pem));
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  // Only the pinned CA: the context starts with an empty store and we never load system paths.
  if (X509_STORE_add_cert(SSL_CTX_get_cert_store(native), ca.get()) != 1) {
    return Status::Internal("cannot trust the pinned CA: " + OpenSslError());
  }
  context->set_verify_mode(ssl::verify_peer);
  return context;
}

Status UseClientCertificate(boost::asio::ssl::context& context, std::string_view certificate_chain_pem,
                            std::string_view private_key_pem) {
  boost::system::error_code ec;
  context.use_certificate_chain(boost::asio::buffer(certificate_chain_pem.data(), certificate_chain_pem.size()), ec);
  if (ec) return Status::InvalidArgument("unusable client certificate: " + ec.message());
  context.use_private_key(boost::asio::buffer(private_key_pem.data(), private_key_pem.size()),
                          boost::asio::ssl::context::pem, ec);
  if (ec) return Status::InvalidArgument("unusable client certificate key (an unencrypted PEM key): " + ec.message());
  if (SSL_CTX_check_private_key(context.native_handle()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument("the private key does not belong to the client certificate");
  }
  return Status::Ok();
}

Result<std::shared_ptr<boost::asio::ssl::context>> MakeSystemTrustClientContext() {
  namespace ssl = boost::asio::ssl;
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_default_verify_paths(native) != 1) {
    return Status::Unavailable("cannot load the system CA store: " + OpenSslError());
  }
  context->set_verify_mode(ssl::verify_peer);
  return context;
}

}  // namespace appban::net

namespace appban::net {
namespace {

struct CrlFree {
  void operator()(X509_CRL* p) const { X509_CRL_free(p); }
};
using CrlPtr = std::unique_ptr<X509_CRL, CrlFree>;

// The verification already happened in the handshake; this callback only keeps a failure from
// ending it. OpenSSL still records the first error, which SSL_get_verify_result returns.
int KeepHandshakeGoing(int /*preverify_ok*/, X509_STORE_CTX* /*context*/) { return 1; }

std::string NameText(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) return "";
  std::string text = BioToString(bio.get());
  if (text.size() > ClientCertificate::kMaxNameBytes) text.resize(ClientCertificate::kMaxNameBytes);
  return text;
}

std::string AsnText(const ASN1_STRING* value) {
  if (value == nullptr) return "";
  unsigned char* utf8 = nullptr;
  int length = ASN1_STRING_to_UTF8(&utf8, value);
  if (length < 0) return "";
  std::string text(reinterpret_cast<const char*>(utf8),
                   std::min(static_cast<size_t>(length), ClientCertificate::kMaxNameBytes));
  OPENSSL_free(utf8);
  return text;
}

}  // namespace

namespace {

struct StoreFree {
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
};
using StorePtr = std::unique_ptr<X509_STORE, StoreFree>;
struct NameStackFree {
  void operator()(STACK_OF(X509_NAME) * p) const { sk_X509_NAME_pop_free(p, X509_NAME_free); }
};
using NameStackPtr = std::unique_ptr<STACK_OF(X509_NAME), NameStackFree>;

// The store client certificates are verified against: the CAs of `ca_pem` and, when `crl_pem` is
// not empty, their CRLs, checked for the whole chain. `names` receives the CAs' subjects.
Result<StorePtr> ClientStore(std::string_view ca_pem, std::string_view crl_pem, NameStackPtr& names) {
  if (ca_pem.size() > kMaxPemFileBytes || crl_pem.size() > kMaxCrlFileBytes) {
    return Status::LimitExceeded("the client CA or CRL file is larger than its limit");
  }
  StorePtr store(X509_STORE_new());
  names.reset(sk_X509_NAME_new_null());
  if (!store || !names) return Status::Internal("out of memory");
  BioPtr bio = ReadOnlyBio(ca_pem);
  size_t count = 0;
  while (true) {
    X509Ptr ca(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!ca) break;
    if (++count > kMaxClientCas) {
      return Status::LimitExceeded("more than " + std::to_string(kMaxClientCas) + " client CA certificates");
    }
    if (X509_check_ca(ca.get()) == 0) {
      return Status::InvalidArgument("client CA certificate " + NameText(X509_get_subject_name(ca.get())) +
                                     " is not a CA certificate");
    }
    X509_NAME* name = X509_NAME_dup(X509_get_subject_name(ca.get()));
    if (name == nullptr || sk_X509_NAME_push(names.get(), name) == 0 ||
        X509_STORE_add_cert(store.get(), ca.get()) != 1) {
      X509_NAME_free(name);
      return Status::Internal("cannot trust a client CA: " + OpenSslError());
    }
  }
  ERR_clear_error();  // the end of the PEM stream reads as an error
  if (count == 0) return Status::InvalidArgument("the client CA file holds no PEM certificate");
  if (!crl_pem.empty()) {
    BioPtr crls = ReadOnlyBio(crl_pem);
    size_t crl_count = 0;
    while (true) {
      CrlPtr crl(PEM_read_bio_X509_CRL(crls.get(), nullptr, nullptr, nullptr));
      if (!crl) break;
      ++crl_count;
      if (X509_STORE_add_crl(store.get(), crl.get()) != 1)
        return Status::Internal("cannot use a CRL: " + OpenSslError());
    }
    ERR_clear_error();
    if (crl_count == 0) return Status::InvalidArgument("the CRL file holds no PEM CRL");
    X509_STORE_set_flags(store.get(), X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  }
  return store;
}

// Sessions remember the client's certificate and its verification: a session is resumed only
// under the id context it was made with, so a new context (a generation number) makes every
// client verify again against the current CRLs. OpenSSL also refuses to resume without one once
// peers are verified.
Status SetClientSessionContext(SSL_CTX* native) {
  static std::atomic<uint64_t> generation{0};
  std::string context = "appban-mtls-" + std::to_string(generation.fetch_add(1) + 1);
  if (SSL_CTX_set_session_id_context(native, reinterpret_cast<const unsigned char*>(context.data()),
                                     static_cast<unsigned int>(context.size())) != 1) {
    return Status::Internal("cannot set the TLS session context: " + OpenSslError());
  }
  return Status::Ok();
}

}  // namespace

Status RequestClientCertificates(boost::asio::ssl::context& context, std::string_view ca_pem,
                                 std::string_view crl_pem) {
  SSL_CTX* native = context.native_handle();
  NameStackPtr names;
  APPBAN_ASSIGN_OR_RETURN(StorePtr store, ClientStore(ca_pem, crl_pem, names));
  SSL_CTX_set_cert_store(native, store.release());
  // The names go in the CertificateRequest, so a browser offers only the cards that match.
  SSL_CTX_set_client_CA_list(native, names.release());
  SSL_CTX_set_verify(native, SSL_VERIFY_PEER, KeepHandshakeGoing);
  SSL_CTX_set_verify_depth(native, 8);
  return SetClientSessionContext(native);
}

Status ReplaceClientCrls(boost::asio::ssl::context& context, std::string_view ca_pem, std::string_view crl_pem) {
  SSL_CTX* native = context.native_handle();
  NameStackPtr names;
  APPBAN_ASSIGN_OR_RETURN(StorePtr store, ClientStore(ca_pem, crl_pem, names));
  SSL_CTX_set_cert_store(native, store.release());
  return SetClientSessionContext(native);
}

std::shared_ptr<const ClientCertificate> PeerCertificate(ssl_st* ssl) {
  const X509* peer = SSL_get0_peer_certificate(ssl);
  if (peer == nullptr) return nullptr;
  auto certificate = std::make_shared<ClientCertificate>();
  long result = SSL_get_verify_result(ssl);
  certificate->verified = result == X509_V_OK;
  if (!certificate->verified) certificate->problem = X509_verify_cert_error_string(result);
  certificate->subject = NameText(X509_get_subject_name(peer));
  certificate->issuer = NameText(X509_get_issuer_name(peer));
  const X509_NAME* subject = X509_get_subject_name(peer);
  int cn = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (cn >= 0) certificate->common_name = AsnText(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, cn)));
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(peer, NID_subject_alt_name, nullptr, nullptr));
  if (names != nullptr) {
    static const ASN1_OBJECT* const kUpn = OBJ_txt2obj("1.3.6.1.4.1.311.20.2.3", 1);
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
      if (name->type == GEN_EMAIL && certificate->emails.size() < ClientCertificate::kMaxNames) {
        certificate->emails.push_back(AsnText(name->d.rfc822Name));
      } else if (name->type == GEN_OTHERNAME && kUpn != nullptr &&
                 certificate->upns.size() < ClientCertificate::kMaxNames &&
                 OBJ_cmp(name->d.otherName->type_id, kUpn) == 0 && name->d.otherName->value != nullptr &&
                 name->d.otherName->value->type == V_ASN1_UTF8STRING) {
        certificate->upns.push_back(AsnText(name->d.otherName->value->value.utf8string));
      }
    }
    GENERAL_NAMES_free(names);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (X509_digest(peer, EVP_sha256(), digest, &length) == 1) certificate->sha256 = HexLower(Bytes(digest, length));
  return certificate;
}

}  // namespace appban::net
