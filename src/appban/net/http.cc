#include "appban/net/http.h"

#include <nlohmann/json.hpp>

namespace appban::net {
namespace {

int HexDigitValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  std::string decoded;
  decoded.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int high = HexDigitValue(text[i + 1]);
      int low = HexDigitValue(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      decoded.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      decoded.push_back(' ');
    } else {
      decoded.push_back(c);
    }
  }
  return decoded;
}

std::string_view HttpRequest::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

std::optional<std::string> HttpRequest::QueryParam(std::string_view name) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    size_t eq = pair.find('=');
    std::string_view raw_key = pair.substr(0, eq);
    std::string_view raw_value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    std::optional<std::string> key = PercentDecode(raw_key, true);
    if (!key || *key != name) continue;
    return PercentDecode(raw_value, true);
  }
  return std::nullopt;
}

HttpResponse MakeErrorResponse(int status, std::string_view code, std::string_view message) {
  nlohmann::json body = {{"error", {{"code", code}, {"message", message}}}};
  HttpResponse response;
  response.status = status;
  // `replace` so that a message quoting invalid UTF-8 from a client cannot make dump() throw.
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

Responder& Responder::operator=(Responder&& other) noexcept {
  if (this != &other) {
    if (!sink_.expired()) AnswerIfPending(MakeErrorResponse(500, "internal", "the request was not answered"));
    sink_ = std::move(other.sink_);
    request_sequence_ = other.request_sequence_;
    other.sink_.reset();
  }
  return *this;
}

Responder::~Responder() {
  // Checked first so that the common case (already answered) does not build a JSON body.
  if (!sink_.expired()) AnswerIfPending(MakeErrorResponse(500, "internal", "the request was not answered"));
}

void Responder::AnswerIfPending(HttpResponse response) {
  std::shared_ptr<detail::ResponseSink> sink = sink_.lock();
  sink_.reset();
  if (sink) sink->Complete(request_sequence_, std::move(response));
}

void Responder::operator()(HttpResponse response) { AnswerIfPending(std::move(response)); }

bool Responder::alive() const {
  std::shared_ptr<detail::ResponseSink> sink = sink_.lock();
  return sink && sink->ClientConnected();
}

}  // namespace appban::net
