// The receiver for an Apple MDM's webhook: NanoMDM (-webhook-url) and MicroMDM
// (-command-webhook-url) POST every device answer to it as a JSON event (apple_results.h), and it
// records each command result in the connector's results file, which `appban mdm
// plan|apply|status` read. `appban mdm apple-webhook` runs one.
//
// It listens on plain HTTP: put it on loopback next to the MDM, or behind the TLS proxy that
// fronts the MDM. A `path_secret` makes the URL the credential (POST /webhook/SECRET); any other
// path gets 404. Events: 200 once recorded (or ignored, for check-in events); 400 for a malformed
// event, so the MDM's log shows it.
//
// Thread-safety: Start/Stop from one thread; events are handled on the receiver's own thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "appban/common/status.h"
#include "appban/common/time.h"

namespace appban::mdm {

struct AppleWebhookOptions {
  std::string results_path;  // DATA_DIR/mdm/apple-NAME-results.json
  std::string path_secret;   // "" = POST /webhook
  std::function<UnixSeconds()> now;
};

class AppleWebhookReceiver {
 public:
  // Binds `address`:`port` (0 picks one) and starts serving on a thread of its own.
  static Result<std::unique_ptr<AppleWebhookReceiver>> Start(const std::string& address, uint16_t port,
                                                             AppleWebhookOptions options);
  ~AppleWebhookReceiver();  // stops

  uint16_t port() const;
  std::string path() const;  // "/webhook" or "/webhook/SECRET"
  int recorded() const;      // command results recorded so far
  int rejected() const;      // malformed events refused so far

 private:
  struct Impl;
  explicit AppleWebhookReceiver(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace appban::mdm
