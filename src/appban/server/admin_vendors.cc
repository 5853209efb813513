// Admin API: vendor records — list, and merge new identifiers into one (or create it). A rule
// that targets "vendor:NAME" bans all of the vendor's identifiers, so a merge that adds to a vendor
// an approved or published rule targets waits for the quorum (decide::PolicyAdmin::MergeVendor).
#include <algorithm>

#include "appban/policy/model.h"
#include "appban/server/admin_handlers.h"
#include "appban/server/config.h"

namespace appban::server::admin {

HttpResponse ListVendors(Call& call) {
  return ListPage(
      call, "vendors",
      [&](std::string_view after, size_t limit) -> Result<std::vector<policy::Vendor>> {
        // Vendor records are reference data (tens, a few hundred at most): the page is cut here.
        APPBAN_ASSIGN_OR_RETURN(auto vendors, call.context.store->ListVendors());
        auto first = std::upper_bound(vendors.begin(), vendors.end(), after,
                                      [](std::string_view key, const policy::Vendor& v) { return key < v.name; });
        std::vector<policy::Vendor> page(first, first + std::min<size_t>(limit, vendors.end() - first));
        return page;
      },
      [](const policy::Vendor& vendor) { return vendor.name; }, policy::VendorToJson, CursorKey::kName);
}

HttpResponse MergeVendor(Call& call) {
  auto body = call.Body(false);
  if (!body.ok()) return ErrorFrom(body.status());
  if (Status s = CheckMembers(*body, {"name", "country", "identifiers", "note"}, "vendor"); !s.ok()) {
    return ErrorFrom(s);
  }
  if (auto it = body->find("identifiers"); it != body->end() && it->is_array()) {
    for (size_t i = 0; i < it->size(); ++i) {
      if ((*it)[i].is_object()) {
        Status s =
            CheckMembers((*it)[i], {"kind", "value", "unverified"}, "vendor: identifiers[" + std::to_string(i) + "]");
        if (!s.ok()) return ErrorFrom(s);
      }
    }
  }
  auto note = StringMember(*body, "note", false, store::ChangeLimits::kMaxNoteBytes);
  if (!note.ok()) return ErrorFrom(note.status().WithContext("vendor"));
  Json vendor_json = *body;
  vendor_json.erase("note");
  auto vendor = policy::VendorFromJson(vendor_json);
  if (!vendor.ok()) return BadRequest(vendor.status().message());
  decide::PolicyAdmin admin = call.Admin();
  return ChangeAnswer(call, admin, admin.MergeVendor(*vendor, call.config().identity.quorum, *note));
}

}  // namespace appban::server::admin
