#include "appban/policy/rotation.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "appban/common/crypto.h"
#include "appban/common/file.h"
#include "appban/common/json.h"

namespace appban::policy {
namespace {

constexpr uint64_t kMaxRotationBytes = 4096;

Status Malformed(const std::string& why) { return Status::Corruption("malformed key rotation: " + why); }

std::optional<std::string> HexBytes(std::string_view hex, size_t bytes) {
  if (hex.size() != 2 * bytes || hex.find_first_not_of("0123456789abcdef") != std::string_view::npos)
    return std::nullopt;
  std::string out(bytes, '\0');
  for (size_t i = 0; i < bytes; ++i)
    out[i] = static_cast<char>(std::stoi(std::string(hex.substr(2 * i, 2)), nullptr, 16));
  return out;
}

struct Parsed {
  KeyRotation rotation;
  std::string statement_text;
  std::string signature;
};

Result<Parsed> Parse(std::string_view envelope_text) {
  auto envelope = ParseJsonBounded(envelope_text, kMaxRotationBytes, 4, "key rotation");
  if (!envelope.ok()) return Malformed(envelope.status().message());
  if (!envelope->is_object() || envelope->size() != 3)
    return Malformed("expected exactly format, signature, statement");
  for (const char* member : {"format", "signature", "statement"}) {
    if (!envelope->contains(member) || !(*envelope)[member].is_string())
      return Malformed(std::string(member) + " missing");
  }
  if ((*envelope)["format"] != kKeyRotationFormat) return Malformed("format is not " + std::string(kKeyRotationFormat));
  Parsed parsed;
  parsed.statement_text = (*envelope)["statement"].get<std::string>();
  auto signature = HexBytes((*envelope)["signature"].get<std::string>(), kEd25519SignatureBytes);
  if (!signature) return Malformed("signature is not 128 lowercase hex digits");
  parsed.signature = *signature;
  auto statement = ParseJsonBounded(parsed.statement_text, kMaxRotationBytes, 4, "key rotation statement");
  if (!statement.ok()) return Malformed(statement.status().message());
  auto canonical = CanonicalJson(*statement);
  if (!canonical.ok() || *canonical != parsed.statement_text) return Malformed("statement is not canonical JSON");
  if (!statement->is_object() || statement->size() != 4) {
    return Malformed("statement must hold exactly issued_at, new_key, new_key_id, old_key_id");
  }
  for (const char* member : {"issued_at", "new_key", "new_key_id", "old_key_id"}) {
    if (!statement->contains(member) || !(*statement)[member].is_string())
      return Malformed(std::string(member) + " missing");
  }
  auto at = ParseTimestamp((*statement)["issued_at"].get<std::string>());
  if (!at.ok()) return Malformed("issued_at: " + at.status().message());
  parsed.rotation.issued_at = *at;
  auto raw = HexBytes((*statement)["new_key"].get<std::string>(), parsed.rotation.new_key.raw.size());
  if (!raw) return Malformed("new_key is not 64 lowercase hex digits");
  std::copy(raw->begin(), raw->end(), parsed.rotation.new_key.raw.begin());
  parsed.rotation.new_key.key_id = KeyIdOf(parsed.rotation.new_key.raw);
  if ((*statement)["new_key_id"] != parsed.rotation.new_key.key_id)
    return Malformed("new_key_id is not the new key's id");
  parsed.rotation.old_key_id = (*statement)["old_key_id"].get<std::string>();
  if (parsed.rotation.old_key_id == parsed.rotation.new_key.key_id) return Malformed("a key cannot rotate to itself");
  return parsed;
}

}  // namespace

Result<std::string> SignKeyRotation(const SigningKey& old_key, const PublicKey& new_key, UnixSeconds issued_at) {
  APPBAN_ASSIGN_OR_RETURN(std::string statement, CanonicalJson(Json{{"issued_at", FormatTimestamp(issued_at)},
                                                                    {"new_key", HexLower(Bytes(new_key.raw))},
                                                                    {"new_key_id", new_key.key_id},
                                                                    {"old_key_id", old_key.key_id()}}));
  std::string message(kKeyRotationContext);
  message += statement;
  APPBAN_ASSIGN_OR_RETURN(std::string signature, old_key.Sign(message));
  return CanonicalJson(
      Json{{"format", kKeyRotationFormat}, {"signature", HexLower(AsBytes(signature))}, {"statement", statement}});
}

Result<KeyRotation> ParseKeyRotation(std::string_view envelope) {
  APPBAN_ASSIGN_OR_RETURN(Parsed parsed, Parse(envelope));
  return parsed.rotation;
}

Result<KeyRotation> VerifyKeyRotation(std::string_view envelope, const PublicKey& old_key) {
  APPBAN_ASSIGN_OR_RETURN(Parsed parsed, Parse(envelope));
  if (parsed.rotation.old_key_id != old_key.key_id) {
    return Status::PermissionDenied("key rotation is from key " + parsed.rotation.old_key_id + ", not from " +
                                    old_key.key_id);
  }
  std::string message(kKeyRotationContext);
  message += parsed.statement_text;
  if (!VerifySignature(old_key, message, parsed.signature)) {
    return Status::BadSignature("key rotation from " + old_key.key_id + " does not verify: forged or altered");
  }
  return parsed.rotation;
}

Result<std::vector<PublicKey>> FollowKeyRotations(const std::vector<PublicKey>& pinned,
                                                  const std::vector<std::string>& statements,
                                                  std::vector<KeyRotation>* followed) {
  if (statements.size() > kMaxKeyRotations) return Status::LimitExceeded("too many key rotation statements");
  std::vector<PublicKey> keys = pinned;
  for (const std::string& text : statements) {
    APPBAN_ASSIGN_OR_RETURN(KeyRotation claimed, ParseKeyRotation(text));
    auto old =
        std::find_if(keys.begin(), keys.end(), [&](const PublicKey& k) { return k.key_id == claimed.old_key_id; });
    if (old == keys.end()) continue;
    APPBAN_ASSIGN_OR_RETURN(KeyRotation rotation, VerifyKeyRotation(text, *old));
    keys.erase(old);
    bool known =
        std::any_of(keys.begin(), keys.end(), [&](const PublicKey& k) { return k.key_id == rotation.new_key.key_id; });
    if (!known) keys.push_back(rotation.new_key);
    if (followed != nullptr) followed->push_back(std::move(rotation));
  }
  return keys;
}

Status SaveKeyRotation(const std::string& dir, const std::string& old_key_id, const std::string& envelope) {
  return WriteFileAtomically(dir + "/" + old_key_id + ".rotation", envelope + "\n", 0644);
}

Result<std::vector<std::string>> LoadKeyRotations(const std::string& dir, const std::string& active_key_id) {
  std::map<std::string, std::pair<std::string, std::string>> by_new_key;  // new key id -> (old key id, text)
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    if (entry.path().extension() != ".rotation") continue;
    APPBAN_ASSIGN_OR_RETURN(std::string text, ReadFileToString(entry.path().string(), kMaxRotationBytes));
    while (!text.empty() && text.back() == '\n') text.pop_back();
    auto rotation = ParseKeyRotation(text);
    if (!rotation.ok())
      return Status(rotation.status().code(), entry.path().string() + ": " + rotation.status().message());
    by_new_key[rotation->new_key.key_id] = {rotation->old_key_id, text};
  }
  std::vector<std::string> chain;
  std::string current = active_key_id;
  while (chain.size() < kMaxKeyRotations) {
    auto link = by_new_key.find(current);
    if (link == by_new_key.end()) break;
    chain.insert(chain.begin(), link->second.second);
    current = link->second.first;
    by_new_key.erase(link);  // a cycle ends the walk
  }
  return chain;
}

}  // namespace appban::policy
