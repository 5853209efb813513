// Fuzzes what the server parses from devices (check-in, enrolment) and what agents parse from the
// server (check-in, enrolment and poll answers). Properties beyond "no crash": an accepted check-in
// re-serializes to a request that parses again with the same inventory hash and events.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "appban/protocol/messages.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace protocol = appban::protocol;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto checkin = protocol::ParseCheckinRequest(text);
  if (checkin.ok()) {
    auto again = protocol::ParseCheckinRequest(protocol::ToJson(*checkin).dump());
    if (!again.ok()) __builtin_trap();
    if (again->inventory_hash != checkin->inventory_hash) __builtin_trap();
    if (again->events.size() != checkin->events.size()) __builtin_trap();
    if (checkin->inventory && protocol::InventoryHash(*checkin->inventory) != checkin->inventory_hash) __builtin_trap();
  }
  (void)protocol::ParseEnrollRequest(text);
  (void)protocol::ParseEnrollResponse(text);
  (void)protocol::ParseCheckinResponse(text);
  (void)protocol::ParsePollResponse(text);
  (void)protocol::BearerCredential(text);
  return 0;
}
