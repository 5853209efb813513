#include "appban/identity/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <utility>

namespace appban::identity {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct BnFree {
  void operator()(BIGNUM* bn) const { BN_free(bn); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* bld) const { OSSL_PARAM_BLD_free(bld); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* params) const { OSSL_PARAM_free(params); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* sig) const { ECDSA_SIG_free(sig); }
};

int Base64UrlValue(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

Result<JwtAlgorithm> AlgorithmFromName(std::string_view name) {
  if (name == "RS256") return JwtAlgorithm::kRs256;
  if (name == "ES256") return JwtAlgorithm::kEs256;
  if (name == "none" || name == "None" || name == "NONE") {
    return Status::Unsupported("alg none is refused: an unsigned token proves nothing");
  }
  if (name.starts_with("HS")) {
    return Status::Unsupported("alg " + std::string(name) +
                               " is refused: an HMAC token keyed with the provider's public key could be forged "
                               "by anyone");
  }
  std::string shown = name.size() <= 16 ? std::string(name) : std::string(name.substr(0, 16)) + "...";
  return Status::Unsupported("alg " + shown + " is not accepted; the provider must sign with RS256 or ES256");
}

Result<Json> DecodeJsonPart(std::string_view part, size_t max_bytes, std::string_view what) {
  if (part.size() > max_bytes * 4 / 3 + 4) {
    return Status::LimitExceeded(std::string(what) + " is larger than " + std::to_string(max_bytes) + " bytes");
  }
  auto decoded = Base64UrlDecode(part);
  if (!decoded.ok()) return Status::InvalidArgument(std::string(what) + " is not base64url");
  APPBAN_ASSIGN_OR_RETURN(Json json, ParseJsonBounded(*decoded, max_bytes, kJwtLimits.max_json_depth, what));
  if (!json.is_object()) return Status::InvalidArgument(std::string(what) + " is not a JSON object");
  return json;
}

Result<std::unique_ptr<BIGNUM, BnFree>> BigNumber(const Json& jwk, const char* member, size_t max_bytes) {
  auto it = jwk.find(member);
  if (it == jwk.end() || !it->is_string()) return Status::InvalidArgument(std::string("no ") + member);
  APPBAN_ASSIGN_OR_RETURN(std::string bytes, Base64UrlDecode(it->get<std::string>()));
  if (bytes.empty() || bytes.size() > max_bytes)
    return Status::InvalidArgument(std::string(member) + " has a bad size");
  std::unique_ptr<BIGNUM, BnFree> bn(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()), nullptr));
  if (!bn) return Status::Internal("BN_bin2bn failed");
  return bn;
}

Result<std::shared_ptr<EVP_PKEY>> FromData(const char* type, OSSL_PARAM_BLD* bld) {
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld));
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) return Status::Internal("OpenSSL key import failed");
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1 || raw == nullptr) {
    return Status::InvalidArgument("not a valid public key");
  }
  return std::shared_ptr<EVP_PKEY>(raw, PkeyFree());
}

Result<std::shared_ptr<EVP_PKEY>> RsaKey(const Json& jwk) {
  APPBAN_ASSIGN_OR_RETURN(auto n, BigNumber(jwk, "n", static_cast<size_t>(kJwtLimits.max_rsa_bits / 8)));
  APPBAN_ASSIGN_OR_RETURN(auto e, BigNumber(jwk, "e", 8));
  int bits = BN_num_bits(n.get());
  if (bits < kJwtLimits.min_rsa_bits) {
    return Status::InvalidArgument("RSA key of " + std::to_string(bits) + " bits is too short");
  }
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
    return Status::Internal("OpenSSL parameter build failed");
  }
  return FromData("RSA", bld.get());
}

Result<std::shared_ptr<EVP_PKEY>> P256Key(const Json& jwk) {
  if (StringOr(jwk, "crv") != "P-256") return Status::InvalidArgument("EC key is not on curve P-256");
  auto x_member = jwk.find("x");
  auto y_member = jwk.find("y");
  if (x_member == jwk.end() || y_member == jwk.end() || !x_member->is_string() || !y_member->is_string()) {
    return Status::InvalidArgument("EC key without x and y");
  }
  APPBAN_ASSIGN_OR_RETURN(std::string x, Base64UrlDecode(x_member->get<std::string>()));
  APPBAN_ASSIGN_OR_RETURN(std::string y, Base64UrlDecode(y_member->get<std::string>()));
  if (x.size() != 32 || y.size() != 32) return Status::InvalidArgument("P-256 coordinates must be 32 bytes");
  std::string point = "\x04" + x + y;
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
    return Status::Internal("OpenSSL parameter build failed");
  }
  return FromData("EC", bld.get());
}

// JWS ES256 signatures are r || s (32 bytes each); OpenSSL verifies DER.
Result<std::string> EcdsaDer(std::string_view raw) {
  if (raw.size() != 64) return Status::PermissionDenied("ES256 signature is not 64 bytes");
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return Status::Internal("ECDSA_SIG_set0 failed");
  }
  int size = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (size <= 0) return Status::Internal("i2d_ECDSA_SIG failed");
  std::string der(static_cast<size_t>(size), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  i2d_ECDSA_SIG(sig.get(), &out);
  return der;
}

Result<UnixSeconds> NumericDate(const Json& claims, const char* name, bool required) {
  auto it = claims.find(name);
  if (it == claims.end()) {
    if (required) return Status::PermissionDenied(std::string("token has no ") + name + " claim");
    return UnixSeconds{-1};
  }
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number_float()) return static_cast<UnixSeconds>(it->get<double>());
  return Status::PermissionDenied(std::string("token claim ") + name + " is not a number");
}

std::string Shown(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 80)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return text.size() > 80 ? out + "..." : out;
}

}  // namespace

std::string_view JwtAlgorithmName(JwtAlgorithm alg) { return alg == JwtAlgorithm::kRs256 ? "RS256" : "ES256"; }

Result<std::string> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return Status::InvalidArgument("not base64url: bad length");
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int value = Base64UrlValue(c);
    if (value < 0) return Status::InvalidArgument("not base64url: unexpected character");
    buffer = (buffer << 6) | static_cast<uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  // Leftover bits must be zero, so each byte string has exactly one encoding.
  if (bits > 0 && (buffer & ((1u << bits) - 1)) != 0) return Status::InvalidArgument("not base64url: trailing bits");
  return out;
}

bool LooksLikeJwt(std::string_view text) {
  size_t dots = 0;
  for (char c : text) {
    if (c == '.') {
      ++dots;
    } else if (Base64UrlValue(c) < 0) {
      return false;
    }
  }
  return dots == 2 && text.size() > 4 && text.front() != '.';
}

Result<Jwt> ParseJwt(std::string_view compact) {
  if (compact.size() > kJwtLimits.max_token_bytes) {
    return Status::LimitExceeded("token is longer than " + std::to_string(kJwtLimits.max_token_bytes) + " bytes");
  }
  size_t first = compact.find('.');
  size_t second = first == std::string_view::npos ? first : compact.find('.', first + 1);
  if (second == std::string_view::npos || compact.find('.', second + 1) != std::string_view::npos) {
    return Status::InvalidArgument("token is not a JWS compact token (three parts separated by '.')");
  }
  Jwt jwt;
  APPBAN_ASSIGN_OR_RETURN(jwt.header,
                          DecodeJsonPart(compact.substr(0, first), kJwtLimits.max_header_bytes, "token header"));
  auto alg = jwt.header.find("alg");
  if (alg == jwt.header.end() || !alg->is_string()) return Status::InvalidArgument("token header has no alg");
  APPBAN_ASSIGN_OR_RETURN(jwt.alg, AlgorithmFromName(alg->get<std::string>()));
  if (auto crit = jwt.header.find("crit"); crit != jwt.header.end()) {
    return Status::Unsupported("token header has critical extensions appban does not implement");
  }
  if (auto kid = jwt.header.find("kid"); kid != jwt.header.end()) {
    if (!kid->is_string() || kid->get<std::string>().size() > kJwtLimits.max_kid_bytes) {
      return Status::InvalidArgument("token header kid is not a short string");
    }
    jwt.kid = kid->get<std::string>();
  }
  APPBAN_ASSIGN_OR_RETURN(jwt.claims, DecodeJsonPart(compact.substr(first + 1, second - first - 1),
                                                     kJwtLimits.max_claims_bytes, "token claims"));
  auto signature = Base64UrlDecode(compact.substr(second + 1));
  if (!signature.ok() || signature->empty())
    return Status::InvalidArgument("token signature is missing or not base64url");
  jwt.signature = std::move(*signature);
  jwt.signing_input = std::string(compact.substr(0, second));
  return jwt;
}

JsonWebKey::JsonWebKey(std::string kid, JwtAlgorithm alg, std::shared_ptr<EVP_PKEY> key)
    : kid_(std::move(kid)), alg_(alg), key_(std::move(key)) {}

Status JsonWebKey::Verify(const Jwt& jwt) const {
  if (jwt.alg != alg_) {
    return Status::PermissionDenied("token is signed with " + std::string(JwtAlgorithmName(jwt.alg)) + " but key " +
                                    Shown(kid_) + " is an " + std::string(JwtAlgorithmName(alg_)) + " key");
  }
  std::string der;
  std::string_view signature = jwt.signature;
  if (alg_ == JwtAlgorithm::kEs256) {
    APPBAN_ASSIGN_OR_RETURN(der, EcdsaDer(jwt.signature));
    signature = der;
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1) {
    return Status::Internal("EVP_DigestVerifyInit failed");
  }
  int verified =
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                       reinterpret_cast<const unsigned char*>(jwt.signing_input.data()), jwt.signing_input.size());
  if (verified != 1) return Status::PermissionDenied("token signature does not verify with key " + Shown(kid_));
  return Status::Ok();
}

Result<JwksParse> ParseJwks(std::string_view text) {
  APPBAN_ASSIGN_OR_RETURN(Json document,
                          ParseJsonBounded(text, kJwtLimits.max_jwks_bytes, kJwtLimits.max_json_depth, "JWKS"));
  if (!document.is_object() || !document.contains("keys") || !document["keys"].is_array()) {
    return Status::InvalidArgument("JWKS is not an object with a keys array");
  }
  JwksParse result;
  size_t index = 0;
  for (const Json& jwk : document["keys"]) {
    std::string where = "key " + std::to_string(index++);
    if (result.keys.size() >= kJwtLimits.max_jwks_keys) {
      result.skipped.push_back(where + ": more than " + std::to_string(kJwtLimits.max_jwks_keys) + " keys");
      continue;
    }
    if (!jwk.is_object()) {
      result.skipped.push_back(where + ": not an object");
      continue;
    }
    std::string kid = StringOr(jwk, "kid");
    if (kid.size() > kJwtLimits.max_kid_bytes) {
      result.skipped.push_back(where + ": kid too long");
      continue;
    }
    std::string use = jwk.contains("use") && jwk["use"].is_string() ? jwk["use"].get<std::string>() : "sig";
    if (use != "sig") {
      result.skipped.push_back(where + ": use " + Shown(use) + " is not sig");
      continue;
    }
    std::string kty = jwk.contains("kty") && jwk["kty"].is_string() ? jwk["kty"].get<std::string>() : "";
    JwtAlgorithm alg;
    Result<std::shared_ptr<EVP_PKEY>> key = Status::InvalidArgument("unsupported");
    if (kty == "RSA") {
      alg = JwtAlgorithm::kRs256;
      key = RsaKey(jwk);
    } else if (kty == "EC") {
      alg = JwtAlgorithm::kEs256;
      key = P256Key(jwk);
    } else {
      result.skipped.push_back(where + ": kty " + Shown(kty) + " is not RSA or EC");
      continue;
    }
    if (jwk.contains("alg") && (!jwk["alg"].is_string() || jwk["alg"].get<std::string>() != JwtAlgorithmName(alg))) {
      result.skipped.push_back(where + ": alg is not " + std::string(JwtAlgorithmName(alg)));
      continue;
    }
    if (!key.ok()) {
      result.skipped.push_back(where + ": " + key.status().message());
      continue;
    }
    result.keys.emplace_back(std::move(kid), alg, std::move(*key));
  }
  return result;
}

Status CheckClaims(const Jwt& jwt, const ClaimsPolicy& policy) {
  const Json& claims = jwt.claims;
  auto iss = claims.find("iss");
  if (iss == claims.end() || !iss->is_string()) return Status::PermissionDenied("token has no iss claim");
  if (iss->get<std::string>() != policy.issuer) {
    return Status::PermissionDenied("token issued by " + Shown(iss->get<std::string>()) + ", not by " + policy.issuer);
  }
  auto aud = claims.find("aud");
  if (aud == claims.end()) return Status::PermissionDenied("token has no aud claim");
  bool for_us = false;
  size_t audiences = 0;
  std::string first_audience;
  if (aud->is_string()) {
    audiences = 1;
    first_audience = aud->get<std::string>();
    for_us = first_audience == policy.audience;
  } else if (aud->is_array()) {
    for (const Json& member : *aud) {
      if (!member.is_string()) return Status::PermissionDenied("token aud has a member that is not a string");
      if (audiences++ == 0) first_audience = member.get<std::string>();
      if (member.get<std::string>() == policy.audience) for_us = true;
    }
  } else {
    return Status::PermissionDenied("token aud is neither a string nor an array");
  }
  if (!for_us) {
    return Status::PermissionDenied("token is for audience " + Shown(first_audience) + ", not " + policy.audience);
  }
  if (auto azp = claims.find("azp"); azp != claims.end() || audiences > 1) {
    if (azp == claims.end() || !azp->is_string() || azp->get<std::string>() != policy.audience) {
      return Status::PermissionDenied("token was issued to another client (azp is not " + policy.audience + ")");
    }
  }
  APPBAN_ASSIGN_OR_RETURN(UnixSeconds exp, NumericDate(claims, "exp", true));
  if (policy.now >= exp + policy.clock_skew_seconds) {
    return Status::Expired("token expired at " + FormatTimestamp(exp));
  }
  APPBAN_ASSIGN_OR_RETURN(UnixSeconds nbf, NumericDate(claims, "nbf", false));
  if (nbf >= 0 && policy.now + policy.clock_skew_seconds < nbf) {
    return Status::PermissionDenied("token not valid before " + FormatTimestamp(nbf));
  }
  APPBAN_ASSIGN_OR_RETURN(UnixSeconds iat, NumericDate(claims, "iat", false));
  if (iat >= 0 && policy.now + policy.clock_skew_seconds < iat) {
    return Status::PermissionDenied("token issued in the future (iat " + FormatTimestamp(iat) + ")");
  }
  auto sub = claims.find("sub");
  if (sub == claims.end() || !sub->is_string() || sub->get<std::string>().empty()) {
    return Status::PermissionDenied("token has no sub claim");
  }
  return Status::Ok();
}

}  // namespace appban::identity
