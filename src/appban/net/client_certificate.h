// A client's TLS certificate as the server saw it in the handshake (mutual TLS). Asking for one is
// optional (tls.h, RequestClientCertificates): devices and browsers without one connect as before,
// and what a certificate proves is decided by the application (server/admin_api.cc maps a verified
// one to a user). Plain values, no OpenSSL types; immutable once made, shared by the requests of
// one connection.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace appban::net {

struct ClientCertificate {
  // Bounds on what is read from a certificate a client chose.
  static constexpr size_t kMaxNames = 16;        // e-mail addresses, UPNs
  static constexpr size_t kMaxNameBytes = 1024;  // each, and the subject and issuer names
  bool verified = false;  // chains to a configured client CA, is within its validity and not revoked
  std::string problem;    // why not, in OpenSSL's words ("certificate has expired"); empty when verified
  std::string subject;    // RFC 2253 ("CN=Alice Example,O=Department of Examples,C=CA")
  std::string common_name;
  std::string issuer;
  std::vector<std::string> emails;  // subjectAltName rfc822Name entries
  // subjectAltName otherName entries of type Microsoft UPN (1.3.6.1.4.1.311.20.2.3), which PIV and
  // CAC smart-card certificates carry.
  std::vector<std::string> upns;
  std::string sha256;  // of the DER, lowercase hex
};

}  // namespace appban::net
