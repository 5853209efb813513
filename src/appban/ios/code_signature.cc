#include "appban/ios/code_signature.h"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>
#include <ctime>
#include <memory>

#include "appban/apk/signing.h"
#include "appban/common/crypto.h"

namespace appban::ios {
namespace {

constexpr uint32_t kSuperBlobMagic = 0xfade0cc0;
constexpr uint32_t kCodeDirectoryMagic = 0xfade0c02;
constexpr uint32_t kRequirementsMagic = 0xfade0c01;
constexpr uint32_t kEntitlementsMagic = 0xfade7171;
constexpr uint32_t kDerEntitlementsMagic = 0xfade7172;
constexpr uint32_t kBlobWrapperMagic = 0xfade0b01;

constexpr uint32_t kSlotCodeDirectory = 0, kSlotRequirements = 2, kSlotEntitlements = 5, kSlotDerEntitlements = 7;
constexpr uint32_t kSlotAlternateFirst = 0x1000, kSlotAlternateLast = 0x1004, kSlotSignature = 0x10000;
constexpr size_t kMaxMismatchedPagesListed = 32;

uint32_t BE32(Bytes b, size_t at) {
  return (uint32_t{b[at]} << 24) | (uint32_t{b[at + 1]} << 16) | (uint32_t{b[at + 2]} << 8) | b[at + 3];
}
uint64_t BE64(Bytes b, size_t at) { return (uint64_t{BE32(b, at)} << 32) | BE32(b, at + 4); }

struct Freer {
  void operator()(CMS_ContentInfo* p) const { CMS_ContentInfo_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(STACK_OF(X509) * p) const { sk_X509_pop_free(p, X509_free); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, Freer>;

const EVP_MD* DigestFor(uint8_t hash_type, std::string* name) {
  switch (hash_type) {
    case 1:
      *name = "sha1";
      return EVP_sha1();
    case 2:
      *name = "sha256";
      return EVP_sha256();
    case 3:
      *name = "sha256-truncated";
      return EVP_sha256();
    case 4:
      *name = "sha384";
      return EVP_sha384();
    default:
      *name = "hash type " + std::to_string(hash_type);
      return nullptr;
  }
}

std::string Digest(const EVP_MD* md, Bytes data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), out, &length, md, nullptr) != 1) return "";
  return std::string(reinterpret_cast<const char*>(out), length);
}

std::vector<std::string> FlagNames(uint32_t flags) {
  static constexpr std::pair<uint32_t, const char*> kFlags[] = {{0x1, "valid"},
                                                                {0x2, "adhoc"},
                                                                {0x4, "get-task-allow"},
                                                                {0x100, "hard"},
                                                                {0x200, "kill"},
                                                                {0x400, "check-expiration"},
                                                                {0x800, "restrict"},
                                                                {0x1000, "enforcement"},
                                                                {0x2000, "library-validation"},
                                                                {0x10000, "runtime"},
                                                                {0x20000, "linker-signed"}};
  std::vector<std::string> names;
  for (const auto& [bit, name] : kFlags) {
    if (flags & bit) names.emplace_back(name);
  }
  return names;
}

std::string NameEntry(X509_NAME* name, int nid) {
  int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return "";
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  int length = ASN1_STRING_to_UTF8(&utf8, data);
  if (length < 0) return "";
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(length));
  OPENSSL_free(utf8);
  return out;
}

SignerCertificate DescribeCertificate(X509* cert) {
  SignerCertificate out;
  unsigned char* der = nullptr;
  int length = i2d_X509(cert, &der);
  if (length > 0) {
    auto facts = apk::ParseCertificate(Bytes(der, static_cast<size_t>(length)));
    if (facts.ok()) {
      out.subject = facts->subject;
      out.issuer = facts->issuer;
      out.sha256 = facts->sha256;
      out.not_before = facts->not_before;
      out.not_after = facts->not_after;
    }
    out.der.assign(reinterpret_cast<const char*>(der), static_cast<size_t>(length));
    OPENSSL_free(der);
  }
  X509_NAME* subject = X509_get_subject_name(cert);
  out.common_name = NameEntry(subject, NID_commonName);
  out.organization = NameEntry(subject, NID_organizationName);
  out.organizational_unit = NameEntry(subject, NID_organizationalUnitName);
  return out;
}

std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

// Certificates of a CMS structure, the signer's (leaf) first.
std::vector<SignerCertificate> CmsCertificates(CMS_ContentInfo* cms) {
  std::vector<SignerCertificate> out;
  Owned<STACK_OF(X509)> certs(CMS_get1_certs(cms));
  if (!certs) return out;
  X509* leaf = nullptr;
  STACK_OF(CMS_SignerInfo)* signers = CMS_get0_SignerInfos(cms);
  if (signers != nullptr && sk_CMS_SignerInfo_num(signers) > 0) {
    CMS_SignerInfo* signer = sk_CMS_SignerInfo_value(signers, 0);
    for (int i = 0; i < sk_X509_num(certs.get()); ++i) {
      if (CMS_SignerInfo_cert_cmp(signer, sk_X509_value(certs.get(), i)) == 0) leaf = sk_X509_value(certs.get(), i);
    }
  }
  if (leaf != nullptr) out.push_back(DescribeCertificate(leaf));
  for (int i = 0; i < sk_X509_num(certs.get()); ++i) {
    if (sk_X509_value(certs.get(), i) != leaf) out.push_back(DescribeCertificate(sk_X509_value(certs.get(), i)));
  }
  return out;
}

std::string CertificateKind(const std::string& common_name) {
  size_t colon = common_name.find(':');
  return colon == std::string::npos ? "" : common_name.substr(0, colon);
}

// ---- DER entitlements: a tiny DER reader for the subset Apple uses. ----

struct Der {
  uint8_t tag = 0;
  Bytes content;
};

Result<Der> ReadDer(Bytes* in) {
  if (in->size() < 2) return Status::Truncated("DER entitlements: element header runs past the end");
  Der out;
  out.tag = (*in)[0];
  if ((out.tag & 0x1f) == 0x1f) {  // high tag number form: Apple uses [16] as a single extra byte
    if (in->size() < 3) return Status::Truncated("DER entitlements: tag runs past the end");
    out.tag = static_cast<uint8_t>((out.tag & 0xe0) | ((*in)[1] & 0x1f));
    *in = in->subspan(1);
  }
  size_t pos = 1;
  uint64_t length = (*in)[pos++];
  if (length & 0x80) {
    size_t bytes = length & 0x7f;
    if (bytes == 0 || bytes > 4) return Status::Corruption("DER entitlements: unsupported length form");
    if (in->size() - pos < bytes) return Status::Truncated("DER entitlements: length runs past the end");
    length = 0;
    for (size_t i = 0; i < bytes; ++i) length = (length << 8) | (*in)[pos++];
  }
  if (in->size() - pos < length)
    return Status::Truncated("DER entitlements: element of " + std::to_string(length) + " bytes runs past the end");
  out.content = in->subspan(pos, length);
  *in = in->subspan(pos + length);
  return out;
}

Result<plist::Value> DerValue(const Der& element, uint32_t depth, const Limits& limits, uint64_t* count) {
  if (depth > limits.plist.max_depth)
    return Status::LimitExceeded("DER entitlements nest deeper than Limits::plist.max_depth");
  if (++*count > limits.plist.max_values)
    return Status::LimitExceeded("DER entitlements hold more than Limits::plist.max_values values");
  switch (element.tag) {
    case 0x01:  // BOOLEAN
      if (element.content.size() != 1) return Status::Corruption("DER entitlements: BOOLEAN of wrong size");
      return plist::Value::Boolean(element.content[0] != 0);
    case 0x02: {  // INTEGER
      if (element.content.empty() || element.content.size() > 8)
        return Status::Corruption("DER entitlements: INTEGER of unsupported size");
      int64_t value = (element.content[0] & 0x80) ? -1 : 0;
      for (uint8_t b : element.content) value = static_cast<int64_t>((static_cast<uint64_t>(value) << 8) | b);
      return plist::Value::Integer(value);
    }
    case 0x0c:  // UTF8String
      return plist::Value::String(std::string(AsStringView(element.content)));
    case 0x30: {  // SEQUENCE: an array
      plist::Value array = plist::Value::MakeArray();
      Bytes rest = element.content;
      while (!rest.empty()) {
        APPBAN_ASSIGN_OR_RETURN(Der item, ReadDer(&rest));
        APPBAN_ASSIGN_OR_RETURN(plist::Value value, DerValue(item, depth + 1, limits, count));
        array.MutableArray()->push_back(std::move(value));
      }
      return array;
    }
    case 0xb0: {  // [16] constructed: a dict, SET of SEQUENCE { UTF8String key, value }
      plist::Value dict = plist::Value::MakeDict();
      Bytes rest = element.content;
      while (!rest.empty()) {
        APPBAN_ASSIGN_OR_RETURN(Der pair, ReadDer(&rest));
        if (pair.tag != 0x30) return Status::Corruption("DER entitlements: dict entry is not a SEQUENCE");
        Bytes inner = pair.content;
        APPBAN_ASSIGN_OR_RETURN(Der key, ReadDer(&inner));
        if (key.tag != 0x0c) return Status::Corruption("DER entitlements: dict key is not a UTF8String");
        APPBAN_ASSIGN_OR_RETURN(Der value_element, ReadDer(&inner));
        APPBAN_ASSIGN_OR_RETURN(plist::Value value, DerValue(value_element, depth + 1, limits, count));
        dict.Set(std::string(AsStringView(key.content)), std::move(value));
      }
      return dict;
    }
    default:
      return Status::Unsupported("DER entitlements: element with tag 0x" + std::to_string(element.tag));
  }
}

// After a successful CMS_verify: the signer's certificate and the signingTime attribute.
template <typename Out>  // CodeSignature or SignedContent
void SignerFacts(CMS_ContentInfo* cms, Out* out) {
  STACK_OF(X509)* signers = CMS_get0_signers(cms);
  if (signers != nullptr && sk_X509_num(signers) > 0) {
    unsigned char* der = nullptr;
    int length = i2d_X509(sk_X509_value(signers, 0), &der);
    if (length > 0) out->signer_der.assign(reinterpret_cast<const char*>(der), static_cast<size_t>(length));
    OPENSSL_free(der);
  }
  sk_X509_free(signers);
  STACK_OF(CMS_SignerInfo)* infos = CMS_get0_SignerInfos(cms);
  if (infos == nullptr || sk_CMS_SignerInfo_num(infos) == 0) return;
  CMS_SignerInfo* info = sk_CMS_SignerInfo_value(infos, 0);
  int index = CMS_signed_get_attr_by_NID(info, NID_pkcs9_signingTime, -1);
  if (index < 0) return;
  ASN1_TYPE* value = X509_ATTRIBUTE_get0_type(CMS_signed_get_attr(info, index), 0);
  if (value == nullptr || (value->type != V_ASN1_UTCTIME && value->type != V_ASN1_GENERALIZEDTIME)) return;
  struct tm tm {};
  if (ASN1_TIME_to_tm(value->value.generalizedtime, &tm) == 1) out->signing_time = timegm(&tm);
}

}  // namespace

Result<plist::Value> ParseDerEntitlements(Bytes der, const Limits& limits) {
  // [APPLICATION 16] { INTEGER version, [16] dict }
  Bytes rest = der;
  APPBAN_ASSIGN_OR_RETURN(Der outer, ReadDer(&rest));
  if (outer.tag != 0x70) return Status::Corruption("DER entitlements: outer element is not [APPLICATION 16]");
  Bytes inner = outer.content;
  APPBAN_ASSIGN_OR_RETURN(Der version, ReadDer(&inner));
  if (version.tag != 0x02) return Status::Corruption("DER entitlements: no version INTEGER");
  APPBAN_ASSIGN_OR_RETURN(Der dict, ReadDer(&inner));
  if (dict.tag != 0xb0) return Status::Corruption("DER entitlements: the value is not a dict");
  uint64_t count = 0;
  return DerValue(dict, 1, limits, &count);
}

Result<SignedContent> ReadCmsSignedData(Bytes der, const Limits& limits) {
  if (der.size() > limits.max_cms_bytes) {
    return Status::LimitExceeded("CMS structure of " + std::to_string(der.size()) +
                                 " bytes exceeds Limits::max_cms_bytes");
  }
  const unsigned char* p = der.data();
  Owned<CMS_ContentInfo> cms(d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(der.size())));
  if (!cms) return Status::Corruption("not a CMS SignedData structure: " + OpenSslError());
  ASN1_OCTET_STRING** content = CMS_get0_content(cms.get());
  if (content == nullptr || *content == nullptr) return Status::Corruption("CMS SignedData has no embedded content");
  SignedContent out;
  out.content.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(*content)),
                     static_cast<size_t>(ASN1_STRING_length(*content)));
  out.certificates = CmsCertificates(cms.get());
  Owned<BIO> sink(BIO_new(BIO_s_null()));
  out.verified =
      CMS_verify(cms.get(), nullptr, nullptr, nullptr, sink.get(), CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY) == 1;
  if (out.verified) {
    SignerFacts(cms.get(), &out);
  } else {
    out.error = OpenSslError();
  }
  ERR_clear_error();
  return out;
}

Result<CodeSignature> ParseCodeSignature(Bytes blob, Bytes slice, const std::optional<Bytes>& info_plist,
                                         const Limits& limits, apk::Anomalies* anomalies, const std::string& where) {
  if (blob.size() > limits.max_code_signature_bytes) {
    return Status::LimitExceeded(where + ": code signature of " + std::to_string(blob.size()) +
                                 " bytes exceeds Limits::max_code_signature_bytes");
  }
  if (blob.size() < 12) return Status::Truncated(where + ": code signature shorter than its 12-byte header");
  if (BE32(blob, 0) != kSuperBlobMagic) {
    return Status::Corruption(where + ": code signature does not start with the superblob magic 0xfade0cc0");
  }
  uint32_t length = BE32(blob, 4), count = BE32(blob, 8);
  if (length > blob.size() || length < 12) {
    return Status::Truncated(where + ": superblob says " + std::to_string(length) + " bytes, " +
                             std::to_string(blob.size()) + " are there");
  }
  blob = blob.first(length);
  if (count > limits.max_signature_blobs) {
    return Status::LimitExceeded(where + ": superblob holds " + std::to_string(count) +
                                 " blobs, more than Limits::max_signature_blobs");
  }
  if ((length - 12) / 8 < count) return Status::Truncated(where + ": superblob index runs past its length");

  CodeSignature out;
  Bytes primary_cd, requirements, entitlements_blob, der_blob;
  std::vector<std::pair<uint32_t, Bytes>> directories;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t type = BE32(blob, 12 + i * 8), offset = BE32(blob, 16 + i * 8);
    if (offset > length - 8) {
      AddAnomaly(anomalies, "codesign.blob_out_of_bounds", where,
                 "blob " + std::to_string(type) + " at " + std::to_string(offset) + " lies outside the superblob");
      continue;
    }
    uint32_t magic = BE32(blob, offset), blob_length = BE32(blob, offset + 4);
    if (blob_length < 8 || blob_length > length - offset) {
      AddAnomaly(
          anomalies, "codesign.blob_out_of_bounds", where,
          "blob " + std::to_string(type) + " of " + std::to_string(blob_length) + " bytes runs past the superblob");
      continue;
    }
    Bytes data = blob.subspan(offset, blob_length);
    if (type == kSlotCodeDirectory || (type >= kSlotAlternateFirst && type <= kSlotAlternateLast)) {
      if (magic != kCodeDirectoryMagic) {
        AddAnomaly(anomalies, "codesign.bad_blob_magic", where,
                   "CodeDirectory slot holds magic " + std::to_string(magic));
        continue;
      }
      directories.emplace_back(type, data);
      if (type == kSlotCodeDirectory) primary_cd = data;
    } else if (type == kSlotRequirements && magic == kRequirementsMagic) {
      requirements = data;
      out.has_requirements = true;
    } else if (type == kSlotEntitlements && magic == kEntitlementsMagic) {
      entitlements_blob = data;
    } else if (type == kSlotDerEntitlements && magic == kDerEntitlementsMagic) {
      der_blob = data;
      out.has_der_entitlements = true;
    } else if (type == kSlotSignature && magic == kBlobWrapperMagic) {
      Bytes cms_der = data.subspan(8);
      if (cms_der.empty()) continue;  // an empty wrapper: ad hoc
      out.has_cms = true;
      const unsigned char* p = cms_der.data();
      Owned<CMS_ContentInfo> cms(cms_der.size() <= limits.max_cms_bytes
                                     ? d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(cms_der.size()))
                                     : nullptr);
      if (!cms) {
        out.cms_error = "CMS signature unreadable: " + OpenSslError();
        AddAnomaly(anomalies, "codesign.cms_unreadable", where, out.cms_error);
        continue;
      }
      out.certificates = CmsCertificates(cms.get());
      if (primary_cd.empty()) {
        // The CMS blob normally follows the directories; find the primary one if not yet seen.
        for (uint32_t j = 0; j < count; ++j) {
          uint32_t t = BE32(blob, 12 + j * 8), o = BE32(blob, 16 + j * 8);
          if (t == kSlotCodeDirectory && o <= length - 8 && BE32(blob, o + 4) <= length - o) {
            primary_cd = blob.subspan(o, BE32(blob, o + 4));
          }
        }
      }
      // OpenSSL 3.0's CMS_verify copies content held in a memory BIO into a temporary BIO of its
      // own and loses that copy when it cannot set up the signed data's digests (an unknown
      // digest algorithm; found by the macho fuzzer). A pass-through filter in front of the memory
      // BIO is not of the memory type, so CMS_verify reads through it and allocates no copy.
      Owned<BIO> source(BIO_new_mem_buf(primary_cd.data(), static_cast<int>(primary_cd.size())));
      Owned<BIO> content(BIO_new(BIO_f_null()));
      if (source && content) BIO_push(content.get(), source.get());
      out.cms_verifies = !primary_cd.empty() && source && content &&
                         CMS_verify(cms.get(), nullptr, nullptr, content.get(), nullptr,
                                    CMS_NO_SIGNER_CERT_VERIFY | CMS_BINARY | CMS_DETACHED) == 1;
      if (!out.cms_verifies) {
        out.cms_error = "CMS signature does not verify over the CodeDirectory: " + OpenSslError();
        AddAnomaly(anomalies, "codesign.cms_mismatch", where, out.cms_error);
      } else {
        SignerFacts(cms.get(), &out);
      }
      ERR_clear_error();
    }
  }
  if (directories.empty()) return Status::Corruption(where + ": code signature has no CodeDirectory");

  for (const auto& directory : directories) {
    const uint32_t slot = directory.first;
    const Bytes data = directory.second;  // a named copy: lambdas below cannot capture bindings
    CodeDirectory cd;
    cd.slot = slot;
    if (data.size() < 44) {
      AddAnomaly(anomalies, "codesign.code_directory_truncated", where, "CodeDirectory shorter than 44 bytes");
      continue;
    }
    cd.version = BE32(data, 8);
    cd.flags = BE32(data, 12);
    cd.flag_names = FlagNames(cd.flags);
    uint32_t hash_offset = BE32(data, 16), ident_offset = BE32(data, 20);
    cd.special_slots = BE32(data, 24);
    cd.code_slots = BE32(data, 28);
    cd.code_limit = BE32(data, 32);
    uint8_t hash_size = data[36], hash_type = data[37], page_shift = data[39];
    cd.page_size = page_shift == 0 ? 0 : (page_shift < 32 ? 1u << page_shift : 0);
    if (cd.version >= 0x20200 && data.size() >= 52) {
      uint32_t team_offset = BE32(data, 48);
      if (team_offset != 0 && team_offset < data.size()) {
        std::string_view text = AsStringView(data.subspan(team_offset));
        cd.team_id = std::string(text.substr(0, text.find('\0')));
      }
    }
    if (cd.version >= 0x20300 && data.size() >= 64) {
      uint64_t limit64 = BE64(data, 56);
      if (limit64 != 0) cd.code_limit = limit64;
    }
    if (cd.version >= 0x20400 && data.size() >= 88) cd.exec_segment_flags = BE64(data, 80);
    if (ident_offset < data.size()) {
      std::string_view text = AsStringView(data.subspan(ident_offset));
      cd.identifier = std::string(text.substr(0, text.find('\0')));
    }
    const EVP_MD* md = DigestFor(hash_type, &cd.hash_type);
    if (md != nullptr) cd.cdhash = HexLower(AsBytes(Digest(md, data).substr(0, 20)));
    if (cd.code_slots > limits.max_code_slots) {
      AddAnomaly(anomalies, "codesign.too_many_pages", where,
                 std::to_string(cd.code_slots) + " code slots, more than Limits::max_code_slots; pages not checked");
    } else if (md != nullptr && hash_size > 0 && hash_offset <= data.size() &&
               uint64_t{cd.special_slots} * hash_size <= hash_offset &&
               (data.size() - hash_offset) / hash_size >= cd.code_slots) {
      auto slot_hash = [&](int64_t index) {
        return AsStringView(data.subspan(static_cast<size_t>(hash_offset + index * hash_size), hash_size));
      };
      // Code pages.
      // A page size of 0 (log2 0) is one page over the whole code limit: codesign hashes a
      // bundle's non-Mach-O main file (a static library, an xcframework's Info.plist) that way.
      const uint64_t page_size = cd.page_size != 0 ? cd.page_size : std::max<uint64_t>(cd.code_limit, 1);
      if (cd.code_limit > slice.size()) {
        AddAnomaly(anomalies, "codesign.code_limit_past_end", where,
                   "CodeDirectory covers " + std::to_string(cd.code_limit) + " bytes, the slice has " +
                       std::to_string(slice.size()));
      } else {
        for (uint32_t page = 0; page < cd.code_slots; ++page) {
          uint64_t start = uint64_t{page} * page_size;
          if (start >= cd.code_limit) break;
          uint64_t size = std::min<uint64_t>(page_size, cd.code_limit - start);
          ++cd.pages_checked;
          if (Digest(md, slice.subspan(start, size)).substr(0, hash_size) != slot_hash(page)) {
            if (cd.mismatched_pages.size() < kMaxMismatchedPagesListed) cd.mismatched_pages.push_back(page);
          }
        }
        if (!cd.mismatched_pages.empty()) {
          AddAnomaly(anomalies, "codesign.page_hash_mismatch", where,
                     std::to_string(cd.mismatched_pages.size()) + " page(s) of code differ from the " + cd.hash_type +
                         " CodeDirectory (first: page " + std::to_string(cd.mismatched_pages.front()) +
                         "): the binary was modified after signing");
        }
      }
      // Special slots: -1 Info.plist, -2 requirements, -5 entitlements, -7 DER entitlements.
      auto check_special = [&](uint32_t number, Bytes content, const char* what) {
        if (number > cd.special_slots) return;
        std::string_view expected = slot_hash(-static_cast<int64_t>(number));
        if (expected.find_first_not_of('\0') == std::string_view::npos) return;  // slot not bound
        if (Digest(md, content).substr(0, hash_size) != expected) {
          AddAnomaly(anomalies, "codesign.special_slot_mismatch", where,
                     std::string(what) + " does not match its hash in the " + cd.hash_type + " CodeDirectory");
        }
      };
      if (info_plist) check_special(1, *info_plist, "Info.plist");
      if (!requirements.empty()) check_special(2, requirements, "the requirements blob");
      if (!entitlements_blob.empty()) check_special(5, entitlements_blob, "the entitlements blob");
      if (!der_blob.empty()) check_special(7, der_blob, "the DER entitlements blob");
    } else if (md != nullptr) {
      AddAnomaly(anomalies, "codesign.hash_table_out_of_bounds", where,
                 "CodeDirectory hash table runs past the directory");
    }
    out.code_directories.push_back(std::move(cd));
  }

  if (!entitlements_blob.empty()) {
    auto value = plist::Parse(entitlements_blob.subspan(8), limits.plist);
    if (value.ok()) {
      out.entitlements = std::move(*value);
      out.entitlements_source = "xml";
    } else {
      AddAnomaly(anomalies, "codesign.entitlements_unreadable", where, value.status().ToString());
    }
  }
  if (!out.entitlements && !der_blob.empty()) {
    auto value = ParseDerEntitlements(der_blob.subspan(8), limits);
    if (value.ok()) {
      out.entitlements = std::move(*value);
      out.entitlements_source = "der";
    } else {
      AddAnomaly(anomalies, "codesign.der_entitlements_unreadable", where, value.status().ToString());
    }
  }
  const CodeDirectory& first = out.code_directories.front();
  out.adhoc = !out.has_cms || (first.flags & 0x2) != 0;
  out.team_id = first.team_id;
  if (!out.certificates.empty()) {
    const SignerCertificate& leaf = out.certificates.front();
    out.organization = leaf.organization;
    out.certificate_kind = CertificateKind(leaf.common_name);
    if (out.team_id.empty()) out.team_id = leaf.organizational_unit;
    if (!first.team_id.empty() && !leaf.organizational_unit.empty() && first.team_id != leaf.organizational_unit) {
      AddAnomaly(anomalies, "codesign.team_id_mismatch", where,
                 "CodeDirectory Team ID " + first.team_id + " differs from the signing certificate's OU " +
                     leaf.organizational_unit);
    }
  }
  return out;
}

}  // namespace appban::ios
