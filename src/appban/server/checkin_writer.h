// Group commit for device writes. Check-ins that carry something durable (events, a new
// inventory, a newly applied bundle, changed compliance states) and enrolments are queued here; a
// writer thread with its own database connection commits whatever accumulated while the previous
// commit was being synced — the check-ins in one transaction, the enrolments in another — then
// hands each outcome back to the worker's io_context. A device is answered only after its write
// committed: an acknowledged event or credential survives kill -9. One fsync then covers hundreds
// of devices instead of one (docs/benchmarks.md measures the disk), and the io_context thread never
// waits for an fsync of a device write.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "appban/common/mutex.h"
#include "appban/common/thread_annotations.h"
#include "appban/server/device_cache.h"
#include "appban/store/fleet.h"

namespace appban::server {

class CheckinWriter {
 public:
  // `write` is the committed write; `generation_before` is set when the writer bumped the device's
  // generation after the commit (DeviceCache::AfterWrite takes it).
  using Done = std::function<void(const store::CheckinWrite& write, store::CheckinOutcome outcome,
                                  std::optional<uint64_t> generation_before)>;
  using EnrollDone = std::function<void(Result<store::Enrollment>)>;

  // `fleet` is used only by the writer thread from now on. After each commit the writer bumps, in
  // `generations`, every device whose cached state the commit changed (device_cache.h).
  CheckinWriter(boost::asio::io_context& io, std::unique_ptr<store::FleetStore> fleet, DeviceGenerations& generations);
  ~CheckinWriter();  // commits what is queued, then joins
  CheckinWriter(const CheckinWriter&) = delete;
  CheckinWriter& operator=(const CheckinWriter&) = delete;

  // Called on the io_context thread; `done` runs there after the commit (or its failure).
  void Submit(store::CheckinWrite write, Done done) EXCLUDES(mutex_);
  // Enrolment (FleetStore::EnrollDevices) of a request received at `now`: the token is checked
  // against `now` and marked used at `now`, as a direct EnrollDevice call at that time would.
  // `done` runs on the io_context thread with the request's own outcome: a refused token fails
  // only its own request; a failed commit fails the requests of that transaction.
  // `limit`, when given, is a rate limit every node shares (FleetStore::TakeSharedRateTokens), taken
  // on the writer thread first, one token per attempt, for a batch's attempts together: an attempt
  // it refuses fails with kLimitExceeded and its token is not looked at.
  struct SharedLimit {
    std::string bucket;  // "enroll:<client address>"
    uint32_t burst = 0;
    uint32_t per_minute = 0;
  };
  void SubmitEnrollment(store::EnrollmentRequest request, UnixSeconds now, EnrollDone done,
                        std::optional<SharedLimit> limit = std::nullopt) EXCLUDES(mutex_);
  // Waits until everything submitted so far is committed (shutdown).
  void Flush() EXCLUDES(mutex_);
  size_t queued() const EXCLUDES(mutex_);  // check-ins and enrolments waiting for the next commit

 private:
  struct Item {
    store::CheckinWrite write;
    Done done;
  };
  struct EnrollItem {
    store::EnrollmentRequest request;
    UnixSeconds now = 0;
    EnrollDone done;
    std::optional<SharedLimit> limit;
  };
  // Takes the shared limits' tokens for a batch; refused attempts are answered and removed.
  void ApplySharedLimits(std::vector<EnrollItem>& batch);
  void Run() EXCLUDES(mutex_);
  void CommitCheckins(std::vector<Item>& batch);
  void CommitEnrollments(std::vector<EnrollItem>& batch);

  boost::asio::io_context& io_;
  std::unique_ptr<store::FleetStore> fleet_;
  DeviceGenerations& generations_;
  mutable Mutex mutex_;
  CondVar wake_;     // something was queued, or stopping_ was set
  CondVar drained_;  // a commit finished
  std::vector<Item> queue_ GUARDED_BY(mutex_);
  std::vector<EnrollItem> enroll_queue_ GUARDED_BY(mutex_);
  bool writing_ GUARDED_BY(mutex_) = false;  // the writer thread holds a batch it has not committed
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace appban::server
