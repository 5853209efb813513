// What the device protocol needs of each device, kept in the worker's memory so that a check-in
// or a long-poll does not read the database to authenticate. docs/architecture.md ("Device
// cache") explains the design; in short:
//
// DeviceGenerations is one shared anonymous mapping (created by the supervisor before it forks
// the workers) of kGenerationSlots counters; a device id hashes to one slot. Whoever commits a
// change to what the cache holds for a device — the check-in writer, a revocation — increments the
// device's slot AFTER the commit. A worker's cached entry remembers the slot value it was read or
// last updated at, and is used only while the slot still holds that value; otherwise the device
// is read from the database again. Two devices sharing a slot only cost each other an extra read.
//
// The worker that commits a check-in also updates its own entry without a read: the writer's
// increment returns the value before it, and when that is the entry's own value nobody else
// changed the device in between, so entry + this write = the database row.
//
// Thread-safety: DeviceGenerations is safe from any thread and process sharing the mapping;
// DeviceCache belongs to one worker's io_context thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "appban/common/crypto.h"
#include "appban/common/status.h"
#include "appban/store/fleet.h"

namespace appban::server {

inline constexpr size_t kGenerationSlots = size_t{1} << 20;  // 8 MiB; ~9% of 100k devices share a slot

class DeviceGenerations {
 public:
  static Result<DeviceGenerations> Create();
  DeviceGenerations(DeviceGenerations&& other) noexcept;
  DeviceGenerations& operator=(DeviceGenerations&& other) noexcept;
  DeviceGenerations(const DeviceGenerations&) = delete;
  DeviceGenerations& operator=(const DeviceGenerations&) = delete;
  ~DeviceGenerations();

  uint64_t Current(std::string_view device_id) const {
    return slots_[SlotOf(device_id)].load(std::memory_order_acquire);
  }
  // REQUIRES: the change it announces is committed. Returns the value before the increment.
  uint64_t Bump(std::string_view device_id) {
    return slots_[SlotOf(device_id)].fetch_add(1, std::memory_order_acq_rel);
  }
  // One more counter for "every cached device is stale": the supervisor bumps it when a worker
  // died, since the dead worker may have committed writes it never announced.
  uint64_t Epoch() const { return slots_[kGenerationSlots].load(std::memory_order_acquire); }
  void BumpEpoch() { slots_[kGenerationSlots].fetch_add(1, std::memory_order_acq_rel); }

 private:
  explicit DeviceGenerations(std::atomic<uint64_t>* slots) : slots_(slots) {}
  // FNV-1a: the same in every process, whatever the standard library's hash does.
  static size_t SlotOf(std::string_view device_id);
  void Unmap();
  std::atomic<uint64_t>* slots_ = nullptr;
};

struct CachedDevice {
  uint64_t generation = 0;       // slot value this entry matches
  uint64_t epoch = 0;            // DeviceGenerations::Epoch() when the entry was read
  Sha256Digest secret_digest{};  // SHA-256 of the credential's secret text, as the store keeps it
  std::string group;
  int64_t applied_version = 0;
  std::string applied_rules_hash;
  std::string inventory_hash;
  int64_t evaluated_version = 0;
  std::string evaluated_inventory_hash;
  int64_t last_event_seq = 0;
  int64_t last_seen_written = 0;  // when this worker last wrote last_seen (not stored)
};

class DeviceCache {
 public:
  // Entries beyond `max_entries` clear the cache (a bound, not an eviction policy: a worker serves
  // far fewer devices than that).
  DeviceCache(DeviceGenerations& generations, size_t max_entries)
      : generations_(generations), max_entries_(max_entries) {}

  // The entry when present and still current, else nullptr.
  CachedDevice* Find(const std::string& device_id);
  // Read before reading the device from the database, and handed to Store.
  struct Snapshot {
    uint64_t generation = 0;
    uint64_t epoch = 0;
  };
  Snapshot Take(const std::string& device_id) const { return {generations_.Current(device_id), generations_.Epoch()}; }
  CachedDevice& Store(const store::Device& device, const Sha256Digest& secret_digest, Snapshot snapshot);
  // After this worker's write for the device committed and the writer bumped the slot (which held
  // `generation_before`): brings the entry up to date, or drops it if someone else wrote too.
  void AfterWrite(const store::CheckinWrite& write, int64_t highest_seq, uint64_t generation_before);
  void Erase(const std::string& device_id) { entries_.erase(device_id); }
  size_t size() const { return entries_.size(); }

 private:
  DeviceGenerations& generations_;
  size_t max_entries_;
  std::unordered_map<std::string, CachedDevice> entries_;
};

// True when the write changes what CachedDevice holds (a write of last_seen alone does not).
bool ChangesCachedDevice(const store::CheckinWrite& write);

}  // namespace appban::server
