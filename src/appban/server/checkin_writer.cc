#include "appban/server/checkin_writer.h"

#include <map>

#include <boost/asio/post.hpp>

namespace appban::server {

CheckinWriter::CheckinWriter(boost::asio::io_context& io, std::unique_ptr<store::FleetStore> fleet,
                             DeviceGenerations& generations)
    : io_(io), fleet_(std::move(fleet)), generations_(generations), thread_([this] { Run(); }) {}

CheckinWriter::~CheckinWriter() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  wake_.NotifyAll();
  thread_.join();
}

void CheckinWriter::Submit(store::CheckinWrite write, Done done) {
  {
    MutexLock lock(mutex_);
    queue_.push_back(Item{std::move(write), std::move(done)});
  }
  wake_.NotifyOne();
}

void CheckinWriter::SubmitEnrollment(store::EnrollmentRequest request, UnixSeconds now, EnrollDone done,
                                     std::optional<SharedLimit> limit) {
  {
    MutexLock lock(mutex_);
    enroll_queue_.push_back(EnrollItem{std::move(request), now, std::move(done), std::move(limit)});
  }
  wake_.NotifyOne();
}

void CheckinWriter::Flush() {
  MutexLock lock(mutex_);
  while (!queue_.empty() || !enroll_queue_.empty() || writing_) drained_.Wait(mutex_);
}

size_t CheckinWriter::queued() const {
  MutexLock lock(mutex_);
  return queue_.size() + enroll_queue_.size();
}

void CheckinWriter::Run() {
  for (;;) {
    std::vector<Item> batch;
    std::vector<EnrollItem> enrollments;
    {
      MutexLock lock(mutex_);
      while (!stopping_ && queue_.empty() && enroll_queue_.empty()) wake_.Wait(mutex_);
      if (queue_.empty() && enroll_queue_.empty()) return;  // stopping and nothing left
      batch.swap(queue_);
      enrollments.swap(enroll_queue_);
      writing_ = true;
    }
    if (!batch.empty()) CommitCheckins(batch);
    if (!enrollments.empty()) CommitEnrollments(enrollments);
    {
      MutexLock lock(mutex_);
      writing_ = false;
    }
    drained_.NotifyAll();
  }
}

void CheckinWriter::CommitCheckins(std::vector<Item>& batch) {
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
    std::optional<uint64_t> generation_before;
    // Right after the commit, before anyone is answered: other workers stop trusting their copy.
    if (outcome.status.ok() && ChangesCachedDevice(writes[i]))
      generation_before = generations_.Bump(writes[i].device_id);
    boost::asio::post(io_, [done = std::move(batch[i].done), write = std::move(writes[i]), outcome = std::move(outcome),
                            generation_before]() mutable { done(write, std::move(outcome), generation_before); });
  }
}

void CheckinWriter::ApplySharedLimits(std::vector<EnrollItem>& batch) {
  // One statement per bucket per batch, not per attempt: a burst of enrolments from one address
  // (a fleet roll-out behind one NAT) costs one round trip for the batch.
  std::map<std::string, std::vector<size_t>> by_bucket;  // attempts in arrival order
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].limit) by_bucket[batch[i].limit->bucket].push_back(i);
  }
  if (by_bucket.empty()) return;
  std::vector<bool> refused(batch.size(), false);
  for (const auto& [bucket, indices] : by_bucket) {
    const SharedLimit& limit = *batch[indices.front()].limit;
    auto granted =
        fleet_->TakeSharedRateTokens(bucket, static_cast<uint32_t>(indices.size()), limit.burst, limit.per_minute);
    // The database unreachable: the enrolments' own transaction will say so; the node's own limit
    // already applied.
    if (!granted.ok()) continue;
    for (size_t k = *granted; k < indices.size(); ++k) refused[indices[k]] = true;
  }
  std::vector<EnrollItem> kept;
  kept.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!refused[i]) {
      kept.push_back(std::move(batch[i]));
      continue;
    }
    boost::asio::post(io_, [done = std::move(batch[i].done)]() mutable {
      done(Status::LimitExceeded("too many enrolment attempts from this address, counted on every node"));
    });
  }
  batch.swap(kept);
}

void CheckinWriter::CommitEnrollments(std::vector<EnrollItem>& batch) {
  ApplySharedLimits(batch);
  // One transaction per request time (seconds): with a real clock a batch gathered during one
  // fsync spans one or two seconds, and each request is judged at the time it arrived.
  std::map<UnixSeconds, std::vector<size_t>> by_time;  // ordered: earlier requests first
  for (size_t i = 0; i < batch.size(); ++i) by_time[batch[i].now].push_back(i);
  for (const auto& [now, indices] : by_time) {
    std::vector<store::EnrollmentRequest> requests;
    requests.reserve(indices.size());
    for (size_t index : indices) requests.push_back(std::move(batch[index].request));
    auto outcomes = fleet_->EnrollDevices(requests, now);
    for (size_t k = 0; k < indices.size(); ++k) {
      Result<store::Enrollment> outcome =
          !outcomes.ok()         ? Result<store::Enrollment>(outcomes.status())
          : k < outcomes->size() ? std::move((*outcomes)[k])
                                 : Result<store::Enrollment>(Status::Internal("enrolment batch lost an outcome"));
      boost::asio::post(io_, [done = std::move(batch[indices[k]].done), outcome = std::move(outcome)]() mutable {
        done(std::move(outcome));
      });
    }
  }
}

}  // namespace appban::server
