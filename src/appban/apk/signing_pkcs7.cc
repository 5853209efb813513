// v1 (JAR) signature block files: the signer certificate of a PKCS#7 SignedData
// (META-INF/*.RSA|DSA|EC). DER is read by hand so the certificate's digest is over its bytes as
// stored; BER, which old tools emit and Android accepts, falls back to OpenSSL's decoder.
#include <openssl/asn1.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "appban/apk/signing.h"
#include "appban/apk/signing_x509.h"
#include "appban/common/bytes.h"

namespace appban::apk {
namespace {

struct Der {
  uint8_t tag = 0;
  Bytes contents;
  Bytes whole;  // tag, length and contents
};

// Reads one DER element. Only definite lengths (what DER allows) and low tag numbers.
std::optional<Der> ReadDer(ByteReader& reader) {
  size_t start = reader.position();
  auto tag = reader.U8();
  auto first = tag ? reader.U8() : std::nullopt;
  if (!first || (*tag & 0x1f) == 0x1f) return std::nullopt;
  uint64_t length = *first;
  if (*first >= 0x80) {
    size_t length_bytes = *first & 0x7f;
    if (length_bytes == 0 || length_bytes > 4) return std::nullopt;  // indefinite, or absurd
    length = 0;
    for (size_t i = 0; i < length_bytes; ++i) {
      auto byte = reader.U8();
      if (!byte) return std::nullopt;
      length = (length << 8) | *byte;
    }
  }
  auto contents = reader.Take(static_cast<size_t>(length));
  if (!contents) return std::nullopt;
  return Der{*tag, *contents, reader.bytes().subspan(start, reader.position() - start)};
}

std::optional<Der> ExpectDer(ByteReader& reader, uint8_t tag) {
  auto element = ReadDer(reader);
  if (!element || element->tag != tag) return std::nullopt;
  return element;
}

constexpr uint8_t kDerSequence = 0x30;
constexpr uint8_t kDerSet = 0x31;
constexpr uint8_t kDerInteger = 0x02;
constexpr uint8_t kDerOid = 0x06;
constexpr uint8_t kDerContext0 = 0xa0;  // [0] constructed
constexpr uint8_t kDerContext1 = 0xa1;
constexpr uint8_t kDerContext0Primitive = 0x80;  // [0] primitive: SubjectKeyIdentifier in a SignerInfo
// 1.2.840.113549.1.7.2, id-signedData.
constexpr std::array<uint8_t, 9> kSignedDataOid = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02};

struct SignedDataParts {
  std::vector<Bytes> certificates;  // raw encodings, as stored
  std::vector<Bytes> signer_infos;
};

Result<SignedDataParts> SplitSignedData(Bytes pkcs7, const Limits& limits) {
  ByteReader top(pkcs7);
  auto content_info = ExpectDer(top, kDerSequence);
  if (!content_info) return Status::Corruption("not a DER PKCS#7 ContentInfo");
  ByteReader ci(content_info->contents);
  auto type = ExpectDer(ci, kDerOid);
  if (!type ||
      !std::equal(type->contents.begin(), type->contents.end(), kSignedDataOid.begin(), kSignedDataOid.end())) {
    return Status::Corruption("PKCS#7 content is not SignedData");
  }
  auto explicit_content = ExpectDer(ci, kDerContext0);
  ByteReader ec(explicit_content ? explicit_content->contents : Bytes());
  auto signed_data = explicit_content ? ExpectDer(ec, kDerSequence) : std::nullopt;
  if (!signed_data) return Status::Corruption("PKCS#7 SignedData is missing or not DER");
  ByteReader sd(signed_data->contents);
  if (!ExpectDer(sd, kDerInteger) || !ExpectDer(sd, kDerSet) || !ExpectDer(sd, kDerSequence)) {
    return Status::Corruption("PKCS#7 SignedData header (version, digest algorithms, content) is malformed");
  }
  SignedDataParts parts;
  auto next = ReadDer(sd);
  if (next && next->tag == kDerContext0) {
    ByteReader certs(next->contents);
    while (!certs.empty()) {
      if (parts.certificates.size() >= limits.max_certificates_per_signer) {
        return Status::LimitExceeded("PKCS#7 holds more than " + std::to_string(limits.max_certificates_per_signer) +
                                     " certificates");
      }
      auto cert = ReadDer(certs);
      if (!cert)
        return Status::Corruption("PKCS#7 certificate " + std::to_string(parts.certificates.size()) + " is malformed");
      parts.certificates.push_back(cert->whole);
    }
    next = ReadDer(sd);
  }
  if (next && next->tag == kDerContext1) next = ReadDer(sd);  // CRLs: not needed
  if (!next || next->tag != kDerSet) return Status::Corruption("PKCS#7 SignedData has no SignerInfos");
  ByteReader infos(next->contents);
  while (!infos.empty()) {
    if (parts.signer_infos.size() >= limits.max_signers) {
      return Status::LimitExceeded("PKCS#7 holds more than " + std::to_string(limits.max_signers) + " SignerInfos");
    }
    auto info = ExpectDer(infos, kDerSequence);
    if (!info)
      return Status::Corruption("PKCS#7 SignerInfo " + std::to_string(parts.signer_infos.size()) + " is malformed");
    parts.signer_infos.push_back(info->contents);
  }
  return parts;
}

// True when `cert` is the one a SignerInfo's sid names: issuer and serial, or subject key id.
bool SignerInfoNames(Bytes signer_info, X509* cert) {
  ByteReader reader(signer_info);
  if (!ExpectDer(reader, kDerInteger)) return false;
  auto sid = ReadDer(reader);
  if (!sid) return false;
  if (sid->tag == kDerSequence) {
    ByteReader parts(sid->contents);
    auto issuer = ExpectDer(parts, kDerSequence);
    auto serial = issuer ? ExpectDer(parts, kDerInteger) : std::nullopt;
    if (!serial) return false;
    const unsigned char* cursor = issuer->whole.data();
    OpenSslPtr<X509_NAME> name(d2i_X509_NAME(nullptr, &cursor, static_cast<long>(issuer->whole.size())));
    cursor = serial->whole.data();
    OpenSslPtr<ASN1_INTEGER> number(d2i_ASN1_INTEGER(nullptr, &cursor, static_cast<long>(serial->whole.size())));
    return name && number && X509_NAME_cmp(name.get(), X509_get_issuer_name(cert)) == 0 &&
           ASN1_INTEGER_cmp(number.get(), X509_get0_serialNumber(cert)) == 0;
  }
  if (sid->tag == kDerContext0Primitive) {
    const ASN1_OCTET_STRING* key_id = X509_get0_subject_key_id(cert);
    return key_id != nullptr && static_cast<size_t>(ASN1_STRING_length(key_id)) == sid->contents.size() &&
           std::equal(sid->contents.begin(), sid->contents.end(), ASN1_STRING_get0_data(key_id));
  }
  return false;
}

// BER fallback (indefinite lengths, which some old signing tools emit and Android accepts):
// OpenSSL's PKCS#7 decoder finds the certificate, whose digest is then over its re-encoding.
Result<Certificate> Pkcs7SignerViaOpenSsl(Bytes pkcs7, std::string_view where, Anomalies* anomalies) {
  const unsigned char* cursor = pkcs7.data();
  OpenSslPtr<PKCS7> p7(d2i_PKCS7(nullptr, &cursor, static_cast<long>(pkcs7.size())));
  if (!p7 || !PKCS7_type_is_signed(p7.get()) || p7->d.sign == nullptr) {
    return Status::Corruption("not a PKCS#7 SignedData structure");
  }
  STACK_OF(PKCS7_SIGNER_INFO)* infos = PKCS7_get_signer_info(p7.get());
  if (infos == nullptr || sk_PKCS7_SIGNER_INFO_num(infos) == 0) return Status::Corruption("PKCS#7 has no SignerInfo");
  PKCS7_SIGNER_INFO* info = sk_PKCS7_SIGNER_INFO_value(infos, 0);
  if (info->issuer_and_serial == nullptr || p7->d.sign->cert == nullptr) {
    return Status::Corruption("PKCS#7 SignerInfo names no certificate");
  }
  X509* cert = X509_find_by_issuer_and_serial(p7->d.sign->cert, info->issuer_and_serial->issuer,
                                              info->issuer_and_serial->serial);
  if (cert == nullptr) return Status::NotFound("the PKCS#7 certificate named by the SignerInfo is missing");
  unsigned char* der = nullptr;
  int length = i2d_X509(cert, &der);
  if (length <= 0) return Status::Corruption("PKCS#7 certificate cannot be re-encoded");
  OpenSslPtr<unsigned char> owned(der);
  AddAnomaly(anomalies, "signing.v1_pkcs7_not_der", std::string(where),
             "the PKCS#7 block is BER, not DER; the certificate digest is over its DER re-encoding");
  return ParseCertificate(Bytes(der, static_cast<size_t>(length)));
}

}  // namespace

Result<Certificate> ParsePkcs7Signer(Bytes pkcs7_der, std::string_view where, const Limits& limits,
                                     Anomalies* anomalies) {
  if (pkcs7_der.size() > static_cast<size_t>(std::numeric_limits<long>::max())) {
    return Status::LimitExceeded("PKCS#7 block too large");
  }
  auto parts = SplitSignedData(pkcs7_der, limits);
  if (!parts.ok()) {
    if (parts.status().code() == StatusCode::kLimitExceeded) return parts.status();
    auto fallback = Pkcs7SignerViaOpenSsl(pkcs7_der, where, anomalies);
    if (fallback.ok()) return fallback;
    return parts.status();  // the DER reading's error names the structure that is wrong
  }
  if (parts->signer_infos.empty()) return Status::Corruption("PKCS#7 SignedData has no SignerInfo");
  if (parts->signer_infos.size() > 1) {
    AddAnomaly(
        anomalies, "signing.v1_multiple_signer_infos", std::string(where),
        std::to_string(parts->signer_infos.size()) + " SignerInfos in one signature block; Android uses the first");
  }
  for (Bytes cert_der : parts->certificates) {
    OpenSslPtr<X509> cert = DecodeX509(cert_der);
    if (cert && SignerInfoNames(parts->signer_infos.front(), cert.get())) return ParseCertificate(cert_der);
  }
  return Status::NotFound("no certificate in the PKCS#7 block matches its SignerInfo's issuer and serial number");
}

}  // namespace appban::apk
