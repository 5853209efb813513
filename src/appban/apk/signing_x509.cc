// X.509 certificate facts for the signature readers: digests, distinguished names printed the
// way apksigner prints them, validity, key algorithm and size.
#include "appban/apk/signing_x509.h"

#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <climits>
#include <cstdio>
#include <ctime>
#include <limits>
#include <optional>
#include <string_view>
#include <utility>

#include "appban/common/crypto.h"
#include "appban/common/text.h"

namespace appban::apk {
namespace {

std::string Hex(std::string_view text) { return HexLower(AsBytes(text)); }

std::string Sha1Hex(Bytes data) {
  std::array<uint8_t, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha1(), nullptr) != 1) return "";
  return HexLower(Bytes(digest.data(), length));
}
// ---- Distinguished names, formatted the way apksigner prints them. ----
// apksigner prints Java's X500Principal.toString(): RDNs most-specific first (reverse of the DER
// order) joined by ", ", multi-valued RDNs joined by " + ", Java's short keywords, and values
// wrapped in double quotes when they contain a special character or leading, trailing or doubled
// whitespace (with '"' and '\' backslash-escaped). Verified against apksigner in signing_test.cc.
std::string JavaKeyword(const ASN1_OBJECT* object) {
  switch (OBJ_obj2nid(object)) {
    case NID_commonName:
      return "CN";
    case NID_countryName:
      return "C";
    case NID_localityName:
      return "L";
    case NID_stateOrProvinceName:
      return "ST";
    case NID_organizationName:
      return "O";
    case NID_organizationalUnitName:
      return "OU";
    case NID_title:
      return "T";
    case NID_streetAddress:
      return "STREET";
    case NID_domainComponent:
      return "DC";
    case NID_userId:
      return "UID";
    case NID_pkcs9_emailAddress:
      return "EMAILADDRESS";
    case NID_serialNumber:
      return "SERIALNUMBER";
    case NID_dnQualifier:
      return "DNQ";
    case NID_surname:
      return "SURNAME";
    case NID_givenName:
      return "GIVENNAME";
    case NID_initials:
      return "INITIALS";
    case NID_generationQualifier:
      return "GENERATION";
    default:
      break;
  }
  std::array<char, 128> dotted{};
  int length = OBJ_obj2txt(dotted.data(), static_cast<int>(dotted.size()), object, /*no_name=*/1);
  if (length <= 0 || static_cast<size_t>(length) >= dotted.size()) return "OID.?";
  return "OID." + std::string(dotted.data(), static_cast<size_t>(length));
}

bool IsTextType(int type) {
  switch (type) {
    case V_ASN1_UTF8STRING:
    case V_ASN1_PRINTABLESTRING:
    case V_ASN1_T61STRING:
    case V_ASN1_IA5STRING:
    case V_ASN1_BMPSTRING:
    case V_ASN1_UNIVERSALSTRING:
    case V_ASN1_GENERALSTRING:
    case V_ASN1_VISIBLESTRING:
      return true;
    default:
      return false;
  }
}

std::optional<std::string> Utf8Text(const ASN1_STRING* value) {
  unsigned char* raw = nullptr;
  int length = ASN1_STRING_to_UTF8(&raw, value);
  if (length < 0) return std::nullopt;
  OpenSslPtr<unsigned char> owned(raw);
  return std::string(reinterpret_cast<const char*>(raw), static_cast<size_t>(length));
}

// Non-text values print as '#' and the hex of their DER encoding (tag, length, contents).
std::string HexDerValue(const ASN1_STRING* value) {
  std::string der;
  der.push_back(static_cast<char>(ASN1_STRING_type(value) & 0x1f));
  size_t length = static_cast<size_t>(ASN1_STRING_length(value));
  if (length < 0x80) {
    der.push_back(static_cast<char>(length));
  } else {
    std::string length_bytes;
    for (size_t rest = length; rest != 0; rest >>= 8)
      length_bytes.insert(length_bytes.begin(), static_cast<char>(rest & 0xff));
    der.push_back(static_cast<char>(0x80 | length_bytes.size()));
    der += length_bytes;
  }
  der.append(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)), length);
  return "#" + Hex(der);
}

std::string QuoteJavaValue(std::string_view value) {
  constexpr std::string_view kSpecial = ",+=\n<>#;\\\"";
  auto is_white = [](char c) { return c == ' ' || c == '\n'; };
  bool quote = false;
  bool previous_white = false;
  std::string body;
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (kSpecial.find(c) != std::string_view::npos) quote = true;
    if (is_white(c)) {
      if (i == 0 || previous_white) quote = true;
      previous_white = true;
    } else {
      previous_white = false;
    }
    if (c == '"' || c == '\\') body.push_back('\\');
    body.push_back(c);
  }
  if (!value.empty() && is_white(value.back())) quote = true;
  return quote ? "\"" + body + "\"" : body;
}

std::string FormatEntry(const X509_NAME_ENTRY* entry) {
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(entry);
  std::string value;
  if (IsTextType(ASN1_STRING_type(data))) {
    auto text = Utf8Text(data);
    value = text ? QuoteJavaValue(*text) : HexDerValue(data);
  } else {
    value = HexDerValue(data);
  }
  return JavaKeyword(X509_NAME_ENTRY_get_object(entry)) + "=" + value;
}

std::string FormatName(const X509_NAME* name) {
  // Group entries into RDNs (entries sharing a "set" index), then print the RDNs in reverse.
  std::vector<std::string> rdns;
  int previous_set = -1;
  int count = X509_NAME_entry_count(name);
  for (int i = 0; i < count; ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    int set = X509_NAME_ENTRY_set(entry);
    if (!rdns.empty() && set == previous_set) {
      rdns.back() += " + " + FormatEntry(entry);
    } else {
      rdns.push_back(FormatEntry(entry));
    }
    previous_set = set;
  }
  std::string out;
  for (auto it = rdns.rbegin(); it != rdns.rend(); ++it) {
    if (!out.empty()) out += ", ";
    out += *it;
  }
  return out;
}

// The first value of attribute `nid` in `name`, as UTF-8, or "".
std::string NameAttribute(const X509_NAME* name, int nid) {
  int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return "";
  auto text = Utf8Text(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index)));
  return text.value_or("");
}

std::string IsoTime(const ASN1_TIME* time) {
  std::tm parts{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &parts) != 1) return "";
  std::array<char, 96> text{};
  std::snprintf(text.data(), text.size(), "%04d-%02d-%02dT%02d:%02d:%02dZ", parts.tm_year + 1900, parts.tm_mon + 1,
                parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec);
  return text.data();
}

std::string SerialHex(const ASN1_INTEGER* serial) {
  OpenSslPtr<BIGNUM> number(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!number) return "";
  OpenSslPtr<char> hex(BN_bn2hex(number.get()));
  if (!hex) return "";
  std::string out(hex.get());
  std::transform(out.begin(), out.end(), out.begin(), [](char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

void FillKeyFacts(X509* cert, Certificate* out) {
  EVP_PKEY* key = X509_get0_pubkey(cert);  // owned by cert; null for unsupported algorithms
  if (key == nullptr) {
    std::array<char, 128> name{};
    const X509_PUBKEY* public_key = X509_get_X509_PUBKEY(cert);
    ASN1_OBJECT* algorithm = nullptr;
    if (public_key != nullptr && X509_PUBKEY_get0_param(&algorithm, nullptr, nullptr, nullptr, public_key) == 1 &&
        OBJ_obj2txt(name.data(), static_cast<int>(name.size()), algorithm, 0) > 0) {
      out->key_algorithm = name.data();
    }
    return;
  }
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
      out->key_algorithm = "RSA";
      break;
    case EVP_PKEY_EC:
      out->key_algorithm = "EC";
      break;
    case EVP_PKEY_DSA:
      out->key_algorithm = "DSA";
      break;
    case EVP_PKEY_ED25519:
      out->key_algorithm = "Ed25519";
      break;
    case EVP_PKEY_ED448:
      out->key_algorithm = "Ed448";
      break;
    default:
      out->key_algorithm = OBJ_nid2sn(EVP_PKEY_get_base_id(key));
      break;
  }
  out->key_bits = EVP_PKEY_get_bits(key);
}

}  // namespace

OpenSslPtr<X509> DecodeX509(Bytes der) {
  if (der.size() > static_cast<size_t>(std::numeric_limits<long>::max())) return nullptr;
  const unsigned char* cursor = der.data();
  return OpenSslPtr<X509>(d2i_X509(nullptr, &cursor, static_cast<long>(der.size())));
}

Result<ParsedCertificate> ParseCertificateWithKey(Bytes der) {
  OpenSslPtr<X509> cert = DecodeX509(der);
  if (!cert) return Status::Corruption("not an X.509 certificate (" + std::to_string(der.size()) + " bytes)");
  ParsedCertificate parsed;
  Certificate& out = parsed.facts;
  out.sha256 = Sha256Hex(der);
  out.sha1 = Sha1Hex(der);
  const X509_NAME* subject = X509_get_subject_name(cert.get());
  const X509_NAME* issuer = X509_get_issuer_name(cert.get());
  out.subject = FormatName(subject);
  out.issuer = FormatName(issuer);
  out.serial_hex = SerialHex(X509_get0_serialNumber(cert.get()));
  out.not_before = IsoTime(X509_get0_notBefore(cert.get()));
  out.not_after = IsoTime(X509_get0_notAfter(cert.get()));
  FillKeyFacts(cert.get(), &out);
  out.subject_organization = NameAttribute(subject, NID_organizationName);
  out.subject_country = NameAttribute(subject, NID_countryName);
  // X509_self_signed with signature verification: the name match alone is what a forger copies.
  out.self_signed = X509_self_signed(cert.get(), /*verify_signature=*/1) == 1;
  // The Android SDK's debug keystore certificate has exactly this subject.
  out.debug = X509_NAME_entry_count(subject) == 3 && NameAttribute(subject, NID_commonName) == "Android Debug" &&
              out.subject_organization == "Android" && out.subject_country == "US";
  unsigned char* key_der = nullptr;
  int key_length = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert.get()), &key_der);
  if (key_length > 0) {
    OpenSslPtr<unsigned char> owned(key_der);
    parsed.public_key_der.assign(reinterpret_cast<const char*>(key_der), static_cast<size_t>(key_length));
  }
  return parsed;
}

Result<Certificate> ParseCertificate(Bytes der) {
  APPBAN_ASSIGN_OR_RETURN(ParsedCertificate parsed, ParseCertificateWithKey(der));
  return std::move(parsed.facts);
}

}  // namespace appban::apk
