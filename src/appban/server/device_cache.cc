#include "appban/server/device_cache.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

namespace appban::server {

Result<DeviceGenerations> DeviceGenerations::Create() {
  const size_t bytes = sizeof(std::atomic<uint64_t>) * (kGenerationSlots + 1);  // + the epoch
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) return Status::Unavailable(std::string("device generations: mmap: ") + std::strerror(errno));
  // The fresh mapping is zeroed; begin the counters' lifetimes (their destructors are trivial).
  auto* slots = static_cast<std::atomic<uint64_t>*>(base);
  for (size_t i = 0; i <= kGenerationSlots; ++i) std::construct_at(slots + i, 0);
  return DeviceGenerations(slots);
}

DeviceGenerations::DeviceGenerations(DeviceGenerations&& other) noexcept
    : slots_(std::exchange(other.slots_, nullptr)) {}

DeviceGenerations& DeviceGenerations::operator=(DeviceGenerations&& other) noexcept {
  if (this != &other) {
    Unmap();
    slots_ = std::exchange(other.slots_, nullptr);
  }
  return *this;
}

DeviceGenerations::~DeviceGenerations() { Unmap(); }

void DeviceGenerations::Unmap() {
  if (slots_ != nullptr) munmap(slots_, sizeof(std::atomic<uint64_t>) * (kGenerationSlots + 1));
  slots_ = nullptr;
}

size_t DeviceGenerations::SlotOf(std::string_view device_id) {
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : device_id) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return static_cast<size_t>(hash) & (kGenerationSlots - 1);
}

CachedDevice* DeviceCache::Find(const std::string& device_id) {
  auto it = entries_.find(device_id);
  if (it == entries_.end()) return nullptr;
  if (it->second.generation != generations_.Current(device_id) || it->second.epoch != generations_.Epoch()) {
    entries_.erase(it);
    return nullptr;
  }
  return &it->second;
}

CachedDevice& DeviceCache::Store(const store::Device& device, const Sha256Digest& secret_digest, Snapshot snapshot) {
  if (entries_.size() >= max_entries_ && !entries_.contains(device.id)) entries_.clear();
  CachedDevice& entry = entries_[device.id];
  int64_t last_seen_written = entry.last_seen_written;
  entry = CachedDevice{};
  entry.generation = snapshot.generation;
  entry.epoch = snapshot.epoch;
  entry.secret_digest = secret_digest;
  entry.group = device.group;
  entry.applied_version = device.applied_version;
  entry.applied_rules_hash = device.applied_rules_hash;
  entry.inventory_hash = device.inventory_hash;
  entry.evaluated_version = device.evaluated_version;
  entry.evaluated_inventory_hash = device.evaluated_inventory_hash;
  entry.last_event_seq = device.last_event_seq;
  entry.rules_hash_mismatch = device.rules_hash_mismatch;
  entry.last_seen_written = last_seen_written;
  return entry;
}

void DeviceCache::AfterWrite(const store::CheckinWrite& write, int64_t highest_seq, uint64_t generation_before) {
  auto it = entries_.find(write.device_id);
  if (it == entries_.end()) return;
  CachedDevice& entry = it->second;
  if (entry.generation != generation_before) {
    entries_.erase(it);  // another change came in between: read the row again next time
    return;
  }
  if (write.applied) {
    entry.applied_version = write.applied->version;
    entry.applied_rules_hash = write.applied->rules_hash;
  }
  if (write.inventory) entry.inventory_hash = write.inventory->hash;
  if (write.rules_hash) entry.rules_hash_mismatch = write.rules_hash->mismatch;
  if (write.evaluated) {
    entry.evaluated_version = write.evaluated->version;
    entry.evaluated_inventory_hash = write.evaluated->inventory_hash;
  }
  entry.last_event_seq = highest_seq;
  entry.generation = generation_before + 1;
}

bool ChangesCachedDevice(const store::CheckinWrite& write) { return store::ChangesMoreThanLastSeen(write); }

}  // namespace appban::server
