#include "appban/server/admin_reader.h"

#include <utility>

#include "appban/server/assessment_pool.h"
#include "appban/server/reader_context.h"

namespace appban::server {

WorkerContext ReaderThreadContext(const WorkerContext& context) {
  WorkerContext reader_context;
  reader_context.config = context.config;
  reader_context.clock = context.clock;
  reader_context.oidc = context.oidc;
  reader_context.console_session_key = context.console_session_key;
  reader_context.data_dir = context.data_dir;
  reader_context.worker_index = context.worker_index;
  return reader_context;
}

AdminReader::AdminReader(boost::asio::io_context& io, std::unique_ptr<store::Store> store,
                         std::unique_ptr<store::FleetStore> fleet, Options options)
    : options_(options), store_(std::move(store)), fleet_(std::move(fleet)), queue_(options_.max_queued), answers_(io) {
  thread_ = std::thread([this] { RunThread(); });
}

AdminReader::~AdminReader() {
  queue_.Stop();
  thread_.join();
  // answers_' Responders are destroyed with it, here on the io_context thread: each answers 500
  // if its connection is still open.
}

std::optional<net::Responder> AdminReader::Submit(Job job, net::Responder respond) {
  uint64_t id = answers_.NewId();
  if (!queue_.Push(Task{id, std::move(job)})) return respond;
  answers_.Hold(id, std::move(respond));
  return std::nullopt;
}

void AdminReader::RunThread() {
  LowerThisThreadPriority(options_.nice_increment);
  while (std::optional<Task> task = queue_.Pop()) {
    net::HttpResponse response = AnswerRelay::Run([&] { return task->job(*store_, *fleet_); });
    task->job = nullptr;
    answers_.Post(task->id, std::move(response));
  }
}

}  // namespace appban::server
