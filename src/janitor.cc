#include "janitor.h"

#include <string>
#include <utility>
#include <vector>

#include "log.h"

namespace orderflow {

Janitor::Janitor(Caller call, Metrics* metrics, std::chrono::milliseconds interval, int batch)
    : call_(std::move(call)), metrics_(metrics), interval_(interval), batch_(batch) {}

Janitor::~Janitor() { Stop(); }

void Janitor::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Janitor::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Janitor::Run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!wake_.wait_for(lock, interval_, [this] { return stopping_; })) {
    lock.unlock();
    const int64_t resumed = Drain(SqlCall::kResumeDue, batch_);
    if (resumed > 0) {
      metrics_->CountJanitorResumed(resumed);
      LogLine(LogLevel::kInfo, "janitor_resumed").Int("workflows", resumed);
    }
    const int64_t published = Drain(SqlCall::kPublishOutbox, kOutboxBatch);
    if (published > 0) {
      metrics_->CountOutboxPublished(published);
      LogLine(LogLevel::kDebug, "outbox_published").Int("events", published);
    }
    lock.lock();
  }
}

int64_t Janitor::Drain(SqlCall call, int batch) {
  const std::vector<SqlValue> params = {std::to_string(batch)};
  int64_t total = 0;
  while (true) {
    std::vector<SqlValue> row;
    const Status status = call_(call, params, &row);
    if (!status.ok()) {
      LogLine(LogLevel::kWarn, "janitor_failed")
          .Str("call", Definition(call).name)
          .Str("error", status.ToString());
      break;
    }
    const int n = (!row.empty() && row[0]) ? std::stoi(*row[0]) : 0;
    total += n;
    if (n < batch) break;
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) break;
  }
  return total;
}

}  // namespace orderflow
