// Janitor: what it asks the database each tick. The database is a fake Caller; the executor is
// one with nothing in flight (no effect is claimed, so none is sent).
#include "janitor.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "effects/executor.h"

namespace orderflow {
namespace {

class FakeDatabase {
 public:
  Janitor::Caller Caller() {
    return [this](SqlCall call, const std::vector<SqlValue>& params, std::vector<SqlValue>* row) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (call == SqlCall::kClaimEffects) {
        claims_.push_back(params);
        row->assign(1, SqlValue("[]"));
        claimed_.notify_all();
      } else if (call == SqlCall::kResumeDue) {
        row->assign(1, SqlValue(R"({"resumed": 0, "orders": []})"));
      } else {
        row->assign(1, SqlValue("0"));
      }
      return Status::Ok();
    };
  }

  // Waits (at most 5 s) for a claim_effects call and returns its parameters.
  std::vector<SqlValue> FirstClaim() {
    std::unique_lock<std::mutex> lock(mutex_);
    claimed_.wait_for(lock, std::chrono::seconds(5), [this] { return !claims_.empty(); });
    return claims_.empty() ? std::vector<SqlValue>() : claims_.front();
  }

 private:
  std::mutex mutex_;
  std::condition_variable claimed_;
  std::vector<std::vector<SqlValue>> claims_;
};

std::vector<SqlValue> ClaimOf(bool with_payments) {
  FakeDatabase database;
  Metrics metrics;
  effects::EffectExecutor executor(nullptr, nullptr, nullptr, &metrics, "", "server-1");
  Janitor janitor(database.Caller(), &metrics, std::chrono::milliseconds(10), 16);
  janitor.SetEffectExecutor(&executor, 8, with_payments);
  janitor.Start();
  std::vector<SqlValue> claim = database.FirstClaim();
  janitor.Stop();
  return claim;
}

TEST(JanitorTest, ClaimsWebhookDeliveriesAlwaysAndPaymentCallsOnlyWithAKey) {
  const std::vector<SqlValue> without_key = ClaimOf(false);
  ASSERT_EQ(without_key.size(), 3U) << "claim_effects(limit, owner, with_payments)";
  EXPECT_EQ(without_key[0], SqlValue("8")) << "no more than the executor may have in flight";
  EXPECT_EQ(without_key[1], SqlValue("server-1")) << "the executor's owner";
  EXPECT_EQ(without_key[2], SqlValue("false")) << "no key: webhook deliveries only";
  const std::vector<SqlValue> with_key = ClaimOf(true);
  ASSERT_EQ(with_key.size(), 3U);
  EXPECT_EQ(with_key[2], SqlValue("true")) << "a key: payment calls too";
}

}  // namespace
}  // namespace orderflow
