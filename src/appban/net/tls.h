// TLS material for the server and its clients, with OpenSSL 3: a self-signed CA created on first
// start, the server certificate it issues, PEM files, fingerprints to show an administrator, and
// the Asio SSL contexts (server: TLS 1.2+; client: trusts exactly one pinned CA and checks the
// host name or IP address).
//
// Everything here is a pure function of its arguments; safe from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "appban/common/status.h"
#include "appban/net/asio_fwd.h"
#include "appban/net/client_certificate.h"

struct ssl_st;

namespace appban::net {

struct CertificateAndKey {
  std::string certificate_pem;  // one certificate (PEM)
  std::string private_key_pem;  // PKCS#8 PEM, unencrypted
};

// A CA certificate (EC P-256, SHA-256 signature, CA:TRUE, keyCertSign) valid for `days` days.
Result<CertificateAndKey> GenerateSelfSignedCa(std::string_view common_name, int days);
// A server certificate issued by `ca` for `subject_alt_names`: each entry is a DNS name
// ("appban.example.gov") or an IP address ("127.0.0.1", "::1"); the first is also the CN.
Result<CertificateAndKey> IssueServerCertificate(const CertificateAndKey& ca,
                                                 const std::vector<std::string>& subject_alt_names, int days);

// Writes both files atomically; the private key with mode 0600, the certificate 0644.
Status WriteCertificateAndKey(const CertificateAndKey& material, const std::string& certificate_path,
                              const std::string& key_path);
// Reads both files and checks that the key belongs to the certificate.
Result<CertificateAndKey> ReadCertificateAndKey(const std::string& certificate_path, const std::string& key_path);

// SHA-256 of the first certificate's DER, as "AB:CD:..." (what `openssl x509 -fingerprint
// -sha256` prints after "sha256 Fingerprint=").
Result<std::string> CertificateSha256Fingerprint(std::string_view certificate_pem);
// The same digest as 64 lowercase hex digits.
Result<std::string> CertificateSha256Hex(std::string_view certificate_pem);

// The entries of `names` (DNS names or IP addresses) that the certificate does not hold as a
// subject alternative name — what a client checking that name would refuse.
Result<std::vector<std::string>> NamesNotInCertificate(std::string_view certificate_pem,
                                                       const std::vector<std::string>& names);

// A server context: TLS 1.2 and 1.3 only, forward-secret AEAD ciphers, session cache and tickets
// on, OpenSSL buffers released while idle. `certificate_chain_pem` is the leaf then intermediates.
Result<std::shared_ptr<boost::asio::ssl::context>> MakeServerContext(std::string_view certificate_chain_pem,
                                                                     std::string_view private_key_pem);
// A client context that trusts only `pinned_ca_pem` (not the system store) and requires a valid
// chain to it. Host name / IP checking is per connection (HttpClient does it).
Result<std::shared_ptr<boost::asio::ssl::context>> MakeClientContext(std::string_view pinned_ca_pem);
// Makes a client context present `certificate_chain_pem` (the leaf, then any intermediates) with
// `private_key_pem` (unencrypted PEM) to a server that asks for a client certificate: a person's
// certificate for mutual TLS. Fails, naming which, when either is unusable or the key is not the
// leaf's.
Status UseClientCertificate(boost::asio::ssl::context& context, std::string_view certificate_chain_pem,
                            std::string_view private_key_pem);
// A client context that trusts the system's CA store (OpenSSL's default paths), for public
// services such as an MDM vendor's API; same protocol floor and options as MakeClientContext.
Result<std::shared_ptr<boost::asio::ssl::context>> MakeSystemTrustClientContext();

// Mutual TLS on a server context: asks every client for a certificate issued by one of the CAs in
// `ca_pem` (a PEM bundle; at most kMaxClientCas), checked against the CRLs in `crl_pem` when not
// empty (every CA in the chain must then have a current CRL there). A client may send none — the
// device protocol never uses one — and a certificate that does not verify does not end the
// handshake: PeerCertificate reports why, so the application can answer 401 naming the reason
// instead of a TLS alert a person cannot read.
inline constexpr size_t kMaxClientCas = 64;
inline constexpr size_t kMaxCrlFileBytes = 16 << 20;
Status RequestClientCertificates(boost::asio::ssl::context& context, std::string_view ca_pem, std::string_view crl_pem);
// Replaces the CRLs of a context RequestClientCertificates set up (with the same `ca_pem`), for the
// handshakes that follow; sessions made before are no longer resumed, so every client verifies
// again against the new lists (a connection already open keeps the certificate it verified).
// On an error the context keeps its lists. Call it on the thread that runs the context's
// handshakes.
Status ReplaceClientCrls(boost::asio::ssl::context& context, std::string_view ca_pem, std::string_view crl_pem);
// The certificate the client sent in the handshake of `ssl`, with the verification result;
// nullptr when it sent none.
std::shared_ptr<const ClientCertificate> PeerCertificate(ssl_st* ssl);

}  // namespace appban::net
