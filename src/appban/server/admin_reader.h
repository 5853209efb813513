// Admin reads away from the request thread. A worker answers every device request — check-ins,
// long-polls, enrolments, /healthz — on its one io_context thread, and admin handlers ran there
// too: four parallel GET /v1/admin/enrollment-tokens (21 MB each before paging) held that thread
// for seconds and a /healthz waited 7.2 s behind them. Bounded pages make each list cheap, but any
// role can send many at once, and reads such as GET /v1/admin/audit/verify walk the whole chain
// by design. A worker therefore owns one AdminReader: one thread, a few nice levels below the
// request thread, with its own database connections, that runs the admin API's read-only routes
// (admin_api.cc marks them) one at a time from a bounded queue. The request thread only
// authenticates the call and later writes the answer, so device requests wait for neither the
// query nor the JSON, and admin reads compete only with each other (and the assessment pool) for
// the CPU the device work leaves.
//
// Threads: Submit and the answers run on the io_context thread; jobs run on the reader thread,
// the only user of the reader's Store and FleetStore from construction on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "appban/net/http.h"
#include "appban/server/answer_relay.h"
#include "appban/server/task_queue.h"
#include "appban/store/fleet.h"
#include "appban/store/store.h"

namespace appban::server {

class AdminReader {
 public:
  // Sixteen waiting reads per worker: more than the handful of administrators a deployment has
  // send at once, few enough that a script hammering the API is told to back off (503 with
  // Retry-After) instead of growing the queue — and the answers it holds — without bound.
  static constexpr size_t kDefaultMaxQueued = 16;
  static constexpr int kRetryAfterSeconds = 1;

  struct Options {
    size_t max_queued = kDefaultMaxQueued;  // waiting, not counting the job being run; at least 1
    // Nice levels the reader thread lowers itself by (from the priority it starts with), so the
    // request thread preempts it at once: a listing can wait, a check-in should not.
    int nice_increment = 0;
  };

  // Runs on the reader thread with the reader's connections; the response it returns is sent on
  // the io_context thread.
  using Job = std::function<net::HttpResponse(store::Store& store, store::FleetStore& fleet)>;

  AdminReader(boost::asio::io_context& io, std::unique_ptr<store::Store> store,
              std::unique_ptr<store::FleetStore> fleet, Options options);
  // Lets the running job finish and drops queued ones (their requests are answered 500 if their
  // connection is still open). Call on the io_context thread, after it stopped running.
  ~AdminReader();
  AdminReader(const AdminReader&) = delete;
  AdminReader& operator=(const AdminReader&) = delete;

  // Called on the io_context thread. Queues `job`; its response goes to `respond` on the
  // io_context thread. When max_queued jobs already wait, nothing is queued and `respond` is
  // handed back for the caller to refuse the request (503 with Retry-After).
  std::optional<net::Responder> Submit(Job job, net::Responder respond);

 private:
  struct Task {
    uint64_t id = 0;
    Job job;
  };
  void RunThread();

  const Options options_;
  // Reader thread only (set before it starts).
  const std::unique_ptr<store::Store> store_;
  const std::unique_ptr<store::FleetStore> fleet_;

  TaskQueue<Task> queue_;

  AnswerRelay answers_;  // the requests whose answers are being prepared, by task id

  std::thread thread_;  // last: started once everything above exists
};

}  // namespace appban::server
