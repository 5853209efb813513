#include "appban/server/checkin_writer.h"

#include <boost/asio/post.hpp>

namespace appban::server {

CheckinWriter::CheckinWriter(boost::asio::io_context& io, std::unique_ptr<store::FleetStore> fleet)
    : io_(io), fleet_(std::move(fleet)), thread_([this] { Run(); }) {}

CheckinWriter::~CheckinWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void CheckinWriter::Submit(store::CheckinWrite write, Done done) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(Item{std::move(write), std::move(done)});
  }
  wake_.notify_one();
}

void CheckinWriter::Flush() {
  std::unique_lock lock(mutex_);
  drained_.wait(lock, [this] { return queue_.empty() && !writing_; });
}

size_t CheckinWriter::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void CheckinWriter::Run() {
  for (;;) {
    std::vector<Item> batch;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and nothing left
      batch.swap(queue_);
      writing_ = true;
    }
    std::vector<store::CheckinWrite> writes;
    writes.reserve(batch.size());
    for (Item& item : batch) writes.push_back(std::move(item.write));
    auto outcomes = fleet_->ApplyCheckins(writes);
    for (size_t i = 0; i < batch.size(); ++i) {
      store::CheckinOutcome outcome;
      if (outcomes.ok() && i < outcomes->size()) {
        outcome = std::move((*outcomes)[i]);
      } else {
        outcome.device_id = writes[i].device_id;
        outcome.status = outcomes.ok() ? Status::Internal("check-in batch lost an outcome") : outcomes.status();
      }
      boost::asio::post(io_, [done = std::move(batch[i].done), outcome = std::move(outcome)]() mutable {
        done(std::move(outcome));
      });
    }
    {
      std::lock_guard lock(mutex_);
      writing_ = false;
    }
    drained_.notify_all();
  }
}

}  // namespace appban::server
