// End-to-end: POST /orders and GET /orders/{id} over real HTTP against a real PostgreSQL, plus
// what every route shares (404, 405, 413, X-Request-Id).
#include <rapidjson/document.h>

#include <memory>
#include <pqxx/pqxx>
#include <set>

#include "gtest/gtest.h"
#include "harness.h"

namespace orderflow_test {
namespace {

std::string Key(const std::string& key) { return "Idempotency-Key: " + key; }

class OrdersTest : public SharedServerTest {};

TEST_F(OrdersTest, FirstRequestCreatesThenReplayReturnsSameBody) {
  const std::string key = Unique("key");
  const HttpResponse first =
      server_->Post("/orders", R"({"item":"widget","quantity":2})", {Key(key)});
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(first.Header("idempotent-replayed"), "") << "a first request is not a replay";
  EXPECT_EQ(first.Header("content-type"), "application/json");
  const rapidjson::Document created = ParseJson(first.body);
  ASSERT_TRUE(created.HasMember("id"));
  EXPECT_STREQ(created["item"].GetString(), "widget");
  EXPECT_EQ(created["quantity"].GetInt(), 2);

  const HttpResponse replay =
      server_->Post("/orders", R"({"item":"widget","quantity":2})", {Key(key)});
  ASSERT_EQ(replay.status, 200) << replay.body;
  EXPECT_EQ(replay.Header("idempotent-replayed"), "true");
  EXPECT_EQ(replay.body, first.body) << "a replay returns the stored body";
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.orders WHERE id = $1::uuid",
                       {created["id"].GetString()}),
            1);
}

TEST_F(OrdersTest, ReplayComparesJsonValuesNotBytes) {
  const std::string key = Unique("key");
  const HttpResponse first =
      server_->Post("/orders", R"({"item":"bolt","quantity":3})", {Key(key)});
  ASSERT_EQ(first.status, 201) << first.body;
  // Other key order, other spacing, an unknown field (ignored, not stored): the same request.
  const HttpResponse replay = server_->Post(
      "/orders", "{ \"quantity\" : 3,\n \"note\": \"ignored\", \"item\": \"bolt\" }", {Key(key)});
  ASSERT_EQ(replay.status, 200) << replay.body;
  EXPECT_EQ(ParseJson(replay.body)["id"], ParseJson(first.body)["id"]);
}

TEST_F(OrdersTest, WhitespaceAroundTheKeyIsNotPartOfIt) {
  const std::string key = Unique("key");
  ASSERT_EQ(server_->Post("/orders", R"({"item":"bolt","quantity":1})", {Key(key)}).status, 201);
  const HttpResponse padded = server_->Post("/orders", R"({"item":"bolt","quantity":1})",
                                            {"Idempotency-Key: \t " + key + " \t"});
  EXPECT_EQ(padded.status, 200) << padded.body;
  EXPECT_EQ(padded.Header("idempotent-replayed"), "true");
}

TEST_F(OrdersTest, DifferentKeysCreateDifferentOrders) {
  const std::string body = R"({"item":"nut","quantity":1})";
  const HttpResponse a = server_->Post("/orders", body, {Key(Unique("key"))});
  const HttpResponse b = server_->Post("/orders", body, {Key(Unique("key"))});
  ASSERT_EQ(a.status, 201) << a.body;
  ASSERT_EQ(b.status, 201) << b.body;
  EXPECT_NE(std::string(ParseJson(a.body)["id"].GetString()), ParseJson(b.body)["id"].GetString());
}

TEST_F(OrdersTest, MissingOrEmptyKeyGetsTheExactBody) {
  const std::string exact = R"({"error":"Idempotency-Key header is required"})";
  const HttpResponse missing = server_->Post("/orders", R"({"item":"nut","quantity":1})");
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(missing.body, exact);
  // "Name;" makes curl send the header with an empty value.
  const HttpResponse empty =
      server_->Post("/orders", R"({"item":"nut","quantity":1})", {"Idempotency-Key;"});
  EXPECT_EQ(empty.status, 400);
  EXPECT_EQ(empty.body, exact);
}

TEST_F(OrdersTest, OverlongOrNonPrintableKeyIsRejected) {
  const long before = QueryCount("SELECT count(*) FROM orderflow.idempotency_keys");
  const HttpResponse overlong =
      server_->Post("/orders", R"({"item":"nut","quantity":1})", {Key(std::string(256, 'k'))});
  EXPECT_EQ(overlong.status, 400);
  EXPECT_EQ(overlong.body,
            R"({"error":"Idempotency-Key must be 1 to 255 printable ASCII characters",)"
            R"("code":"invalid_request"})")
      << "the database's rule and sentence";
  const HttpResponse longest = server_->Post("/orders", R"({"item":"nut","quantity":1})",
                                             {Key(Unique("k") + std::string(200, 'k'))});
  EXPECT_EQ(longest.status, 201) << "keys up to 255 characters are fine: " << longest.body;
  const HttpResponse non_ascii = server_->Post("/orders", R"({"item":"nut","quantity":1})",
                                               {Key("caf\xc3\xa9-" + Unique("k"))});
  EXPECT_EQ(non_ascii.status, 400);
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.idempotency_keys"), before + 1);
}

TEST_F(OrdersTest, FieldRulesAreTheDatabasesSameAnswerOverHttpAndPsql) {
  // A quantity of 2.0 has an integral value: the database takes it, over HTTP as in psql.
  const std::string body = R"({"item":"w","quantity":2.0})";
  const HttpResponse http = server_->Post("/orders", body, {Key(Unique("key"))});
  ASSERT_EQ(http.status, 201) << http.body;
  EXPECT_EQ(ParseJson(http.body)["quantity"].GetInt(), 2);
  EXPECT_EQ(QueryValue("SELECT status FROM orderflow.create_order_idempotent($1, $2::jsonb)",
                       {Unique("key"), body}),
            "201");
  // 1.5 is refused by both, with one sentence.
  const std::string half = R"({"item":"w","quantity":1.5})";
  const HttpResponse refused = server_->Post("/orders", half, {Key(Unique("key"))});
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(
      refused.body,
      R"({"error":"quantity must be an integer from 1 to 1000000","code":"invalid_request"})");
  try {
    Execute("SELECT orderflow.create_order_idempotent($1, $2::jsonb)", {Unique("key"), half});
    ADD_FAILURE() << "SQL took a quantity of 1.5";
  } catch (const pqxx::sql_error& e) {
    EXPECT_EQ(e.sqlstate(), "22023");
    EXPECT_EQ(
        std::string(e.what()).rfind("ERROR:  quantity must be an integer from 1 to 1000000", 0), 0U)
        << e.what();
  }
}

TEST_F(OrdersTest, SameKeyWithAnotherBodyIs422AndCreatesNothing) {
  const std::string key = Unique("key");
  ASSERT_EQ(server_->Post("/orders", R"({"item":"gear","quantity":1})", {Key(key)}).status, 201);
  const long orders = QueryCount("SELECT count(*) FROM orderflow.orders");
  const HttpResponse other =
      server_->Post("/orders", R"({"item":"gear","quantity":5})", {Key(key)});
  EXPECT_EQ(other.status, 422) << other.body;
  EXPECT_STREQ(ParseJson(other.body)["code"].GetString(), "idempotency_key_reused");
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.orders"), orders);
}

TEST_F(OrdersTest, BadBodyIs400NamingTheFieldAndDoesNotConsumeTheKey) {
  const std::string key = Unique("key");
  const HttpResponse missing = server_->Post("/orders", R"({"item":"gear"})", {Key(key)});
  EXPECT_EQ(missing.status, 400);
  EXPECT_STREQ(ParseJson(missing.body)["error"].GetString(), "quantity is required");
  const HttpResponse wrong_type =
      server_->Post("/orders", R"({"item":"gear","quantity":"2"})", {Key(key)});
  EXPECT_EQ(wrong_type.status, 400);
  EXPECT_NE(std::string(ParseJson(wrong_type.body)["error"].GetString()).find("quantity"),
            std::string::npos);
  const HttpResponse not_json = server_->Post("/orders", R"({"item":)", {Key(key)});
  EXPECT_EQ(not_json.status, 400);
  EXPECT_STREQ(ParseJson(not_json.body)["code"].GetString(), "invalid_request");
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.idempotency_keys WHERE key = $1", {key}), 0);

  const HttpResponse good = server_->Post("/orders", R"({"item":"gear","quantity":2})", {Key(key)});
  EXPECT_EQ(good.status, 201) << "the key is still free after the 400s: " << good.body;
}

TEST_F(OrdersTest, FiftySimultaneousRequestsWithOneKeyCreateOneOrder) {
  const std::string key = Unique("race");
  constexpr int kClients = 50;
  std::vector<HttpResponse> responses(kClients);
  RunConcurrently(kClients, [&](int i) {
    responses[i] = server_->Post("/orders", R"({"item":"race-item","quantity":7})", {Key(key)});
  });
  int created = 0;
  int replayed = 0;
  std::set<std::string> ids;
  for (const HttpResponse& response : responses) {
    ASSERT_TRUE(response.status == 201 || response.status == 200)
        << response.status << " " << response.body << " " << response.error;
    created += response.status == 201;
    replayed += response.status == 200 && response.Header("idempotent-replayed") == "true";
    ids.insert(ParseJson(response.body)["id"].GetString());
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(replayed, kClients - 1);
  ASSERT_EQ(ids.size(), 1U) << "every body names the same order";
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.idempotency_keys WHERE key = $1", {key}), 1);
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.orders WHERE id = $1::uuid", {*ids.begin()}),
            1);
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.orders o JOIN orderflow.idempotency_keys k"
                       " ON k.order_id = o.id AND k.key = o.idempotency_key WHERE k.key = $1",
                       {key}),
            1);
}

TEST_F(OrdersTest, GetOrderById) {
  const HttpResponse created =
      server_->Post("/orders", R"({"item":"lamp","quantity":4})", {Key(Unique("key"))});
  ASSERT_EQ(created.status, 201);
  const std::string id = ParseJson(created.body)["id"].GetString();
  const HttpResponse found = server_->Get("/orders/" + id);
  ASSERT_EQ(found.status, 200) << found.body;
  EXPECT_EQ(ParseJson(found.body)["id"], ParseJson(created.body)["id"]);
  EXPECT_EQ(ParseJson(found.body)["quantity"].GetInt(), 4);

  const HttpResponse unknown = server_->Get("/orders/00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_STREQ(ParseJson(unknown.body)["code"].GetString(), "not_found");
  EXPECT_EQ(server_->Get("/orders/not-a-uuid").status, 404);
}

TEST_F(OrdersTest, UnknownPathWrongMethodAndOversizedBodyGetJsonErrors) {
  const HttpResponse unknown = server_->Get("/nowhere");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_STREQ(ParseJson(unknown.body)["code"].GetString(), "not_found");

  HttpRequest put;
  put.method = "PUT";
  put.path = "/orders";
  put.body = "{}";
  const HttpResponse wrong_method = server_->Send(put);
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_STREQ(ParseJson(wrong_method.body)["code"].GetString(), "method_not_allowed");
  EXPECT_EQ(wrong_method.Header("allow"), "POST");

  const std::string key = Unique("key");
  const std::string huge = R"({"item":")" + std::string((1 << 20) + 10, 'x') + R"(","quantity":1})";
  const HttpResponse too_large = server_->Post("/orders", huge, {Key(key)});
  EXPECT_EQ(too_large.status, 413);
  EXPECT_STREQ(ParseJson(too_large.body)["code"].GetString(), "payload_too_large");
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.idempotency_keys WHERE key = $1", {key}), 0);
}

TEST_F(OrdersTest, EveryResponseCarriesARequestId) {
  const HttpResponse generated = server_->Get("/health");
  EXPECT_EQ(generated.status, 200);
  EXPECT_EQ(generated.body, R"({"status":"ok"})");
  EXPECT_EQ(generated.Header("x-request-id").size(), 32U);
  const HttpResponse echoed = server_->Get("/nowhere", {"X-Request-Id: trace-abc.123"});
  EXPECT_EQ(echoed.Header("x-request-id"), "trace-abc.123");
  EXPECT_NE(server_->Log().find("\"requestId\":\"trace-abc.123\""), std::string::npos)
      << "the request's log line carries its id";
}

TEST(OrdersRestartTest, OrdersAndKeysSurviveAServerRestart) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start());
  const std::string key = Unique("restart");
  const HttpResponse created =
      server.Post("/orders", R"({"item":"anvil","quantity":1})", {Key(key)});
  ASSERT_EQ(created.status, 201);
  server.Kill9();
  ASSERT_NO_FATAL_FAILURE(server.Start());
  const HttpResponse replay =
      server.Post("/orders", R"({"item":"anvil","quantity":1})", {Key(key)});
  EXPECT_EQ(replay.status, 200);
  EXPECT_EQ(replay.body, created.body);
  EXPECT_EQ(server.Get("/orders/" + std::string(ParseJson(created.body)["id"].GetString())).status,
            200);
}

}  // namespace
}  // namespace orderflow_test
