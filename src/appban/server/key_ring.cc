#include "appban/server/key_ring.h"

#include <filesystem>

#include "appban/common/file.h"
#include "appban/policy/rotation.h"

namespace appban::server {

Result<KeyRing> KeyRing::Load(const std::string& key_dir) {
  KeyRing ring(key_dir);
  APPBAN_RETURN_IF_ERROR(ring.LoadAll());
  return ring;
}

Status KeyRing::LoadAll() {
  APPBAN_ASSIGN_OR_RETURN(policy::SigningKey key, policy::LoadActiveKey(key_dir_));
  APPBAN_ASSIGN_OR_RETURN(std::vector<std::string> rotations, policy::LoadKeyRotations(key_dir_, key.key_id()));
  std::vector<policy::PublicKey> trusted{key.public_key()};
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(key_dir_, error)) {
    if (entry.path().extension() != ".pub") continue;
    auto pub = policy::LoadPublicKeyFile(entry.path().string());
    if (pub.ok() && pub->key_id != key.key_id()) trusted.push_back(*pub);
  }
  previous_ = std::move(active_);
  active_ = std::make_shared<const policy::SigningKey>(std::move(key));
  trusted_ = std::move(trusted);
  rotations_ = std::move(rotations);
  return Status::Ok();
}

Result<bool> KeyRing::Refresh() {
  auto id = ReadFileToString(key_dir_ + "/active", 256);
  if (!id.ok()) return id.status();
  std::string key_id = *id;
  while (!key_id.empty() && (key_id.back() == '\n' || key_id.back() == '\r')) key_id.pop_back();
  if (key_id == active_->key_id()) return false;
  APPBAN_RETURN_IF_ERROR(LoadAll());
  return true;
}

}  // namespace appban::server
