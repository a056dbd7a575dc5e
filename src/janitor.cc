#include "janitor.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "effects/executor.h"
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
    const int64_t resumed = ResumeDue();
    if (resumed > 0) {
      metrics_->CountJanitorResumed(resumed);
      LogLine(LogLevel::kInfo, "janitor_resumed").Int("workflows", resumed);
    }
    if (executor_ != nullptr) {
      const int64_t claimed = ClaimEffects();
      if (claimed > 0) LogLine(LogLevel::kDebug, "effects_claimed").Int("effects", claimed);
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

int64_t Janitor::ResumeDue() {
  const std::vector<SqlValue> params = {std::to_string(batch_)};
  int64_t total = 0;
  while (true) {
    std::vector<SqlValue> row;
    const Status status = call_(SqlCall::kResumeDue, params, &row);
    if (!status.ok()) {
      LogLine(LogLevel::kWarn, "janitor_failed")
          .Str("call", Definition(SqlCall::kResumeDue).name)
          .Str("error", status.ToString());
      break;
    }
    rapidjson::Document report;
    if (row.empty() || !row[0]) break;
    report.Parse(row[0]->c_str());
    if (report.HasParseError() || !report.IsObject() || !report.HasMember("resumed") ||
        !report["resumed"].IsInt64() || !report.HasMember("orders") ||
        !report["orders"].IsArray()) {
      LogLine(LogLevel::kError, "janitor_report_unreadable");
      break;
    }
    for (const auto& order : report["orders"].GetArray()) {
      const auto text = [&order](const char* name) {
        const auto member = order.FindMember(name);
        return member != order.MemberEnd() && member->value.IsString()
                   ? std::string(member->value.GetString(), member->value.GetStringLength())
                   : std::string();
      };
      LogLine line(LogLevel::kInfo, "janitor_resumed_order");
      line.Str("orderId", text("orderId")).Str("was", text("was")).Str("now", text("now"));
      if (!text("step").empty()) line.Str("step", text("step"));
      if (order.HasMember("attempt") && order["attempt"].IsInt64()) {
        line.Int("attempt", order["attempt"].GetInt64());
      }
      if (!text("reason").empty()) line.Str("reason", text("reason"));
    }
    const int64_t n = report["resumed"].GetInt64();
    total += n;
    if (n < batch_) break;
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) break;
  }
  return total;
}

int64_t Janitor::ClaimEffects() {
  int64_t total = 0;
  while (true) {
    const size_t busy = executor_->in_flight();
    if (busy >= max_in_flight_) break;
    const size_t limit = std::min<size_t>(100, max_in_flight_ - busy);
    std::vector<SqlValue> row;
    const Status status =
        call_(SqlCall::kClaimEffects,
              {std::to_string(limit), executor_->owner(), with_payments_ ? "true" : "false"}, &row);
    if (!status.ok()) {
      LogLine(LogLevel::kWarn, "janitor_failed")
          .Str("call", "claim_effects")
          .Str("error", status.ToString());
      break;
    }
    rapidjson::Document effects;
    if (row.empty() || !row[0]) break;
    effects.Parse(row[0]->c_str());
    if (effects.HasParseError() || !effects.IsArray()) break;
    for (const auto& effect : effects.GetArray()) {
      rapidjson::StringBuffer buffer;
      rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
      effect.Accept(writer);
      executor_->RunClaimed(std::string(buffer.GetString(), buffer.GetSize()));
    }
    total += effects.Size();
    if (effects.Size() < limit) break;
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) break;
  }
  return total;
}

}  // namespace orderflow
