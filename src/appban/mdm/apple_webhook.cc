#include "appban/mdm/apple_webhook.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <ctime>
#include <future>
#include <thread>

#include "appban/common/mutex.h"
#include "appban/common/thread_annotations.h"
#include "appban/mdm/apple_results.h"
#include "appban/mdm/limits.h"
#include "appban/net/server.h"

namespace appban::mdm {

struct AppleWebhookReceiver::Impl {
  AppleWebhookOptions options;
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{boost::asio::make_work_guard(io)};
  std::unique_ptr<net::HttpServer> http;
  std::thread thread;
  uint16_t port = 0;
  mutable Mutex mutex;
  int recorded GUARDED_BY(mutex) = 0;
  int rejected GUARDED_BY(mutex) = 0;

  std::string Path() const { return options.path_secret.empty() ? "/webhook" : "/webhook/" + options.path_secret; }

  net::HttpResponse Handle(const net::HttpRequest& request) {
    net::HttpResponse response;
    response.content_type = "text/plain";
    if (request.path != Path()) {
      response.status = 404;
      return response;
    }
    if (request.method != "POST") {
      response.status = 405;
      return response;
    }
    MutexLock lock(mutex);  // one writer of the results file at a time
    const UnixSeconds now = options.now ? options.now() : static_cast<UnixSeconds>(std::time(nullptr));
    Status status = RecordWebhookEvent(options.results_path, request.body, now);
    if (status.ok()) {
      ++recorded;
      response.body = "recorded\n";
    } else if (status.code() == StatusCode::kNotFound) {
      response.body = "ignored\n";
    } else {
      ++rejected;
      response.status = status.code() == StatusCode::kUnavailable ? 503 : 400;
      response.body = status.message() + "\n";
    }
    return response;
  }
};

AppleWebhookReceiver::AppleWebhookReceiver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<AppleWebhookReceiver>> AppleWebhookReceiver::Start(const std::string& address, uint16_t port,
                                                                          AppleWebhookOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  Impl& state = *impl;
  state.http = std::make_unique<net::HttpServer>(
      state.io, net::ServerOptions{},
      [&state](net::HttpRequest request, net::Responder respond) { respond(state.Handle(request)); },
      [](std::string_view, std::string_view) -> size_t { return kMdmLimits.max_webhook_event_bytes; }, nullptr);
  APPBAN_ASSIGN_OR_RETURN(state.port, state.http->Listen(address, port));
  state.thread = std::thread([&state] { state.io.run(); });
  return std::unique_ptr<AppleWebhookReceiver>(new AppleWebhookReceiver(std::move(impl)));
}

AppleWebhookReceiver::~AppleWebhookReceiver() {
  if (!impl_->thread.joinable()) return;
  std::promise<void> done;
  boost::asio::post(impl_->io, [this, &done] {
    impl_->http.reset();
    done.set_value();
  });
  done.get_future().wait();
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
}

uint16_t AppleWebhookReceiver::port() const { return impl_->port; }
std::string AppleWebhookReceiver::path() const { return impl_->Path(); }
int AppleWebhookReceiver::recorded() const {
  MutexLock lock(impl_->mutex);
  return impl_->recorded;
}
int AppleWebhookReceiver::rejected() const {
  MutexLock lock(impl_->mutex);
  return impl_->rejected;
}

}  // namespace appban::mdm
