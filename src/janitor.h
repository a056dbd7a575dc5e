// Janitor: a thread that, every JANITOR_INTERVAL_MS, calls orderflow.resume_due (and claims the
// provider calls that are due, payment calls and webhook deliveries, for the effect executor to
// send), so workflows
// waiting for a retry heal without any client calling again, and orderflow.publish_outbox, which
// sends the NOTIFYs of committed outbox events. The claiming (FOR UPDATE SKIP LOCKED) is in
// SQL, so any number of servers can run a janitor at once.
#ifndef ORDERFLOW_JANITOR_H_
#define ORDERFLOW_JANITOR_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "db_pool.h"
#include "metrics.h"

namespace orderflow {
namespace effects {
class EffectExecutor;
}  // namespace effects

class Janitor {
 public:
  // How the janitor reaches the database: Api::Call, so that its calls are retried and counted
  // like every other.
  using Caller =
      std::function<Status(SqlCall, const std::vector<SqlValue>&, std::vector<SqlValue>*)>;

  Janitor(Caller call, Metrics* metrics, std::chrono::milliseconds interval, int batch);
  ~Janitor();  // Stops the thread.

  Janitor(const Janitor&) = delete;
  Janitor& operator=(const Janitor&) = delete;

  // Provider calls: each tick also claims due effects (orderflow.claim_effects) for `executor`
  // to send, keeping at most `max_in_flight` going: webhook deliveries always, payment calls
  // only `with_payments` (the server has a STRIPE_API_KEY). Call before Start().
  void SetEffectExecutor(effects::EffectExecutor* executor, size_t max_in_flight,
                         bool with_payments) {
    executor_ = executor;
    max_in_flight_ = max_in_flight;
    with_payments_ = with_payments;
  }

  void Start();
  // Returns once the thread has finished its current call and exited.
  void Stop();

 private:
  // Outbox events published per call.
  static constexpr int kOutboxBatch = 500;

  void Run();
  // Calls `call` (publish_outbox) until it returns less than a full batch; returns the total it
  // reported.
  int64_t Drain(SqlCall call, int batch);
  // Calls janitor_tick_report until it resumes less than a full batch, logging each order it
  // resumed (what it waited on, why, and what it is now); returns how many.
  int64_t ResumeDue();
  // Claims due provider calls and hands them to the executor; returns how many.
  int64_t ClaimEffects();

  const Caller call_;
  Metrics* const metrics_;
  const std::chrono::milliseconds interval_;
  const int batch_;
  effects::EffectExecutor* executor_ = nullptr;
  size_t max_in_flight_ = 0;
  bool with_payments_ = false;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace orderflow

#endif  // ORDERFLOW_JANITOR_H_
