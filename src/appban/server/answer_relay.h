// Requests answered on the io_context thread with a response built on another thread: the
// assessment pool's uploads and the admin reader's reads. The request thread holds each request's
// Responder under an id; the other thread posts the response back under that id, and the holding
// thread sends it. Answers reach the held Responders through a weak_ptr, so one posted after the
// relay is gone is dropped instead of touching freed memory; Responders still held when the relay
// is destroyed answer 500 if their connection is still open.
//
// Threads: NewId and Hold on the io_context thread only; Post from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

#include <boost/asio/io_context.hpp>

#include "appban/net/http.h"

namespace appban::server {

class AnswerRelay {
 public:
  explicit AnswerRelay(boost::asio::io_context& io) : io_(io) {}

  uint64_t NewId() { return ++next_id_; }
  void Hold(uint64_t id, net::Responder respond) { held_->emplace(id, std::move(respond)); }
  // Sends `response` to the request held under `id`, on the io_context thread.
  void Post(uint64_t id, net::HttpResponse response);

  // Runs `job` on the calling thread; what it throws (third-party JSON, TOML) becomes a 500, so no
  // request takes the worker down.
  static net::HttpResponse Run(const std::function<net::HttpResponse()>& job);

 private:
  using Held = std::unordered_map<uint64_t, net::Responder>;

  boost::asio::io_context& io_;
  std::shared_ptr<Held> held_ = std::make_shared<Held>();
  uint64_t next_id_ = 0;
};

}  // namespace appban::server
