// Janitors racing on separate connections (no HTTP): resume_due claims with FOR UPDATE SKIP
// LOCKED, so two janitors never run the same workflow, and a janitor never waits for another.
#include <atomic>
#include <pqxx/pqxx>

#include "gtest/gtest.h"
#include "harness.h"

namespace orderflow_test {
namespace {

// Creates `n` workflows whose charge failed once and is due for a retry right now.
std::vector<std::string> MakeDueWorkflows(int n, const std::string& prefix) {
  Execute(
      "UPDATE orderflow.retry_policies SET base_delay_ms = 0, max_delay_ms = 0, jitter = 0"
      " WHERE step = 'charge'");
  Execute("SELECT orderflow.inject_fault('charge', $1, true)", {std::to_string(n)});
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    ids.push_back(prefix + "-" + std::to_string(i));
    Execute("SELECT orderflow.process_order($1, 1, 'race-item')", {ids.back()});
  }
  Execute("UPDATE orderflow.faults SET remaining = 0");
  return ids;
}

class JanitorRaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ResetDrills();
    // Nothing else may be due while we count claims.
    ASSERT_EQ(
        QueryCount("SELECT count(*) FROM orderflow.workflows WHERE next_retry_at IS NOT NULL"), 0);
  }
  void TearDown() override { ResetDrills(); }
};

TEST_F(JanitorRaceTest, ASecondJanitorSkipsWhatTheFirstHoldsWithoutWaiting) {
  const std::string prefix = Unique("skip");
  const std::vector<std::string> ids = MakeDueWorkflows(10, prefix);

  pqxx::connection first_connection(TestDatabaseUrl());
  pqxx::work first(first_connection);
  EXPECT_EQ(first.exec1("SELECT orderflow.resume_due(100)")[0].as<int>(), 10);
  // The first janitor holds all ten rows (uncommitted). The second must not wait for them.
  pqxx::connection second_connection(TestDatabaseUrl());
  pqxx::nontransaction second(second_connection);
  second.exec("SET lock_timeout = '2s'");
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(second.exec1("SELECT orderflow.resume_due(100)")[0].as<int>(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));
  first.commit();

  EXPECT_EQ(second.exec1("SELECT orderflow.resume_due(100)")[0].as<int>(), 0)
      << "after the commit nothing is due any more";
  for (const std::string& id : ids) {
    EXPECT_EQ(QueryValue("SELECT attempts::text FROM orderflow.workflow_steps WHERE order_id = $1"
                         " AND step = 'charge'",
                         {id}),
              "2")
        << id << ": one failure, one resume";
  }
  EXPECT_EQ(
      QueryCount("SELECT count(*) FROM orderflow.payments WHERE order_id LIKE $1", {prefix + "-%"}),
      10);
}

TEST_F(JanitorRaceTest, EightJanitorsOnEightConnectionsClaimEachWorkflowOnce) {
  constexpr int kWorkflows = 200;
  constexpr int kJanitors = 8;
  const std::string prefix = Unique("race");
  const std::vector<std::string> ids = MakeDueWorkflows(kWorkflows, prefix);

  std::atomic<int> claimed{0};
  RunConcurrently(kJanitors, [&](int) {
    pqxx::connection connection(TestDatabaseUrl());
    pqxx::nontransaction transaction(connection);
    while (true) {
      const int n = transaction.exec1("SELECT orderflow.resume_due(5)")[0].as<int>();
      if (n == 0) break;
      claimed += n;
    }
  });
  EXPECT_EQ(claimed.load(), kWorkflows) << "every due workflow was claimed exactly once";
  const std::string like = prefix + "-%";
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.workflows WHERE order_id LIKE $1 AND status "
                       "= 'completed'",
                       {like}),
            kWorkflows);
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.workflow_steps WHERE order_id LIKE $1"
                       " AND step = 'charge' AND attempts <> 2",
                       {like}),
            0)
      << "each charge: one failure and exactly one resumed attempt";
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.payments WHERE order_id LIKE $1", {like}),
            kWorkflows);
}

}  // namespace
}  // namespace orderflow_test
