// The newest published bundle as one server worker knows it: the signed envelope it serves, the
// parsed bundle and its rule index for evaluation, and when each rule was first published (which
// compliance timing counts from). Its own header so that verify/ can evaluate against a bundle
// without including server/ headers. Plain data, not synchronised: a worker reads and replaces it
// on its io_context thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "appban/policy/bundle.h"
#include "appban/policy/evaluate.h"

namespace appban::verify {

struct PublishedBundle {
  int64_t version = 0;  // 0: nothing published yet
  UnixSeconds issued_at = 0;
  std::string rules_hash;
  std::shared_ptr<const std::string> envelope;  // signed envelope text, shared by every response
  std::shared_ptr<const policy::Bundle> bundle;
  std::shared_ptr<const policy::PolicyIndex> index;
  // For each rule in the bundle: the version and time of the first bundle that carried it (when
  // the ban "was published", which compliance timing counts from).
  std::map<std::string, std::pair<int64_t, UnixSeconds>, std::less<>> rule_first_published;
};

}  // namespace appban::verify
