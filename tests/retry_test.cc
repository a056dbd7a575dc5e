#include "retry.h"

#include <vector>

#include "gtest/gtest.h"

namespace orderflow {
namespace {

// Runs RetryTransient over a scripted sequence of outcomes; records retries and sleeps.
struct Script {
  explicit Script(std::vector<Status> scripted) : outcomes(std::move(scripted)) {}

  std::vector<Status> outcomes;
  size_t calls = 0;
  std::vector<std::string> retried;
  std::vector<std::chrono::milliseconds> slept;

  Status Run(const RetryPolicy& policy = RetryPolicy()) {
    return RetryTransient([this] { return outcomes[std::min(calls++, outcomes.size() - 1)]; },
                          policy, [this](const Status& s) { retried.push_back(s.sqlstate()); },
                          [this](std::chrono::milliseconds d) { slept.push_back(d); });
  }
};

TEST(RetryTest, SuccessIsNotRetried) {
  Script script({Status::Ok()});
  EXPECT_TRUE(script.Run().ok());
  EXPECT_EQ(script.calls, 1U);
}

TEST(RetryTest, SerializationFailuresAndDeadlocksAreRetriedUntilSuccess) {
  Script script({Status::Error("40001", "a"), Status::Error("40P01", "b"), Status::Ok()});
  EXPECT_TRUE(script.Run().ok());
  EXPECT_EQ(script.calls, 3U);
  EXPECT_EQ(script.retried, (std::vector<std::string>{"40001", "40P01"}));
}

TEST(RetryTest, GivesUpAfterThreeRetries) {
  Script script({Status::Error("40001", "always")});
  const Status status = script.Run();
  EXPECT_EQ(status.sqlstate(), "40001");
  EXPECT_EQ(script.calls, 4U) << "one try and three retries";
  EXPECT_EQ(script.retried.size(), 3U);
}

TEST(RetryTest, OtherErrorsAreNotRetried) {
  for (const char* state : {"22023", "OF409", "08006", "57014", "XX000"}) {
    Script script({Status::Error(state, "no"), Status::Ok()});
    EXPECT_EQ(script.Run().sqlstate(), state);
    EXPECT_EQ(script.calls, 1U) << state;
  }
}

TEST(RetryTest, BackoffDoublesWithJitterInItsBounds) {
  const RetryPolicy policy;  // 10 ms base
  EXPECT_EQ(RetryDelay(policy, 1, 0.0).count(), 5);
  EXPECT_EQ(RetryDelay(policy, 1, 0.999).count(), 9);
  EXPECT_EQ(RetryDelay(policy, 2, 0.0).count(), 10);
  EXPECT_EQ(RetryDelay(policy, 3, 0.0).count(), 20);
  Script script({Status::Error("40001", "x")});
  script.Run();
  ASSERT_EQ(script.slept.size(), 3U);
  for (size_t i = 0; i < script.slept.size(); ++i) {
    const int64_t full = 10 << i;
    EXPECT_GE(script.slept[i].count(), full / 2) << i;
    EXPECT_LT(script.slept[i].count(), full) << i;
  }
}

}  // namespace
}  // namespace orderflow
