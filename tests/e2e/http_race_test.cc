// Races over real HTTP: many clients resuming and cancelling the same orders at once, through
// the real server and its pool, then the ledger checked in the database. The two reproductions
// of issue 8 (resumes of parked orders charged twice and failed completed workflows; cancels
// answered 200 `cancelled` for orders that ended otherwise) and a mixed race with the janitor.
// Each runs ORDERFLOW_RACE_ROUNDS times (default 3); `make test` runs the default, the issue's
// "20 times in a row" is ORDERFLOW_RACE_ROUNDS=20. The forced interleavings behind these
// outcomes are proven one by one in db_race_test.cc.
#include <atomic>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "harness.h"

namespace orderflow_test {
namespace {

constexpr int kOrders = 12;

int Rounds() {
  const char* const raw = std::getenv("ORDERFLOW_RACE_ROUNDS");
  if (raw == nullptr || *raw == '\0') return 3;
  const int rounds = std::atoi(raw);
  return rounds >= 1 && rounds <= 1000 ? rounds : 3;
}

// One HTTP answer of a race, kept for the checks after it.
struct Answer {
  std::string order_id;
  std::string request;  // "resume", "process" or "cancel"
  long status = 0;
  std::string body;
  std::string state;  // the "status" of the workflow state document, "" otherwise
};

std::string StateOf(const std::string& body) {
  rapidjson::Document document;
  document.Parse(body.c_str());
  if (document.HasParseError() || !document.IsObject() || !document.HasMember("status") ||
      !document["status"].IsString()) {
    return "";
  }
  return document["status"].GetString();
}

// No answer may carry the database's internal text (issue 8: the unique constraint's name
// reached the public API).
::testing::AssertionResult NothingInternal(const Answer& answer) {
  for (const char* internal : {"constraint", "duplicate key", "SQLSTATE", "deadlock"}) {
    if (answer.body.find(internal) != std::string::npos) {
      return ::testing::AssertionFailure()
             << answer.request << " " << answer.order_id << " answered " << answer.status
             << " with internal text '" << internal << "': " << answer.body.substr(0, 400);
    }
  }
  return ::testing::AssertionSuccess();
}

std::string ResumeBody(const std::string& order_id) {
  return R"({"orderId":")" + order_id + R"("})";
}

class HttpRaceTest : public SharedServerTest {
 protected:
  void SetUp() override { ResetDrills(); }
  void TearDown() override { ResetDrills(); }

  Answer Send(const std::string& request, const std::string& order_id, const std::string& body) {
    const HttpResponse response = request == "cancel"
                                      ? server_->Post("/api/orders/" + order_id + "/cancel", body)
                                      : server_->Post("/api/orders/process", body);
    Answer answer{order_id, request, response.status, response.body, StateOf(response.body)};
    if (response.status == 0) answer.body = "no answer: " + response.error;
    return answer;
  }

  // Runs send(i) for i in [0, n) on n threads released at once; returns every answer.
  static std::vector<Answer> Race(int n, const std::function<std::vector<Answer>(int)>& send) {
    std::mutex mutex;
    std::vector<Answer> answers;
    RunConcurrently(n, [&](int i) {
      std::vector<Answer> mine = send(i);
      const std::lock_guard<std::mutex> lock(mutex);
      for (Answer& answer : mine) answers.push_back(std::move(answer));
    });
    return answers;
  }

  // kOrders new orders, each parked on a transient charge failure with a 60 s backoff by one
  // POST /api/orders/process: nothing resumes them during the round unless a client does.
  std::vector<std::string> ParkOrders(const std::string& prefix) {
    SetRetryDelay("charge", 60000);
    Execute("SELECT orderflow.inject_fault('charge', $1::integer, true)",
            {std::to_string(kOrders)});
    std::vector<std::string> ids;
    for (int i = 0; i < kOrders; ++i) {
      ids.push_back(prefix + "-" + std::to_string(i));
      const Answer answer = Send("process", ids.back(), ProcessBody(ids.back()));
      EXPECT_EQ(answer.status, 200) << answer.body;
      EXPECT_EQ(answer.state, "charging") << answer.body;
    }
    EXPECT_EQ(QueryCount("SELECT remaining FROM orderflow.faults WHERE step = 'charge'"), 0)
        << "each order used up one fault";
    return ids;
  }
};

// Reproduction 1: 12 parked orders, each resumed by 8 concurrent clients. Every resume answers
// 200 completed; every order ends completed with exactly one charge and no refund.
TEST_F(HttpRaceTest, EightClientsResumingParkedOrdersChargeEachOnce) {
  constexpr int kClients = 8;
  for (int round = 0; round < Rounds(); ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::vector<std::string> ids = ParkOrders(Unique("resume8"));
    ASSERT_FALSE(HasFailure());

    // Every client resumes the orders in the same sequence: the 8 collide on each order, and
    // those that waited move on to the next order together.
    const std::vector<Answer> answers = Race(kClients, [&](int) {
      std::vector<Answer> mine;
      for (const std::string& id : ids) mine.push_back(Send("resume", id, ResumeBody(id)));
      return mine;
    });

    ASSERT_EQ(answers.size(), static_cast<size_t>(kClients * kOrders));
    for (const Answer& answer : answers) {
      EXPECT_EQ(answer.status, 200) << answer.order_id << ": " << answer.body;
      EXPECT_EQ(answer.state, "completed") << answer.order_id << ": " << answer.body;
      EXPECT_TRUE(NothingInternal(answer));
    }
    for (const std::string& id : ids) {
      const OrderRecord record = ReadOrder(id);
      EXPECT_EQ(record.status, "completed") << id;
      EXPECT_EQ(record.charges, 1) << id;
      EXPECT_EQ(record.refunds, 0) << id;
      EXPECT_TRUE(LedgerIsConsistent(id, record));
      EXPECT_EQ(QueryValue("SELECT attempts::text FROM orderflow.workflow_steps"
                           " WHERE order_id = $1 AND step = 'charge'",
                           {id}),
                "2")
          << id << ": the injected failure and one charge";
    }
    ASSERT_FALSE(HasFailure());
  }
}

// Reproduction 2: 12 parked orders, each with 1 cancel racing 4 resumes. Every cancel answers
// 200 cancelled, and that is the order's final state, with as many refunds as charges.
TEST_F(HttpRaceTest, ACancelRacingFourResumesIsTheFinalState) {
  constexpr int kResumes = 4;
  for (int round = 0; round < Rounds(); ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::vector<std::string> ids = ParkOrders(Unique("cancel4"));
    ASSERT_FALSE(HasFailure());

    // Request i is for order i % kOrders; the first kOrders requests are the cancels.
    const std::vector<Answer> answers = Race(kOrders * (1 + kResumes), [&](int i) {
      const std::string& id = ids[i % kOrders];
      return std::vector<Answer>{i < kOrders ? Send("cancel", id, R"({"reason":"race"})")
                                             : Send("resume", id, ResumeBody(id))};
    });

    for (const Answer& answer : answers) {
      EXPECT_EQ(answer.status, 200)
          << answer.request << " " << answer.order_id << ": " << answer.body;
      EXPECT_TRUE(NothingInternal(answer));
      if (answer.request == "cancel") {
        EXPECT_EQ(answer.state, "cancelled") << answer.order_id << ": " << answer.body;
      } else {
        EXPECT_TRUE(answer.state == "completed" || answer.state == "cancelled")
            << answer.order_id << ": " << answer.body;
      }
    }
    for (const std::string& id : ids) {
      const OrderRecord record = ReadOrder(id);
      EXPECT_EQ(record.status, "cancelled") << id << ": the cancel answered cancelled";
      EXPECT_EQ(record.cancel_reason, "race") << id;
      EXPECT_EQ(record.refunds, record.charges) << id;
      EXPECT_TRUE(LedgerIsConsistent(id, record));
    }
    ASSERT_FALSE(HasFailure());
  }
}

// Many clients × many orders: new orders, resumes and cancels mixed at random while faults
// fail steps (transient ones retried by clients and the server's janitor, permanent ones
// failing workflows). Afterwards every order obeys the ledger rules, every 200 `cancelled` is
// the final state, and a request sent after a cancel was answered is answered cancelled.
TEST_F(HttpRaceTest, MixedClientsOrdersResumesAndCancelsKeepTheLedger) {
  constexpr int kClients = 12;
  constexpr int kMixedOrders = 16;
  constexpr int kRequestsPerClient = 12;
  for (int round = 0; round < Rounds(); ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    ResetDrills();
    for (const char* step : {"charge", "confirm"}) SetRetryDelay(step, 50);
    Execute("SELECT orderflow.inject_fault('charge', 6, true)");
    Execute("SELECT orderflow.inject_fault('reserve', 2, false)");
    Execute("SELECT orderflow.inject_fault('confirm', 4, true)");

    const std::string prefix = Unique("mixed");
    std::vector<std::string> ids;
    for (int i = 0; i < kMixedOrders; ++i) ids.push_back(prefix + "-" + std::to_string(i));
    // Set once a 200 answer proved the workflow exists / a cancel was answered cancelled.
    std::vector<std::atomic<bool>> known(kMixedOrders), cancelled(kMixedOrders);

    RunConcurrently(kClients, [&](int client) {
      std::mt19937 random(static_cast<unsigned>(1000 * round + client));
      for (int k = 0; k < kRequestsPerClient; ++k) {
        const int o = static_cast<int>(random() % kMixedOrders);
        const std::string& id = ids[o];
        const unsigned pick = random() % 10;
        const bool was_known = known[o].load(), was_cancelled = cancelled[o].load();
        const Answer answer = pick < 2                ? Send("cancel", id, "")
                              : pick < 6 && was_known ? Send("resume", id, ResumeBody(id))
                                                      : Send("process", id, ProcessBody(id));
        if (answer.status == 200) known[o] = true;
        if (answer.request == "cancel" && answer.state == "cancelled") cancelled[o] = true;

        EXPECT_TRUE(NothingInternal(answer));
        if (answer.request == "cancel" && !was_known) {
          EXPECT_TRUE(answer.status == 200 || answer.status == 404) << id << ": " << answer.body;
        } else {
          EXPECT_EQ(answer.status, 200) << answer.request << " " << id << ": " << answer.body;
        }
        if (answer.request == "cancel" && answer.status == 200) {
          EXPECT_EQ(answer.state, "cancelled") << id << ": " << answer.body;
        }
        if (was_cancelled) {
          EXPECT_EQ(answer.state, "cancelled")
              << answer.request << " " << id
              << " sent after a cancel was answered: " << answer.body;
        }
      }
    });

    // Transient failures left some workflows waiting for a retry 50 ms later: the server's
    // janitor resumes them.
    const bool settled = Eventually(
        [&] {
          return QueryCount(
                     "SELECT count(*) FROM orderflow.workflows WHERE order_id LIKE $1"
                     " AND finished_at IS NULL",
                     {prefix + "-%"}) == 0;
        },
        std::chrono::seconds(60));
    EXPECT_TRUE(settled) << "the janitor finished every workflow";
    for (int o = 0; o < kMixedOrders; ++o) {
      const OrderRecord record = ReadOrder(ids[o]);
      EXPECT_TRUE(LedgerIsConsistent(ids[o], record));
      if (cancelled[o]) {
        EXPECT_EQ(record.status, "cancelled") << ids[o] << ": a cancel answered 200 cancelled";
      }
    }
    ASSERT_FALSE(HasFailure());
  }
}

}  // namespace
}  // namespace orderflow_test
