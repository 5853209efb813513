#include "appban/apk/apk.h"

#include <algorithm>
#include <charconv>
#include <string_view>

#include "appban/common/crypto.h"
#include "appban/common/parallel.h"

namespace appban::apk {
namespace {

// Android installs classes.dex, then classes2.dex, classes3.dex, ... stopping at the first gap.
// Returns the multidex index of `name` (1 for classes.dex), or 0 when it is not a top-level
// classesN.dex name.
int DexIndex(std::string_view name) {
  if (!name.starts_with("classes") || !name.ends_with(".dex")) return 0;
  std::string_view middle = name.substr(7, name.size() - 7 - 4);
  if (middle.empty()) return 1;
  if (middle.front() == '0') return 0;
  int index = 0;
  auto [end, error] = std::from_chars(middle.data(), middle.data() + middle.size(), index);
  if (error != std::errc() || end != middle.data() + middle.size() || index < 2) return 0;
  return index;
}

}  // namespace

Apk::Apk(Apk&&) noexcept = default;
Apk& Apk::operator=(Apk&&) noexcept = default;
Apk::~Apk() = default;

Result<Apk> Apk::Open(const std::string& path, const Limits& limits) {
  APPBAN_ASSIGN_OR_RETURN(MappedFile mapped, MappedFile::Open(path));
  Apk apk;
  apk.path_ = path;
  apk.mapped_ = std::make_unique<MappedFile>(std::move(mapped));
  apk.bytes_ = apk.mapped_->bytes();
  APPBAN_RETURN_IF_ERROR(apk.Load(limits));
  return apk;
}

Result<Apk> Apk::FromBytes(Bytes bytes, std::string display_name, const Limits& limits) {
  Apk apk;
  apk.path_ = std::move(display_name);
  apk.bytes_ = bytes;
  APPBAN_RETURN_IF_ERROR(apk.Load(limits));
  return apk;
}

Status Apk::Load(const Limits& limits) {
  auto zip = ZipArchive::Open(bytes_, limits);
  if (!zip.ok()) {
    if (zip.status().code() == StatusCode::kNotRecognized) {
      return Status::NotRecognized("not an APK: " + zip.status().message());
    }
    return zip.status();
  }
  zip_ = std::make_unique<ZipArchive>(std::move(zip).value());
  anomalies_ = zip_->anomalies();
  uint64_t budget = limits.max_total_inflated_bytes;

  // Manifest (required: Android refuses a package without one).
  const ZipEntry* manifest_entry = zip_->Find("AndroidManifest.xml");
  if (manifest_entry == nullptr) return Status::NotRecognized("not an APK: no AndroidManifest.xml entry");
  if (manifest_entry->uncompressed_size > limits.max_manifest_bytes) {
    return Status::LimitExceeded("AndroidManifest.xml: " + std::to_string(manifest_entry->uncompressed_size) +
                                 " bytes exceeds the limit of " + std::to_string(limits.max_manifest_bytes));
  }
  APPBAN_ASSIGN_OR_RETURN(Buffer manifest_bytes, zip_->Read(*manifest_entry, &budget, &anomalies_));
  auto document = ParseAxml(manifest_bytes, limits, &anomalies_);
  if (!document.ok()) return document.status().WithContext("AndroidManifest.xml");

  // Resources are optional; an unreadable table costs the label, not the whole report.
  if (const ZipEntry* arsc = zip_->Find("resources.arsc")) {
    if (arsc->uncompressed_size > limits.max_resources_bytes) {
      AddAnomaly(&anomalies_, "arsc.too_large", "resources.arsc",
                 "resource table of " + std::to_string(arsc->uncompressed_size) + " bytes exceeds the limit of " +
                     std::to_string(limits.max_resources_bytes) + "; resource references left unresolved");
    } else {
      auto arsc_bytes = zip_->Read(*arsc, &budget, &anomalies_);
      if (arsc_bytes.ok()) {
        auto table = ResourceTable::Parse(std::move(arsc_bytes).value(), limits, &anomalies_);
        if (table.ok()) {
          resources_ = std::make_unique<ResourceTable>(std::move(table).value());
        } else {
          AddAnomaly(&anomalies_, "arsc.unreadable", "resources.arsc", table.status().ToString());
        }
      } else {
        AddAnomaly(&anomalies_, "arsc.unreadable", "resources.arsc", arsc_bytes.status().ToString());
      }
    }
  }

  auto manifest = ExtractManifest(*document, resources_.get(), &anomalies_);
  if (!manifest.ok()) return manifest.status().WithContext("AndroidManifest.xml");
  manifest_ = std::move(manifest).value();
  LoadNetworkSecurityConfig(limits, &budget);

  // The signature check hashes the whole file once more (the v2/v3 digest over 1 MB chunks): it
  // runs beside the DEX reads and the file's hash rather than after them, on a free core.
  Result<SigningInfo> signing = Status::Internal("signatures not read");
  Anomalies signing_anomalies;
  APPBAN_RETURN_IF_ERROR(
      LoadDexFiles(limits, &budget, [&] { signing = ReadSigningInfo(*zip_, limits, &signing_anomalies); }));

  // Native libraries: lib/<abi>/<name>.so, the layout the installer extracts from.
  for (const ZipEntry& entry : zip_->entries()) {
    std::string_view name = entry.name;
    if (!name.starts_with("lib/") || !name.ends_with(".so")) continue;
    std::string_view rest = name.substr(4);
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos || slash == 0) continue;
    std::string_view file = rest.substr(slash + 1);
    if (file.empty() || file.find('/') != std::string_view::npos) continue;
    native_.by_abi[std::string(rest.substr(0, slash))].emplace_back(file);
  }
  for (auto& [abi, files] : native_.by_abi) {
    std::sort(files.begin(), files.end());
    files.erase(std::unique(files.begin(), files.end()), files.end());
  }

  anomalies_.insert(anomalies_.end(), std::make_move_iterator(signing_anomalies.begin()),
                    std::make_move_iterator(signing_anomalies.end()));
  APPBAN_ASSIGN_OR_RETURN(signing_, std::move(signing));
  return Status::Ok();
}

// DEX files in multidex order; Android stops at the first missing classesN.dex. They are the bulk
// of the work (a large app carries tens of MB of bytecode), so every file is inflated and parsed
// on its own thread, beside the SHA-256 of the whole file and the caller's `alongside` work, each
// into its own slot and anomaly list; the slots are then merged in multidex order, so the report
// does not depend on timing.
Status Apk::LoadDexFiles(const Limits& limits, uint64_t* budget, const std::function<void()>& alongside) {
  std::vector<std::pair<int, const ZipEntry*>> dex_entries;
  for (const ZipEntry& entry : zip_->entries()) {
    int index = DexIndex(entry.name);
    if (index > 0 && zip_->Find(entry.name) == &entry) dex_entries.emplace_back(index, &entry);
  }
  std::sort(dex_entries.begin(), dex_entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  if (dex_entries.size() > limits.max_dex_files) {
    return Status::LimitExceeded(std::to_string(dex_entries.size()) + " DEX files exceed the limit of " +
                                 std::to_string(limits.max_dex_files));
  }

  struct Slot {
    const ZipEntry* entry = nullptr;
    uint64_t budget = 0;  // what is left of the inflation budget before this entry, in multidex order
    Anomalies anomalies;
    Status read = Status::Ok();
    Result<DexFile> dex = Status::Internal("not read");
  };
  std::vector<Slot> slots(dex_entries.size());
  int expected = 1;
  for (size_t i = 0; i < dex_entries.size(); ++i) {
    const auto& [index, entry] = dex_entries[i];
    Slot& slot = slots[i];
    slot.entry = entry;
    if (index != expected) {
      AddAnomaly(&slot.anomalies, "dex.multidex_gap", entry->name,
                 "classes" + (expected == 1 ? std::string() : std::to_string(expected)) +
                     ".dex is missing, so Android never loads " + entry->name + " or later files; read anyway");
      expected = index;
    }
    ++expected;
    // The budget is split before anything is inflated, as reading one after the other would.
    slot.budget = *budget;
    *budget -= std::min(*budget, ZipArchive::DeclaredSize(*entry));
  }

  // Work items: every DEX file, largest first so that the longest item starts at once, and the
  // whole-file passes.
  std::vector<size_t> order(slots.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return ZipArchive::DeclaredSize(*slots[a].entry) > ZipArchive::DeclaredSize(*slots[b].entry);
  });
  // The two whole-file passes (the hash, then `alongside`) come right after the largest DEX file.
  constexpr size_t kHash = SIZE_MAX, kAlongside = SIZE_MAX - 1;
  order.insert(order.begin() + std::min<size_t>(1, order.size()), {kHash, kAlongside});
  ParallelFor(order.size(), 0, [&](size_t item) {
    if (order[item] == kHash) {
      sha256_ = Sha256Hex(bytes_);
      return;
    }
    if (order[item] == kAlongside) {
      alongside();
      return;
    }
    Slot& slot = slots[order[item]];
    auto bytes = zip_->Read(*slot.entry, &slot.budget, &slot.anomalies);
    if (!bytes.ok()) {
      slot.read = bytes.status();
      return;
    }
    slot.dex = DexFile::Parse(slot.entry->name, std::move(bytes).value(), limits, &slot.anomalies);
  });
  // Hashing and reading touched the file's pages; what comes next needs few of them resident.
  if (mapped_) mapped_->ReleasePages(0, bytes_.size());

  for (Slot& slot : slots) {
    anomalies_.insert(anomalies_.end(), std::make_move_iterator(slot.anomalies.begin()),
                      std::make_move_iterator(slot.anomalies.end()));
    APPBAN_RETURN_IF_ERROR(slot.read);
    if (!slot.dex.ok()) {
      // A safety limit stops the whole read. A broken DEX does not: refusing to report on an app
      // because it carries one corrupt classesN.dex would hand malware an easy way to stay
      // unassessed. The rest is read and the broken file is an anomaly the assessment scores.
      if (slot.dex.status().code() == StatusCode::kLimitExceeded)
        return slot.dex.status().WithContext(slot.entry->name);
      AddAnomaly(
          &anomalies_, "dex.unreadable", slot.entry->name,
          slot.dex.status().ToString() + "; its classes, strings and method references are missing from the report");
      continue;
    }
    dex_files_.push_back(std::move(slot.dex).value());
  }
  return Status::Ok();
}

// Optional like resources: a config that cannot be read is an anomaly, and the assessment then
// falls back to the manifest's flags.
void Apk::LoadNetworkSecurityConfig(const Limits& limits, uint64_t* budget) {
  const std::string& path = manifest_.flags.network_security_config_path;
  if (path.empty()) return;
  const ZipEntry* entry = zip_->Find(path);
  if (entry == nullptr) {
    AddAnomaly(&anomalies_, "nsc.missing", path, "the manifest names a network security config that is not in the APK");
    return;
  }
  if (entry->uncompressed_size > limits.max_manifest_bytes) {
    AddAnomaly(&anomalies_, "nsc.unreadable", path, "network security config larger than the manifest limit");
    return;
  }
  auto bytes = zip_->Read(*entry, budget, &anomalies_);
  if (!bytes.ok()) {
    AddAnomaly(&anomalies_, "nsc.unreadable", path, bytes.status().ToString());
    return;
  }
  auto document = ParseAxml(*bytes, limits, &anomalies_);
  if (!document.ok()) {
    AddAnomaly(&anomalies_, "nsc.unreadable", path, document.status().ToString());
    return;
  }
  int target_sdk = manifest_.target_sdk.value_or(manifest_.min_sdk.value_or(1));
  network_security_config_ = ReadNetworkSecurityConfig(*document, path, target_sdk, &anomalies_);
}

uint64_t Apk::total_dex_classes() const {
  uint64_t total = 0;
  for (const DexFile& dex : dex_files_) total += dex.class_count();
  return total;
}
uint64_t Apk::total_dex_methods() const {
  uint64_t total = 0;
  for (const DexFile& dex : dex_files_) total += dex.method_count();
  return total;
}
uint64_t Apk::total_dex_strings() const {
  uint64_t total = 0;
  for (const DexFile& dex : dex_files_) total += dex.string_count();
  return total;
}

}  // namespace appban::apk
