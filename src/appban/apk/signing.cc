// APK signers: the APK Signing Block (v2, v3, v3.1) and the grouping of every scheme's signers by
// certificate. Certificate decoding is in signing_x509.cc, v1 PKCS#7 in signing_pkcs7.cc.
#include "appban/apk/signing.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <limits>
#include <memory>
#include <set>
#include <utility>

#include "appban/apk/signing_x509.h"
#include "appban/common/bytes.h"
#include "appban/common/crypto.h"
#include "appban/common/text.h"

namespace appban::apk {
namespace {

// ---- Identifiers from the APK Signature Scheme v2/v3 documentation (source.android.com). ----
constexpr std::string_view kSigningBlockMagic = "APK Sig Block 42";
constexpr uint32_t kV2BlockId = 0x7109871a;
constexpr uint32_t kV3BlockId = 0xf05368c0;
constexpr uint32_t kV31BlockId = 0x1b93ad61;
constexpr uint32_t kVerityPaddingBlockId = 0x42726577;
constexpr uint32_t kSourceStampV1BlockId = 0x2b09189e;
constexpr uint32_t kSourceStampV2BlockId = 0x6dff800d;
constexpr uint32_t kPlayFrostingBlockId = 0x2146444e;
constexpr uint32_t kDependencyInfoBlockId = 0x504b4453;
// Additional attributes inside a signer's signed data.
constexpr uint32_t kProofOfRotationAttrId = 0x3ba06f8c;      // v3: signing certificate lineage
constexpr uint32_t kStrippingProtectionAttrId = 0xbeeff00d;  // v2: "also signed with scheme N"
constexpr uint32_t kProofOfRotationVersion = 1;
constexpr uint32_t kV3SchemeId = 3;
// Footer: uint64 block size followed by the 16-byte magic.
constexpr uint64_t kSigningBlockFooterBytes = 8 + 16;
// How far before the central directory we look for a stray magic when the block is not adjacent.
constexpr uint64_t kStrayMagicSearchBytes = 1 << 20;

// ---- APK Signing Block. ----

std::optional<Bytes> TakeLengthPrefixed(ByteReader& reader) {
  auto length = reader.U32();
  if (!length) return std::nullopt;
  return reader.Take(*length);
}

std::string BlockKind(uint32_t id) {
  switch (id) {
    case kV2BlockId:
      return "v2";
    case kV3BlockId:
      return "v3";
    case kV31BlockId:
      return "v3.1";
    case kVerityPaddingBlockId:
      return "padding";
    case kSourceStampV1BlockId:
      return "source_stamp_v1";
    case kSourceStampV2BlockId:
      return "source_stamp_v2";
    case kPlayFrostingBlockId:
      return "play_frosting";
    case kDependencyInfoBlockId:
      return "dependency_info";
    default:
      return "unknown";
  }
}

// ---- v2/v3 signatures over the signed data. ----

// Signature algorithm IDs of APK Signature Scheme v2/v3 (source.android.com, "Signature
// Algorithm IDs"). The verity variants differ only in how the content digest is computed, which
// is not checked here; their signature over the signed data is the same construction.
struct SignatureAlgorithm {
  uint32_t id;
  const EVP_MD* (*digest)();
  int rsa_padding;  // 0 for EC/DSA keys
};
constexpr std::array<SignatureAlgorithm, 10> kSignatureAlgorithms = {{
    {0x0101, EVP_sha256, RSA_PKCS1_PSS_PADDING},
    {0x0102, EVP_sha512, RSA_PKCS1_PSS_PADDING},
    {0x0103, EVP_sha256, RSA_PKCS1_PADDING},
    {0x0104, EVP_sha512, RSA_PKCS1_PADDING},
    {0x0201, EVP_sha256, 0},
    {0x0202, EVP_sha512, 0},
    {0x0301, EVP_sha256, 0},
    {0x0421, EVP_sha256, RSA_PKCS1_PADDING},
    {0x0423, EVP_sha256, 0},
    {0x0425, EVP_sha256, 0},
}};

bool VerifyOne(EVP_PKEY* key, const SignatureAlgorithm& algorithm, Bytes signature, Bytes signed_data) {
  OpenSslPtr<EVP_MD_CTX> context(EVP_MD_CTX_new());
  EVP_PKEY_CTX* key_context = nullptr;  // owned by `context`
  if (!context || EVP_DigestVerifyInit(context.get(), &key_context, algorithm.digest(), nullptr, key) != 1)
    return false;
  bool is_rsa = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA;
  if (is_rsa != (algorithm.rsa_padding != 0)) return false;
  if (is_rsa) {
    if (EVP_PKEY_CTX_set_rsa_padding(key_context, algorithm.rsa_padding) != 1) return false;
    if (algorithm.rsa_padding == RSA_PKCS1_PSS_PADDING) {
      // Android's PSS: MGF1 with the same digest, salt as long as the digest.
      if (EVP_PKEY_CTX_set_rsa_mgf1_md(key_context, algorithm.digest()) != 1 ||
          EVP_PKEY_CTX_set_rsa_pss_saltlen(key_context, EVP_MD_get_size(algorithm.digest())) != 1) {
        return false;
      }
    }
  }
  return EVP_DigestVerify(context.get(), signature.data(), signature.size(), signed_data.data(), signed_data.size()) ==
         1;
}

// Verifies every signature with a supported algorithm over `signed_data` with the signer's
// `public_key` (SubjectPublicKeyInfo). Returns the outcome and a reason when it fails.
std::pair<bool, std::string> VerifySignedData(Bytes signed_data, Bytes signatures, Bytes public_key) {
  const unsigned char* cursor = public_key.data();
  OpenSslPtr<EVP_PKEY> key(d2i_PUBKEY(nullptr, &cursor, static_cast<long>(public_key.size())));
  if (!key) return {false, "the signer's public key cannot be read"};
  ByteReader reader(signatures);
  int checked = 0;
  std::set<uint32_t> checked_ids;
  while (!reader.empty()) {
    auto entry = TakeLengthPrefixed(reader);
    if (!entry) return {false, "the signature list is malformed"};
    ByteReader entry_reader(*entry);
    auto id = entry_reader.U32();
    auto signature = id ? TakeLengthPrefixed(entry_reader) : std::nullopt;
    if (!signature) return {false, "a signature entry is malformed"};
    auto algorithm = std::find_if(kSignatureAlgorithms.begin(), kSignatureAlgorithms.end(),
                                  [&](const SignatureAlgorithm& a) { return a.id == *id; });
    if (algorithm == kSignatureAlgorithms.end()) continue;  // Android skips unknown algorithms too
    // One verification per algorithm bounds the work a hostile list of thousands of entries can
    // cause to the number of known algorithms; Android itself verifies just one.
    if (!checked_ids.insert(*id).second) continue;
    ++checked;
    if (!VerifyOne(key.get(), *algorithm, *signature, signed_data)) {
      return {false, "the signature with algorithm " + Hex32(*id) + " does not verify"};
    }
  }
  if (checked == 0) return {false, "no signature uses an algorithm Android supports"};
  return {true, ""};
}

// What a scheme block told us beyond its signers.
struct SchemeBlockFacts {
  bool claims_v3 = false;  // a v2 signer carries the stripping-protection attribute naming v3
};

// Proof-of-rotation: uint32 version, then length-prefixed nodes, each holding length-prefixed
// signed data (length-prefixed certificate, uint32 algorithm), flags, algorithm and signature.
Result<std::vector<Certificate>> ParseLineage(Bytes value, const Limits& limits) {
  ByteReader reader(value);
  auto version = reader.U32();
  if (!version) return Status::Truncated("proof-of-rotation attribute has no version");
  if (*version != kProofOfRotationVersion) {
    return Status::Corruption("proof-of-rotation version " + std::to_string(*version) + " is not 1");
  }
  std::vector<Certificate> lineage;
  while (!reader.empty()) {
    if (lineage.size() >= limits.max_certificates_per_signer) {
      return Status::LimitExceeded("proof-of-rotation has more than " +
                                   std::to_string(limits.max_certificates_per_signer) + " certificates");
    }
    auto node = TakeLengthPrefixed(reader);
    if (!node)
      return Status::Truncated("proof-of-rotation node " + std::to_string(lineage.size()) + " runs past its attribute");
    ByteReader node_reader(*node);
    auto signed_data = TakeLengthPrefixed(node_reader);
    if (!signed_data)
      return Status::Truncated("proof-of-rotation node " + std::to_string(lineage.size()) + " has no signed data");
    ByteReader signed_reader(*signed_data);
    auto cert_der = TakeLengthPrefixed(signed_reader);
    if (!cert_der)
      return Status::Truncated("proof-of-rotation node " + std::to_string(lineage.size()) + " has no certificate");
    auto cert = ParseCertificateWithKey(*cert_der);
    if (!cert.ok()) return cert.status().WithContext("proof-of-rotation node " + std::to_string(lineage.size()));
    lineage.push_back(std::move(cert->facts));
  }
  return lineage;
}

// Parses one v2/v3/v3.1 signer. Malformed signers are reported and skipped (nullopt);
// LimitExceeded propagates.
Result<std::optional<SchemeSigner>> ParseSchemeSigner(Bytes signer_bytes, const std::string& scheme,
                                                      const std::string& where, const Limits& limits,
                                                      Anomalies* anomalies, SchemeBlockFacts* facts) {
  const bool has_sdk_range = scheme != "v2";
  auto malformed = [&](const std::string& what) -> Result<std::optional<SchemeSigner>> {
    AddAnomaly(anomalies, "signing.malformed_signer", where, scheme + " signer skipped: " + what);
    return std::optional<SchemeSigner>();
  };

  ByteReader reader(signer_bytes);
  auto signed_data = TakeLengthPrefixed(reader);
  if (!signed_data) return malformed("signed data runs past the signer");
  std::optional<uint32_t> outer_min_sdk, outer_max_sdk;
  if (has_sdk_range) {
    outer_min_sdk = reader.U32();
    outer_max_sdk = reader.U32();
    if (!outer_min_sdk || !outer_max_sdk) return malformed("SDK range runs past the signer");
  }
  auto signatures = TakeLengthPrefixed(reader);
  auto public_key = signatures ? TakeLengthPrefixed(reader) : std::nullopt;
  if (!signatures || !public_key) return malformed("signatures or public key run past the signer");

  ByteReader data_reader(*signed_data);
  auto digests = TakeLengthPrefixed(data_reader);
  auto certificates = digests ? TakeLengthPrefixed(data_reader) : std::nullopt;
  if (!digests || !certificates) return malformed("digests or certificates run past the signed data");
  std::optional<uint32_t> min_sdk, max_sdk;
  if (has_sdk_range) {
    min_sdk = data_reader.U32();
    max_sdk = data_reader.U32();
    if (!min_sdk || !max_sdk) return malformed("SDK range runs past the signed data");
  }
  auto attributes = TakeLengthPrefixed(data_reader);
  if (!attributes) return malformed("additional attributes run past the signed data");

  // Only the first certificate is the signer's; the rest is an optional chain, counted for the limit.
  std::optional<Bytes> signer_cert_der;
  uint32_t certificate_count = 0;
  ByteReader cert_reader(*certificates);
  while (!cert_reader.empty()) {
    if (++certificate_count > limits.max_certificates_per_signer) {
      return Status::LimitExceeded(where + ": " + scheme + " signer has more than " +
                                   std::to_string(limits.max_certificates_per_signer) + " certificates");
    }
    auto der = TakeLengthPrefixed(cert_reader);
    if (!der) return malformed("certificate " + std::to_string(certificate_count - 1) + " runs past the list");
    if (!signer_cert_der) signer_cert_der = der;
  }
  if (!signer_cert_der) {
    AddAnomaly(anomalies, "signing.signer_without_certificate", where, scheme + " signer lists no certificate");
    return std::optional<SchemeSigner>();
  }
  auto parsed = ParseCertificateWithKey(*signer_cert_der);
  if (!parsed.ok()) {
    AddAnomaly(anomalies, "signing.unparseable_certificate", where,
               scheme + " signer certificate skipped: " + parsed.status().message());
    return std::optional<SchemeSigner>();
  }
  if (AsBytes(parsed->public_key_der).size() != public_key->size() ||
      !std::equal(public_key->begin(), public_key->end(), AsBytes(parsed->public_key_der).begin())) {
    AddAnomaly(anomalies, "signing.certificate_public_key_mismatch", where,
               scheme + " signer's public key is not the key of its certificate (" + parsed->facts.sha256 +
                   "); Android rejects such a signer");
  }

  SchemeSigner signer;
  signer.scheme = scheme;
  signer.certificate = std::move(parsed->facts);
  auto [verified, why_not] = VerifySignedData(*signed_data, *signatures, *public_key);
  signer.signed_data_verified = verified;
  if (!verified) {
    AddAnomaly(anomalies, "signing.signature_does_not_verify", where,
               scheme + " signer (" + signer.certificate.sha256 + "): " + why_not +
                   "; Android would refuse to install this APK");
  }
  if (has_sdk_range) {
    if (*min_sdk != *outer_min_sdk || *max_sdk != *outer_max_sdk) {
      AddAnomaly(
          anomalies, "signing.sdk_range_mismatch", where,
          scheme +
              " signer's SDK range outside the signed data differs from the one inside; the signed one is reported");
    }
    // SDK versions are small positive numbers; INT32_MAX means "no upper bound".
    signer.min_sdk = static_cast<int>(std::min<uint32_t>(*min_sdk, INT32_MAX));
    signer.max_sdk = static_cast<int>(std::min<uint32_t>(*max_sdk, INT32_MAX));
  }

  ByteReader attribute_reader(*attributes);
  while (!attribute_reader.empty()) {
    auto attribute = TakeLengthPrefixed(attribute_reader);
    if (!attribute || attribute->size() < 4) {
      AddAnomaly(anomalies, "signing.malformed_attribute", where,
                 scheme + " signer's additional attributes are malformed");
      break;
    }
    uint32_t id = *LoadLE<uint32_t>(*attribute, 0);
    Bytes value = attribute->subspan(4);
    if (id == kProofOfRotationAttrId && has_sdk_range) {
      auto lineage = ParseLineage(value, limits);
      if (!lineage.ok()) {
        if (lineage.status().code() == StatusCode::kLimitExceeded) return lineage.status().WithContext(where);
        AddAnomaly(anomalies, "signing.malformed_lineage", where,
                   scheme + " proof-of-rotation ignored: " + lineage.status().message());
        continue;
      }
      // The newest node is the signer's own certificate; the lineage lists only earlier ones.
      if (!lineage->empty() && lineage->back().sha256 == signer.certificate.sha256) lineage->pop_back();
      signer.lineage = std::move(*lineage);
    } else if (id == kStrippingProtectionAttrId && !has_sdk_range) {
      auto scheme_id = LoadLE<uint32_t>(value, 0);
      if (scheme_id && *scheme_id == kV3SchemeId) facts->claims_v3 = true;
    }
  }
  return std::optional<SchemeSigner>(std::move(signer));
}

// A v2/v3/v3.1 block: a length-prefixed sequence of length-prefixed signers.
Status ParseSchemeBlock(Bytes value, const std::string& scheme, const Limits& limits, Anomalies* anomalies,
                        std::vector<SchemeSigner>* out, SchemeBlockFacts* facts) {
  const std::string where = "APK Signing Block " + scheme;
  ByteReader outer(value);
  auto signers = TakeLengthPrefixed(outer);
  if (!signers) {
    AddAnomaly(anomalies, "signing.malformed_signature_block", where, "the signer list runs past the block");
    return Status::Ok();
  }
  ByteReader reader(*signers);
  uint32_t index = 0;
  while (!reader.empty()) {
    if (index >= limits.max_signers) {
      return Status::LimitExceeded(where + " has more than " + std::to_string(limits.max_signers) + " signers");
    }
    auto signer_bytes = TakeLengthPrefixed(reader);
    if (!signer_bytes) {
      AddAnomaly(anomalies, "signing.malformed_signature_block", where,
                 "signer " + std::to_string(index) + " runs past the signer list");
      break;
    }
    APPBAN_ASSIGN_OR_RETURN(
        auto signer,
        ParseSchemeSigner(*signer_bytes, scheme, where + " signer " + std::to_string(index), limits, anomalies, facts));
    if (signer) out->push_back(std::move(*signer));
    ++index;
  }
  if (index == 0) AddAnomaly(anomalies, "signing.no_signers", where, "the " + scheme + " block lists no signers");
  return Status::Ok();
}

// Looks for a signing block magic that is not immediately before the central directory: Android
// ignores such a block, but its presence means the file was edited after signing.
void ReportStrayMagic(Bytes file, uint64_t central_directory_offset, Anomalies* anomalies) {
  uint64_t end = std::min<uint64_t>(central_directory_offset, file.size());
  uint64_t start = end > kStrayMagicSearchBytes ? end - kStrayMagicSearchBytes : 0;
  std::string_view window = AsStringView(file.subspan(static_cast<size_t>(start), static_cast<size_t>(end - start)));
  size_t found = window.rfind(kSigningBlockMagic);
  if (found == std::string_view::npos) return;
  uint64_t block_end = start + found + kSigningBlockMagic.size();
  AddAnomaly(anomalies, "signing.block_not_at_central_directory", "offset " + std::to_string(start + found),
             "an APK Signing Block magic ends at offset " + std::to_string(block_end) +
                 " but the central directory starts at " + std::to_string(central_directory_offset) +
                 "; Android ignores a block that is not adjacent to it");
}

}  // namespace

bool SigningInfo::any_debug() const {
  return std::any_of(signers.begin(), signers.end(), [](const Signer& s) { return s.certificate.debug; });
}

Result<SigningBlock> ParseSigningBlock(Bytes file, uint64_t central_directory_offset, const Limits& limits,
                                       Anomalies* anomalies) {
  SigningBlock block;
  if (central_directory_offset > file.size()) return block;
  auto magic = central_directory_offset >= kSigningBlockFooterBytes ? SubSpan(file, central_directory_offset - 16, 16)
                                                                    : std::nullopt;
  if (!magic || AsStringView(*magic) != kSigningBlockMagic) {
    ReportStrayMagic(file, central_directory_offset, anomalies);
    return block;
  }
  const std::string where = "APK Signing Block";
  uint64_t footer_size =
      *LoadLE<uint64_t>(file, static_cast<size_t>(central_directory_offset - kSigningBlockFooterBytes));
  // The size counts everything after the leading size field: pairs, footer size and magic.
  if (footer_size < kSigningBlockFooterBytes || footer_size > central_directory_offset - 8) {
    AddAnomaly(anomalies, "signing.block_truncated", where,
               "the block claims " + std::to_string(footer_size) +
                   " bytes, which does not fit before the central directory at " +
                   std::to_string(central_directory_offset) + "; block ignored, as Android does");
    return block;
  }
  if (footer_size + 8 > limits.max_signing_block_bytes) {
    return Status::LimitExceeded("APK Signing Block of " + std::to_string(footer_size + 8) +
                                 " bytes exceeds the limit of " + std::to_string(limits.max_signing_block_bytes));
  }
  uint64_t block_start = central_directory_offset - footer_size - 8;
  uint64_t header_size = *LoadLE<uint64_t>(file, static_cast<size_t>(block_start));
  if (header_size != footer_size) {
    AddAnomaly(anomalies, "signing.block_size_mismatch", "offset " + std::to_string(block_start),
               "the block's leading size " + std::to_string(header_size) + " differs from its trailing size " +
                   std::to_string(footer_size) + "; block ignored, as Android does");
    return block;
  }
  block.present = true;

  Bytes pairs = *SubSpan(file, block_start + 8, footer_size - kSigningBlockFooterBytes);
  ByteReader reader(pairs);
  std::set<uint32_t> seen;
  std::vector<std::pair<uint32_t, Bytes>> scheme_values;  // first occurrence of each scheme ID
  while (!reader.empty()) {
    if (block.entries.size() >= limits.max_signing_block_entries) {
      return Status::LimitExceeded("APK Signing Block has more than " +
                                   std::to_string(limits.max_signing_block_entries) + " ID-value pairs");
    }
    size_t pair_offset = block_start + 8 + reader.position();
    auto length = reader.U64();
    if (!length || *length < 4 || *length > reader.remaining()) {
      AddAnomaly(anomalies, "signing.malformed_pair", "offset " + std::to_string(pair_offset),
                 "an ID-value pair's length runs past the block; the rest of the block is ignored");
      break;
    }
    Bytes pair = *reader.Take(static_cast<size_t>(*length));
    uint32_t id = *LoadLE<uint32_t>(pair, 0);
    Bytes value = pair.subspan(4);
    SigningBlockEntry entry{id, value.size(), BlockKind(id)};
    if (entry.kind == "unknown") {
      AddAnomaly(anomalies, "signing.unknown_block_id", "offset " + std::to_string(pair_offset),
                 "APK Signing Block holds a pair with unknown ID " + Hex32(id) + " (" + std::to_string(value.size()) +
                     " bytes), data outside any signature (often a channel or tracking marker)");
    }
    if (!seen.insert(id).second) {
      AddAnomaly(
          anomalies, "signing.duplicate_block_id", "offset " + std::to_string(pair_offset),
          "APK Signing Block holds ID " + Hex32(id) + " more than once; only the first is read, as Android does");
    } else if (id == kV2BlockId || id == kV3BlockId || id == kV31BlockId) {
      scheme_values.emplace_back(id, value);
    }
    block.entries.push_back(std::move(entry));
  }

  // Parse newest scheme first so the signer list comes out v3.1, v3, v2.
  SchemeBlockFacts facts;
  for (uint32_t id : {kV31BlockId, kV3BlockId, kV2BlockId}) {
    auto it = std::find_if(scheme_values.begin(), scheme_values.end(), [id](const auto& p) { return p.first == id; });
    if (it == scheme_values.end()) continue;
    std::string scheme = BlockKind(id);
    (id == kV2BlockId ? block.v2_present : id == kV3BlockId ? block.v3_present : block.v31_present) = true;
    APPBAN_RETURN_IF_ERROR(ParseSchemeBlock(it->second, scheme, limits, anomalies, &block.signers, &facts));
  }
  if (facts.claims_v3 && !block.v3_present) {
    AddAnomaly(anomalies, "signing.v3_stripped", where,
               "the v2 signature says the APK was also signed with v3, but there is no v3 block: it was removed after "
               "signing");
  }
  return block;
}

SigningInfo GroupSigners(const std::vector<SchemeSigner>& scheme_signers, Anomalies* anomalies) {
  SigningInfo info;
  static constexpr std::array<std::string_view, 4> kSchemeOrder = {"v1", "v2", "v3", "v3.1"};
  auto rank = [](std::string_view scheme) {
    return std::find(kSchemeOrder.begin(), kSchemeOrder.end(), scheme) - kSchemeOrder.begin();
  };
  // v3.1 and v3 signers first: they are what a current Android device checks.
  std::vector<const SchemeSigner*> ordered;
  for (const SchemeSigner& s : scheme_signers) ordered.push_back(&s);
  std::stable_sort(ordered.begin(), ordered.end(),
                   [&](const SchemeSigner* a, const SchemeSigner* b) { return rank(a->scheme) > rank(b->scheme); });

  std::set<std::string> v1_certs, v2_certs, v3_certs, v3_lineage;
  for (const SchemeSigner* s : ordered) {
    const std::string& sha = s->certificate.sha256;
    if (s->scheme == "v1") info.v1 = true, v1_certs.insert(sha);
    if (s->scheme == "v2") info.v2 = true, v2_certs.insert(sha);
    if (s->scheme == "v3") info.v3 = true, v3_certs.insert(sha);
    if (s->scheme == "v3.1") info.v31 = true;
    if (s->scheme == "v3") {
      for (const Certificate& old : s->lineage) v3_lineage.insert(old.sha256);
    }

    auto it = std::find_if(info.signers.begin(), info.signers.end(),
                           [&](const Signer& g) { return g.certificate.sha256 == sha; });
    if (it == info.signers.end()) {
      info.signers.push_back(Signer{s->certificate, {}, std::nullopt, std::nullopt, {}, s->scheme != "v1"});
      it = info.signers.end() - 1;
    }
    if (std::find(it->schemes.begin(), it->schemes.end(), s->scheme) == it->schemes.end())
      it->schemes.push_back(s->scheme);
    // Several v3 signers with one certificate cover different SDK ranges: report the union.
    if (s->min_sdk) it->min_sdk = it->min_sdk ? std::min(*it->min_sdk, *s->min_sdk) : *s->min_sdk;
    if (s->max_sdk) it->max_sdk = it->max_sdk ? std::max(*it->max_sdk, *s->max_sdk) : *s->max_sdk;
    if (it->lineage.empty()) it->lineage = s->lineage;
    if (s->scheme != "v1") it->signed_data_verified = it->signed_data_verified && s->signed_data_verified;
  }
  for (Signer& signer : info.signers) {
    std::sort(signer.schemes.begin(), signer.schemes.end(),
              [&](const std::string& a, const std::string& b) { return rank(a) < rank(b); });
  }

  if (!v1_certs.empty() && !v2_certs.empty() && v1_certs != v2_certs) {
    AddAnomaly(anomalies, "signing.signers_differ_across_schemes", "v1/v2",
               "the v1 (JAR) signers are not the v2 signers: a sign of re-signing or repackaging");
  }
  // With key rotation the v3 signer is newer than the v2 one, but then the v2 certificate must be
  // in the v3 lineage.
  const std::set<std::string>& older = v2_certs.empty() ? v1_certs : v2_certs;
  if (!v3_certs.empty() && !older.empty() && older != v3_certs) {
    bool explained = std::all_of(older.begin(), older.end(),
                                 [&](const std::string& sha) { return v3_certs.count(sha) || v3_lineage.count(sha); });
    if (!explained) {
      AddAnomaly(anomalies, "signing.signers_differ_across_schemes", v2_certs.empty() ? "v1/v3" : "v2/v3",
                 "the v3 signer differs from the older scheme's signer and its proof-of-rotation does not link them");
    }
  }
  return info;
}

namespace {

bool IsV1SignatureBlockName(std::string_view name) {
  constexpr std::string_view kDir = "META-INF/";
  if (!name.starts_with(kDir) || name.find('/', kDir.size()) != std::string_view::npos) return false;
  return name.ends_with(".RSA") || name.ends_with(".DSA") || name.ends_with(".EC");
}

// The scheme numbers in a .SF main section's "X-Android-APK-Signed" header, which a v2+ signer
// writes so that stripping the newer signatures is detectable.
std::set<int> AndroidApkSignedSchemes(std::string_view sf) {
  std::set<int> schemes;
  constexpr std::string_view kHeader = "X-Android-APK-Signed:";
  size_t pos = 0;
  while (pos < sf.size()) {
    size_t end = sf.find('\n', pos);
    std::string_view line = sf.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.empty()) break;  // end of the main section
    if (line.starts_with(kHeader)) {
      int number = -1;
      for (char c : line.substr(kHeader.size())) {
        if (c >= '0' && c <= '9') {
          number = (number < 0 ? 0 : number * 10) + (c - '0');
          if (number > 1000) number = 1000;
        } else if (number >= 0) {
          schemes.insert(number);
          number = -1;
        }
      }
      if (number >= 0) schemes.insert(number);
    }
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return schemes;
}

}  // namespace

Result<SigningInfo> ReadSigningInfo(const ZipArchive& zip, const Limits& limits, Anomalies* anomalies) {
  APPBAN_ASSIGN_OR_RETURN(SigningBlock block,
                          ParseSigningBlock(zip.file(), zip.central_directory_offset(), limits, anomalies));
  std::vector<SchemeSigner> scheme_signers = std::move(block.signers);

  // v1: every META-INF/<name>.RSA|DSA|EC with its META-INF/<name>.SF. The whole v1 read shares
  // the signing-block byte limit: these files are a few KB in real APKs.
  uint64_t budget = limits.max_signing_block_bytes;
  std::set<std::string_view> done;
  std::set<int> claimed_schemes;
  uint32_t v1_signers = 0;
  for (const ZipEntry& listed : zip.entries()) {
    if (!IsV1SignatureBlockName(listed.name) || !done.insert(listed.name).second) continue;
    const ZipEntry* entry = zip.Find(listed.name);
    if (entry == nullptr) continue;
    std::string sf_name = listed.name.substr(0, listed.name.rfind('.')) + ".SF";
    const ZipEntry* sf_entry = zip.Find(sf_name);
    if (sf_entry == nullptr) {
      AddAnomaly(anomalies, "signing.v1_block_without_sf", listed.name,
                 "a v1 signature block without its " + sf_name + "; Android ignores it");
      continue;
    }
    if (++v1_signers > limits.max_signers) {
      return Status::LimitExceeded("more than " + std::to_string(limits.max_signers) + " v1 signature blocks");
    }
    auto sf = zip.Read(*sf_entry, &budget, anomalies);
    auto pkcs7 = sf.ok() ? zip.Read(*entry, &budget, anomalies) : Result<Buffer>(sf.status());
    if (!pkcs7.ok()) {
      if (pkcs7.status().code() == StatusCode::kLimitExceeded) return pkcs7.status().WithContext(listed.name);
      AddAnomaly(anomalies, "signing.v1_unreadable", listed.name,
                 "v1 signature files unreadable: " + pkcs7.status().message());
      continue;
    }
    for (int scheme : AndroidApkSignedSchemes(AsStringView(sf->bytes()))) claimed_schemes.insert(scheme);
    auto cert = ParsePkcs7Signer(pkcs7->bytes(), listed.name, limits, anomalies);
    if (!cert.ok()) {
      if (cert.status().code() == StatusCode::kLimitExceeded) return cert.status().WithContext(listed.name);
      AddAnomaly(anomalies, "signing.unparseable_certificate", listed.name,
                 "v1 signer skipped: " + cert.status().message());
      continue;
    }
    scheme_signers.push_back(SchemeSigner{"v1", std::move(*cert), std::nullopt, std::nullopt, {}, false});
  }
  if (claimed_schemes.count(2) && !block.v2_present) {
    AddAnomaly(anomalies, "signing.v2_stripped", "META-INF",
               "the v1 signature says the APK was also signed with v2 (X-Android-APK-Signed), but there is no v2 "
               "signature: it was removed after signing");
  }
  if (claimed_schemes.count(3) && !block.v3_present) {
    AddAnomaly(anomalies, "signing.v3_stripped", "META-INF",
               "the v1 signature says the APK was also signed with v3 (X-Android-APK-Signed), but there is no v3 "
               "signature: it was removed after signing");
  }

  SigningInfo info = GroupSigners(scheme_signers, anomalies);
  info.block_entries = std::move(block.entries);
  return info;
}

}  // namespace appban::apk
