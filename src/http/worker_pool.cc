#include "http/worker_pool.h"

#include <utility>

namespace orderflow {
namespace http {

WorkerPool::WorkerPool(std::string name, int threads, size_t capacity,
                       std::chrono::milliseconds max_wait)
    : name_(std::move(name)), capacity_(capacity), max_wait_(max_wait) {
  threads_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  reaper_ = std::thread([this] { Reap(); });
}

WorkerPool::~WorkerPool() { Stop(); }

bool WorkerPool::TrySubmit(Job job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || queue_.size() >= capacity_) return false;
    queue_.push_back({std::move(job), std::chrono::steady_clock::now()});
  }
  wake_.notify_one();
  reaper_wake_.notify_one();
  return true;
}

void WorkerPool::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  reaper_wake_.notify_all();
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
  if (reaper_.joinable()) reaper_.join();
}

size_t WorkerPool::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

void WorkerPool::Run() {
  while (true) {
    Entry entry;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued has run
      entry = std::move(queue_.front());
      queue_.pop_front();
    }
    entry.job(std::chrono::steady_clock::now() - entry.queued_at);
  }
}

void WorkerPool::Reap() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    if (queue_.empty()) {
      reaper_wake_.wait(lock);
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    const auto due = queue_.front().queued_at + max_wait_;
    if (now < due) {
      reaper_wake_.wait_until(lock, due);
      continue;
    }
    Entry entry = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    entry.job(now - entry.queued_at);
    lock.lock();
  }
}

}  // namespace http
}  // namespace orderflow
