// End-to-end: the retry-safe workflow (POST /api/orders/process, GET /api/orders/{orderId})
// over real HTTP against a real PostgreSQL.
#include <rapidjson/document.h>

#include <algorithm>
#include <map>
#include <pqxx/pqxx>

#include "gtest/gtest.h"
#include "harness.h"

namespace orderflow_test {
namespace {

long Charges(const std::string& order_id) {
  return QueryCount(
      "SELECT count(*) FROM orderflow.payments WHERE order_id = $1 AND kind = 'charge'",
      {order_id});
}

class ProcessTest : public SharedServerTest {};

void ExpectAllStepsDoneOnce(const rapidjson::Document& state) {
  ASSERT_TRUE(state.HasMember("steps"));
  for (const char* step : {"charge", "reserve", "confirm"}) {
    ASSERT_TRUE(state["steps"].HasMember(step)) << step;
    const rapidjson::Value& s = state["steps"][step];
    EXPECT_TRUE(s["completed"].GetBool()) << step;
    EXPECT_EQ(s["attempts"].GetInt(), 1) << step;
    EXPECT_TRUE(s["completedAt"].IsString()) << step;
    EXPECT_TRUE(s["lastError"].IsNull()) << step;
  }
}

TEST_F(ProcessTest, CompletesAllThreeStepsWithPerStepStatus) {
  const std::string id = Unique("order");
  const HttpResponse response =
      server_->Post("/api/orders/process", ProcessBody(id, "99.99", "widget"));
  ASSERT_EQ(response.status, 200) << response.body;
  const rapidjson::Document state = ParseJson(response.body);
  EXPECT_STREQ(state["orderId"].GetString(), id.c_str());
  EXPECT_STREQ(state["status"].GetString(), "completed");
  EXPECT_DOUBLE_EQ(state["amount"].GetDouble(), 99.99);
  EXPECT_STREQ(state["item"].GetString(), "widget");
  EXPECT_TRUE(state["error"].IsNull());
  EXPECT_TRUE(state["nextRetryAt"].IsNull());
  EXPECT_TRUE(state["createdAt"].IsString());
  EXPECT_TRUE(state["updatedAt"].IsString());
  ExpectAllStepsDoneOnce(state);
  EXPECT_EQ(Charges(id), 1);
  EXPECT_EQ(QueryValue("SELECT amount::text FROM orderflow.payments WHERE order_id = $1", {id}),
            "99.99");
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.reservations WHERE order_id = $1", {id}), 1);
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.outbox WHERE event_key = $1 || ':confirm'"
                       " AND event_type = 'order.confirmed'",
                       {id}),
            1);
}

TEST_F(ProcessTest, SecondCallReturnsCompletedWithEveryAttemptStillOne) {
  const std::string id = Unique("order");
  const std::string body = ProcessBody(id, "10.50", "widget");
  ASSERT_EQ(server_->Post("/api/orders/process", body).status, 200);
  const HttpResponse again = server_->Post("/api/orders/process", body);
  ASSERT_EQ(again.status, 200) << again.body;
  const rapidjson::Document state = ParseJson(again.body);
  EXPECT_STREQ(state["status"].GetString(), "completed");
  ExpectAllStepsDoneOnce(state);
  // Resuming by id alone answers the same.
  const HttpResponse by_id = server_->Post("/api/orders/process", R"({"orderId":")" + id + R"("})");
  ASSERT_EQ(by_id.status, 200) << by_id.body;
  EXPECT_EQ(by_id.body, again.body);
  EXPECT_EQ(Charges(id), 1);
}

TEST_F(ProcessTest, DifferentOrderIdsAreIndependent) {
  const std::string a = Unique("order");
  const std::string b = Unique("order");
  ASSERT_EQ(server_->Post("/api/orders/process", ProcessBody(a, "1.00", "widget")).status, 200);
  const HttpResponse second =
      server_->Post("/api/orders/process", ProcessBody(b, "2.00", "gadget"));
  ASSERT_EQ(second.status, 200);
  const rapidjson::Document state = ParseJson(second.body);
  EXPECT_STREQ(state["orderId"].GetString(), b.c_str());
  EXPECT_DOUBLE_EQ(state["amount"].GetDouble(), 2.0);
  ExpectAllStepsDoneOnce(state);
  EXPECT_EQ(Charges(a), 1);
  EXPECT_EQ(Charges(b), 1);
}

TEST_F(ProcessTest, KnownOrderIdWithAnotherAmountOrItemIs409) {
  const std::string id = Unique("order");
  ASSERT_EQ(server_->Post("/api/orders/process", ProcessBody(id, "5.00", "widget")).status, 200);
  const HttpResponse amount =
      server_->Post("/api/orders/process", ProcessBody(id, "6.00", "widget"));
  EXPECT_EQ(amount.status, 409) << amount.body;
  EXPECT_STREQ(ParseJson(amount.body)["code"].GetString(), "order_conflict");
  const HttpResponse item = server_->Post("/api/orders/process", ProcessBody(id, "5.00", "gadget"));
  EXPECT_EQ(item.status, 409);
  // 5 and 5.00 are the same amount.
  EXPECT_EQ(server_->Post("/api/orders/process", ProcessBody(id, "5", "widget")).status, 200);
  EXPECT_EQ(Charges(id), 1);
}

TEST_F(ProcessTest, BadBodiesAre400AndStartNothing) {
  const std::string id = Unique("order");
  const struct {
    std::string body;
    std::string mentions;
  } cases[] = {
      {R"({"amount":1,"item":"x"})", "orderId"},
      {ProcessBody(id, "-1", "x"), "amount"},
      {ProcessBody(id, "0", "x"), "amount"},
      {ProcessBody(id, "1.005", "x"), "amount"},  // refused by SQL: at most 2 decimals
      {R"({"orderId":")" + id + R"(","amount":"12","item":"x"})", "amount"},
      {R"({"orderId":")" + id + R"(","amount":12,"item":""})", "item"},
      {R"({"orderId":")" + id + R"(","amount":12})", "item"},  // new order needs the item
      {"[1,2]", "object"},
  };
  for (const auto& c : cases) {
    const HttpResponse response = server_->Post("/api/orders/process", c.body);
    EXPECT_EQ(response.status, 400) << c.body << " → " << response.body;
    const rapidjson::Document error = ParseJson(response.body);
    ASSERT_TRUE(error.HasMember("error")) << response.body;
    EXPECT_NE(std::string(error["error"].GetString()).find(c.mentions), std::string::npos)
        << c.body << " → " << response.body;
  }
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.workflows WHERE order_id = $1", {id}), 0);
}

TEST_F(ProcessTest, FiftySimultaneousCallsForOneNewOrderChargeOnce) {
  const std::string id = Unique("race");
  constexpr int kClients = 50;
  std::vector<HttpResponse> responses(kClients);
  RunConcurrently(kClients, [&](int i) {
    responses[i] = server_->Post("/api/orders/process", ProcessBody(id, "42.00", "widget"));
  });
  for (const HttpResponse& response : responses) {
    ASSERT_EQ(response.status, 200) << response.body << response.error;
    const rapidjson::Document state = ParseJson(response.body);
    EXPECT_STREQ(state["status"].GetString(), "completed");
    ExpectAllStepsDoneOnce(state);
  }
  EXPECT_EQ(Charges(id), 1);
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.reservations WHERE order_id = $1", {id}), 1);
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.outbox WHERE order_id = $1", {id}), 1);
}

TEST_F(ProcessTest, GetWorkflowReturnsTheStateOr404) {
  const std::string id = Unique("order with spaces/and slash");
  const HttpResponse processed =
      server_->Post("/api/orders/process", ProcessBody(id, "3.00", "widget"));
  ASSERT_EQ(processed.status, 200);
  std::string escaped;
  for (const char c : id) {
    if (c == ' ') {
      escaped += "%20";
    } else if (c == '/') {
      escaped += "%2F";
    } else {
      escaped += c;
    }
  }
  const HttpResponse found = server_->Get("/api/orders/" + escaped);
  ASSERT_EQ(found.status, 200) << found.body;
  EXPECT_EQ(found.body, processed.body);
  const HttpResponse unknown = server_->Get("/api/orders/" + Unique("nobody"));
  EXPECT_EQ(unknown.status, 404);
  EXPECT_STREQ(ParseJson(unknown.body)["code"].GetString(), "not_found");
}

TEST_F(ProcessTest, TrackedItemWithoutStockFailsWithOutOfStock) {
  const std::string item = Unique("scarce");
  Execute("INSERT INTO orderflow.inventory (item, on_hand, updated_at) VALUES ($1, 0, now())",
          {item});
  const std::string id = Unique("order");
  const HttpResponse response = server_->Post("/api/orders/process", ProcessBody(id, "8.00", item));
  ASSERT_EQ(response.status, 200) << response.body;
  const rapidjson::Document state = ParseJson(response.body);
  EXPECT_STREQ(state["status"].GetString(), "failed");
  EXPECT_NE(std::string(state["error"].GetString()).find("out_of_stock"), std::string::npos);
  EXPECT_TRUE(state["steps"]["charge"]["completed"].GetBool());
  EXPECT_FALSE(state["steps"]["reserve"]["completed"].GetBool());
  EXPECT_FALSE(state["steps"]["confirm"]["completed"].GetBool());
}

// Collects NOTIFY payloads of one channel.
class Listener : public pqxx::notification_receiver {
 public:
  Listener(pqxx::connection_base& connection, const std::string& channel)
      : pqxx::notification_receiver(connection, channel) {}
  void operator()(const std::string& payload, int /*backend_pid*/) override {
    payloads.push_back(payload);
  }
  std::vector<std::string> payloads;
};

TEST(OutboxTest, ConfirmedOrdersAreAnnouncedOnceWithNotifyAfterTheirCommit) {
  ServerProcess server(std::map<std::string, std::string>{{"JANITOR_INTERVAL_MS", "100"}});
  ASSERT_NO_FATAL_FAILURE(server.Start());
  pqxx::connection connection(TestDatabaseUrl());
  Listener listener(connection, "orderflow_events");
  const std::string id = Unique("notify");
  ASSERT_EQ(server.Post("/api/orders/process", ProcessBody(id, "4.00", "widget")).status, 200);
  const std::string key = "\"key\": \"" + id + ":confirm\"";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int seen = 0;
  while (seen == 0 && std::chrono::steady_clock::now() < deadline) {
    connection.await_notification(0, 100000);
    seen = static_cast<int>(
        std::count_if(listener.payloads.begin(), listener.payloads.end(),
                      [&](const std::string& p) { return p.find(key) != std::string::npos; }));
  }
  ASSERT_EQ(seen, 1) << "the order.confirmed event was NOTIFYed by the server's outbox relay";
  EXPECT_EQ(
      QueryCount(
          "SELECT count(*) FROM orderflow.outbox WHERE order_id = $1 AND published_at IS NOT NULL",
          {id}),
      1);
  // Nothing is sent twice.
  connection.await_notification(0, 500000);
  EXPECT_EQ(std::count_if(listener.payloads.begin(), listener.payloads.end(),
                          [&](const std::string& p) { return p.find(key) != std::string::npos; }),
            1);
}

TEST(ProcessRestartTest, WorkflowStateSurvivesAServerRestart) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start());
  const std::string id = Unique("restart");
  const HttpResponse before =
      server.Post("/api/orders/process", ProcessBody(id, "12.34", "widget"));
  ASSERT_EQ(before.status, 200);
  server.Kill9();
  ASSERT_NO_FATAL_FAILURE(server.Start());
  const HttpResponse after = server.Get("/api/orders/" + id);
  ASSERT_EQ(after.status, 200);
  EXPECT_EQ(after.body, before.body);
  const HttpResponse again = server.Post("/api/orders/process", ProcessBody(id, "12.34", "widget"));
  EXPECT_EQ(again.body, before.body);
  EXPECT_EQ(Charges(id), 1);
}

}  // namespace
}  // namespace orderflow_test
