// Janitor: a thread that calls orderflow.resume_due every JANITOR_INTERVAL_MS, so workflows
// waiting for a retry heal without any client calling again. The claiming (FOR UPDATE SKIP
// LOCKED) is in SQL, so any number of servers can run a janitor at once.
#ifndef ORDERFLOW_JANITOR_H_
#define ORDERFLOW_JANITOR_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "db_pool.h"

namespace orderflow {

class Janitor {
 public:
  Janitor(DbPool* pool, std::chrono::milliseconds interval, int batch);
  ~Janitor();  // Stops the thread.

  Janitor(const Janitor&) = delete;
  Janitor& operator=(const Janitor&) = delete;

  void Start();
  // Returns once the thread has finished its current call and exited.
  void Stop();

  // Workflows resumed since start (for metrics).
  int64_t resumed_total() const { return resumed_total_.load(); }

 private:
  void Run();
  // One round: resume_due until it returns less than a full batch.
  void ResumeDue();

  DbPool* const pool_;
  const std::chrono::milliseconds interval_;
  const int batch_;
  std::atomic<int64_t> resumed_total_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace orderflow

#endif  // ORDERFLOW_JANITOR_H_
