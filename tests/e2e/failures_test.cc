// End-to-end: failures that heal — transient faults retried by the janitor without any client,
// permanent failures compensated, cancellation, and a kill -9 in the middle of 200 workflows.
#include <rapidjson/document.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <map>
#include <thread>

#include "gtest/gtest.h"
#include "harness.h"

namespace orderflow_test {
namespace {

long Ledger(const std::string& order_id, const std::string& kind) {
  return QueryCount("SELECT count(*) FROM orderflow.payments WHERE order_id = $1 AND kind = $2",
                    {order_id, kind});
}

class FailuresTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ResetDrills();
    server_ = new ServerProcess(std::map<std::string, std::string>{{"JANITOR_INTERVAL_MS", "200"}});
    server_->Start();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    ResetDrills();
  }
  void TearDown() override { ResetDrills(); }
  static ServerProcess* server_;
};
ServerProcess* FailuresTest::server_ = nullptr;

TEST_F(FailuresTest, TransientFaultsHealThroughTheJanitorWithoutTheClient) {
  Execute("SELECT orderflow.inject_fault('reserve', 2, true)");
  const std::string id = Unique("heal");
  const HttpResponse first =
      server_->Post("/api/orders/process", ProcessBody(id, "30.00", "widget"));
  ASSERT_EQ(first.status, 200) << first.body;
  const rapidjson::Document waiting = ParseJson(first.body);
  EXPECT_STREQ(waiting["status"].GetString(), "reserving");
  EXPECT_TRUE(waiting["steps"]["charge"]["completed"].GetBool());
  ASSERT_TRUE(waiting["steps"]["reserve"]["lastError"].IsString());
  EXPECT_STREQ(waiting["steps"]["reserve"]["lastError"].GetString(), "injected transient fault");
  EXPECT_TRUE(waiting["nextRetryAt"].IsString());

  // No further client call: only the janitor can finish it.
  std::string last;
  const bool completed = Eventually(
      [&] {
        last = server_->Get("/api/orders/" + id).body;
        return ParseJson(last)["status"] == "completed";
      },
      std::chrono::seconds(10));
  ASSERT_TRUE(completed) << last;
  const rapidjson::Document done = ParseJson(last);
  EXPECT_EQ(done["steps"]["charge"]["attempts"].GetInt(), 1) << "charge ran once";
  EXPECT_EQ(done["steps"]["reserve"]["attempts"].GetInt(), 3) << "two failures, then success";
  EXPECT_TRUE(done["steps"]["confirm"]["completed"].GetBool());
  EXPECT_EQ(Ledger(id, "charge"), 1);
  EXPECT_EQ(Ledger(id, "refund"), 0);
  EXPECT_NE(server_->Log().find("\"event\":\"janitor_resumed\""), std::string::npos)
      << "the janitor logs what it resumed";
  const std::string log = server_->Log();
  const size_t line = log.find("\"event\":\"janitor_resumed_order\",\"orderId\":\"" + id + "\"");
  ASSERT_NE(line, std::string::npos) << "it names each order it resumed";
  const std::string entry = log.substr(line, log.find('\n', line) - line);
  EXPECT_NE(entry.find("\"step\":\"reserve\""), std::string::npos) << entry;
  EXPECT_NE(entry.find("\"reason\":\"injected transient fault\""), std::string::npos)
      << "and why it was waiting: " << entry;
}

TEST_F(FailuresTest, TrackedItemWithoutStockFailsAndIsRefunded) {
  const std::string item = Unique("sold-out");
  Execute("SELECT orderflow.set_stock($1, 0)", {item});
  const std::string id = Unique("nostock");
  const HttpResponse response =
      server_->Post("/api/orders/process", ProcessBody(id, "12.00", item));
  ASSERT_EQ(response.status, 200) << response.body;
  const rapidjson::Document state = ParseJson(response.body);
  EXPECT_STREQ(state["status"].GetString(), "failed");
  EXPECT_STREQ(state["error"].GetString(), "reserve failed: out_of_stock");
  EXPECT_TRUE(state["steps"]["charge"]["compensatedAt"].IsString());
  EXPECT_EQ(Ledger(id, "charge"), 1);
  EXPECT_EQ(Ledger(id, "refund"), 1);
  EXPECT_EQ(
      QueryValue("SELECT sum(signed_amount)::text FROM orderflow.ledger WHERE order_id = $1", {id}),
      "0.00");
}

TEST_F(FailuresTest, CancellingACompletedOrderRefundsAndReleasesOnce) {
  const std::string item = Unique("lamp");
  Execute("SELECT orderflow.set_stock($1, 5)", {item});
  const std::string id = Unique("cancel");
  ASSERT_EQ(server_->Post("/api/orders/process", ProcessBody(id, "25.00", item)).status, 200);
  EXPECT_EQ(QueryValue("SELECT on_hand::text FROM orderflow.inventory WHERE item = $1", {item}),
            "4");

  const HttpResponse cancelled =
      server_->Post("/api/orders/" + id + "/cancel", R"({"reason":"customer asked"})");
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;
  const rapidjson::Document state = ParseJson(cancelled.body);
  EXPECT_STREQ(state["status"].GetString(), "cancelled");
  EXPECT_STREQ(state["cancelReason"].GetString(), "customer asked");
  EXPECT_EQ(Ledger(id, "refund"), 1);
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.reservations WHERE order_id = $1"
                       " AND released_at IS NOT NULL",
                       {id}),
            1);
  EXPECT_EQ(QueryValue("SELECT on_hand::text FROM orderflow.inventory WHERE item = $1", {item}),
            "5");

  const HttpResponse again = server_->Post("/api/orders/" + id + "/cancel", "");
  ASSERT_EQ(again.status, 200);
  EXPECT_EQ(again.body, cancelled.body) << "a second cancel returns the same state";
  EXPECT_EQ(Ledger(id, "refund"), 1) << "and refunds nothing more";
  EXPECT_EQ(QueryValue("SELECT on_hand::text FROM orderflow.inventory WHERE item = $1", {item}),
            "5");
  EXPECT_EQ(server_->Get("/api/orders/" + id).body, cancelled.body);
}

TEST_F(FailuresTest, CancelAnswers404And400) {
  const HttpResponse unknown = server_->Post("/api/orders/" + Unique("nobody") + "/cancel", "");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_STREQ(ParseJson(unknown.body)["code"].GetString(), "not_found");
  const std::string id = Unique("cancel-bad");
  ASSERT_EQ(server_->Post("/api/orders/process", ProcessBody(id, "1.00", "widget")).status, 200);
  const HttpResponse wrong_type = server_->Post("/api/orders/" + id + "/cancel", R"({"reason":5})");
  EXPECT_EQ(wrong_type.status, 400);
  EXPECT_STREQ(ParseJson(wrong_type.body)["error"].GetString(),
               "reason must be a string of 1 to 500 characters");
  EXPECT_EQ(server_->Post("/api/orders/" + id + "/cancel", "not json").status, 400);
  EXPECT_EQ(Ledger(id, "refund"), 0) << "a refused cancel changes nothing";
}

// kill -9 while 200 workflows are in flight and every step has transient faults injected.
// Resets the drills and policies when it goes out of scope, so that a failed ASSERT does not
// leave 450 armed faults and a 1000-attempt policy to the suites that run after this one.
struct DrillsResetAtExit {
  DrillsResetAtExit() { ResetDrills(); }
  ~DrillsResetAtExit() {
    try {
      ResetDrills();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "could not reset the drills: " << e.what();
    }
  }
  DrillsResetAtExit(const DrillsResetAtExit&) = delete;
  DrillsResetAtExit& operator=(const DrillsResetAtExit&) = delete;
};

TEST(FailuresCrashTest, KillNineWithTwoHundredWorkflowsInFlightLosesAndDoublesNothing) {
  const DrillsResetAtExit drills;
  // Generous attempts so that the injected faults can never exhaust a workflow; short delays so
  // that the test is quick.
  Execute(
      "UPDATE orderflow.retry_policies SET max_attempts = 1000, base_delay_ms = 20,"
      " multiplier = 2, max_delay_ms = 200, jitter = 0.2");
  for (const char* step : {"charge", "reserve", "confirm"}) {
    Execute("SELECT orderflow.inject_fault($1, 150, true)", {step});
  }
  const std::map<std::string, std::string> env = {
      {"JANITOR_INTERVAL_MS", "50"}, {"DB_POOL_SIZE", "16"}, {"HTTP_THREADS", "16"}};
  ServerProcess server(env);
  ASSERT_NO_FATAL_FAILURE(server.Start());

  constexpr int kOrders = 200;
  const std::string prefix = Unique("crash");
  std::vector<std::string> ids;
  for (int i = 0; i < kOrders; ++i) ids.push_back(prefix + "-" + std::to_string(i));
  std::vector<HttpResponse> responses(kOrders);
  std::atomic<int> answered{0};
  const uint16_t port = server.port();

  std::thread killer([&] {
    Eventually([&] { return answered.load() >= 20; }, std::chrono::seconds(10));
    server.Kill9();
  });
  RunConcurrently(kOrders, [&](int i) {
    HttpRequest request;
    request.method = "POST";
    request.path = "/api/orders/process";
    request.body = ProcessBody(ids[i], "9.99", "widget");
    request.timeout_ms = 15000;
    responses[i] = SendHttp(port, request);
    if (responses[i].status != 0) ++answered;
  });
  killer.join();
  const int unanswered = static_cast<int>(std::count_if(
      responses.begin(), responses.end(), [](const HttpResponse& r) { return r.status == 0; }));
  EXPECT_GT(unanswered, 0) << "the kill must land while requests are in flight";
  std::printf("kill -9 after %d answers; %d requests got none\n", kOrders - unanswered, unanswered);

  // Restart: the janitor alone completes every workflow that reached the database. On Citus
  // every use of a drill armed for every order writes the one faults row (a reference table) on
  // every node, and Citus serialises writes to a reference table: the 450 faults are used one
  // at a time, each a two-phase commit, so the bound there is longer.
  const auto settle = std::chrono::seconds(OnCitus() ? 240 : 60);
  const auto restarted = std::chrono::steady_clock::now();
  ASSERT_NO_FATAL_FAILURE(server.Start());
  const std::string like = prefix + "-%";
  ASSERT_TRUE(Eventually(
      [&] {
        return QueryCount(
                   "SELECT count(*) FROM orderflow.workflows WHERE order_id LIKE $1"
                   " AND status <> 'completed'",
                   {like}) == 0;
      },
      settle))
      << QueryValue(
             "SELECT string_agg(order_id || ' ' || status, ', ') FROM orderflow.workflows"
             " WHERE order_id LIKE $1 AND status <> 'completed'",
             {like});

  // Clients retry the requests that got no answer, or a 503 with Retry-After (the server was
  // busy: on Citus, where every drill for every order writes one reference-table row on every
  // node, many of the 200 wait longer than DB_ACQUIRE_TIMEOUT_MS), as any client would.
  int busy = 0;
  for (int i = 0; i < kOrders; ++i) {
    if (responses[i].status == 503) {
      EXPECT_EQ(responses[i].Header("retry-after"), "1") << responses[i].body;
      ++busy;
    } else if (responses[i].status != 0) {
      EXPECT_EQ(responses[i].status, 200) << responses[i].body;
      continue;
    }
    const HttpResponse retry =
        server.Post("/api/orders/process", ProcessBody(ids[i], "9.99", "widget"));
    EXPECT_EQ(retry.status, 200) << retry.body;
  }
  std::printf("%d answers were 503 (busy) and were sent again\n", busy);
  ASSERT_TRUE(Eventually(
      [&] {
        return QueryCount(
                   "SELECT count(*) FROM orderflow.workflows WHERE order_id LIKE $1"
                   " AND status = 'completed'",
                   {like}) == kOrders;
      },
      settle));
  std::printf("all %d completed %.1f s after the restart\n", kOrders,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - restarted).count());
  EXPECT_EQ(
      QueryCount(
          "SELECT count(*) FROM orderflow.payments WHERE order_id LIKE $1 AND kind = 'charge'",
          {like}),
      kOrders)
      << "exactly one charge per workflow";
  EXPECT_EQ(
      QueryCount(
          "SELECT count(*) FROM (SELECT order_id FROM orderflow.payments"
          " WHERE order_id LIKE $1 AND kind = 'charge' GROUP BY order_id HAVING count(*) <> 1) x",
          {like}),
      0);
  EXPECT_EQ(
      QueryCount(
          "SELECT count(*) FROM orderflow.payments WHERE order_id LIKE $1 AND kind = 'refund'",
          {like}),
      0)
      << "no refunds";
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.outbox WHERE order_id LIKE $1", {like}),
            kOrders)
      << "one order.confirmed event each";
}

}  // namespace
}  // namespace orderflow_test
