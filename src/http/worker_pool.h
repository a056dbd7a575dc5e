// WorkerPool: a fixed set of threads running jobs from a bounded queue. The HTTP reactor threads
// hand each request's database call to one, so no reactor thread ever waits on the database.
// A full queue refuses the job at once (backpressure: the caller answers 503), and every job
// knows how long it waited, so a request that queued longer than it may wait for a database
// connection is answered 503 instead of being run late.
#ifndef ORDERFLOW_HTTP_WORKER_POOL_H_
#define ORDERFLOW_HTTP_WORKER_POOL_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace orderflow {
namespace http {

class WorkerPool {
 public:
  // A job gets the time it spent in the queue.
  using Job = std::function<void(std::chrono::steady_clock::duration waited)>;

  // Starts `threads` threads; at most `capacity` jobs wait in the queue. A job still queued after
  // `max_wait` is taken out by the pool's reaper thread and run there at once (its `waited`
  // exceeds max_wait: it should answer without doing its work).
  WorkerPool(std::string name, int threads, size_t capacity, std::chrono::milliseconds max_wait);
  ~WorkerPool();  // Stop()

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `job`; false when the queue is full or the pool is stopping (the job is not run).
  bool TrySubmit(Job job);

  // Refuses new jobs, runs every queued one, and joins the threads.
  void Stop();

  size_t queued() const;
  size_t capacity() const { return capacity_; }

 private:
  struct Entry {
    Job job;
    std::chrono::steady_clock::time_point queued_at;
  };
  void Run();
  void Reap();

  const std::string name_;
  const size_t capacity_;
  const std::chrono::milliseconds max_wait_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Entry> queue_;  // guarded by mutex_
  bool stopping_ = false;    // guarded by mutex_
  std::vector<std::thread> threads_;
  std::condition_variable reaper_wake_;
  std::thread reaper_;
};

}  // namespace http
}  // namespace orderflow

#endif  // ORDERFLOW_HTTP_WORKER_POOL_H_
