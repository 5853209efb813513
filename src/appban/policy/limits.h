// Named limits on the untrusted inputs the policy part reads: bundles arriving from the network,
// catalog files a user imports, device inventories. Each limit gives a clear error when hit.
#pragma once

#include <cstddef>
#include <cstdint>

namespace appban::policy {

struct PolicyLimits {
  // A bundle with 100,000 rules of a few hundred bytes each stays far below this.
  uint64_t max_bundle_bytes = 64ull << 20;
  uint64_t max_catalog_bytes = 16ull << 20;
  uint64_t max_inventory_bytes = 64ull << 20;
  uint64_t max_key_file_bytes = 64ull << 10;
  // Our documents nest at most 5 levels; 64 leaves room and keeps the recursive JSON parser far
  // from exhausting the stack on a hostile "[[[[...".
  int max_json_depth = 64;
  size_t max_rules = 100000;
  size_t max_waivers = 1000000;
  size_t max_targets_per_rule = 10000;
  size_t max_inventory_items = 100000;
  size_t max_identifier_length = 1024;
};

inline constexpr PolicyLimits kPolicyLimits{};

}  // namespace appban::policy
