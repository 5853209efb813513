#include "appban/server/answer_relay.h"

#include <exception>
#include <string>
#include <utility>

#include <boost/asio/post.hpp>

namespace appban::server {

void AnswerRelay::Post(uint64_t id, net::HttpResponse response) {
  boost::asio::post(io_, [held = std::weak_ptr<Held>(held_), id, response = std::move(response)]() mutable {
    auto map = held.lock();
    if (!map) return;
    auto it = map->find(id);
    if (it == map->end()) return;
    net::Responder respond = std::move(it->second);
    map->erase(it);
    respond(std::move(response));
  });
}

net::HttpResponse AnswerRelay::Run(const std::function<net::HttpResponse()>& job) {
  try {
    return job();
  } catch (const std::exception& error) {
    return net::MakeErrorResponse(500, "internal", std::string("internal error: ") + error.what());
  }
}

}  // namespace appban::server
