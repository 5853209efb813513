// Forward declarations of the Asio types that net's public headers name (by reference or
// shared_ptr), so that code using those headers compiles without Asio's own headers.
#pragma once

namespace boost::asio {
class io_context;
namespace ssl {
class context;
}  // namespace ssl
}  // namespace boost::asio
