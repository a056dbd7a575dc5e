// End-to-end: production hardening — metrics, the front's retries of transient SQLSTATEs, a
// PostgreSQL restart under load, kill -9 under load, a slow client, and the graceful stop.
#include <poll.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <pqxx/pqxx>
#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "harness.h"

namespace orderflow_test {
namespace {

const char kOrderBody[] = R"({"item":"widget","quantity":1})";

// The value of one sample line of a Prometheus text page, or -1.
double Sample(const std::string& page, const std::string& series) {
  const std::string line = "\n" + series + " ";
  const size_t at = page.find(line);
  if (at == std::string::npos) return -1;
  return std::atof(page.c_str() + at + line.size());
}

TEST(MetricsEndToEndTest, ExposesRequestsPoolJanitorAndWorkflowCounts) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start());
  ASSERT_EQ(server.Post("/orders", kOrderBody, {"Idempotency-Key: " + Unique("m")}).status, 201);
  ASSERT_EQ(server.Post("/orders", "{}", {"Idempotency-Key: " + Unique("m")}).status, 400);
  ASSERT_EQ(server.Post("/api/orders/process", ProcessBody(Unique("m"))).status, 200);
  ASSERT_EQ(server.Get("/nowhere").status, 404);
  // Client mistakes the database refuses (22023 for the empty body above, OF404 here) are
  // answers, not database errors.
  ASSERT_EQ(server.Post("/api/orders/" + Unique("nobody") + "/cancel", "").status, 404);

  const HttpResponse page = server.Get("/metrics");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.Header("content-type").rfind("text/plain", 0), 0U) << page.Header("content-type");
  const std::string& text = page.body;
  EXPECT_EQ(Sample(text, R"(orderflow_http_requests_total{route="POST /orders",status="201"})"), 1)
      << text;
  EXPECT_EQ(Sample(text, R"(orderflow_http_requests_total{route="POST /orders",status="400"})"), 1);
  EXPECT_EQ(
      Sample(text,
             R"(orderflow_http_requests_total{route="POST /api/orders/process",status="200"})"),
      1);
  EXPECT_EQ(Sample(text, R"(orderflow_http_requests_total{route="unmatched",status="404"})"), 1);
  EXPECT_EQ(Sample(text, R"(orderflow_http_request_duration_seconds_count{route="POST /orders"})"),
            2);
  EXPECT_EQ(
      Sample(text,
             R"(orderflow_http_request_duration_seconds_bucket{route="POST /orders",le="+Inf"})"),
      2);
  const double pool = Sample(text, "orderflow_db_pool_connections");
  EXPECT_GE(pool, 4);
  EXPECT_GE(Sample(text, "orderflow_db_pool_connections_in_use"), 0);
  EXPECT_LE(Sample(text, "orderflow_db_pool_connections_in_use"), pool);
  EXPECT_EQ(Sample(text, "orderflow_db_pool_waiting"), 0);
  EXPECT_EQ(text.find("orderflow_db_errors_total{"), std::string::npos)
      << "no database error was counted: " << text;
  EXPECT_GE(Sample(text, "orderflow_janitor_resumed_workflows_total"), 0);
  EXPECT_EQ(Sample(text, "orderflow_database_up"), 1);
  for (const char* status :
       {"pending", "charging", "reserving", "confirming", "completed", "failed", "cancelled"}) {
    EXPECT_EQ(Sample(text, std::string("orderflow_workflows{status=\"") + status + "\"}"),
              QueryCount("SELECT count(*) FROM orderflow.workflows WHERE status = $1", {status}))
        << status << " is counted exactly";
  }
}

// A trigger that raises a chosen SQLSTATE on the next `failures` order inserts: a real
// transient error from the real database, to watch the front retry it. Attempts are counted
// with a sequence because nextval survives the rollback that the raise causes.
// The database itself raises 40001 / 40P01 for the next N inserts into orderflow.orders: a
// trigger that counts attempts in a local table and sequence. On Citus the insert runs on the
// worker that holds the key's shard (create_order_idempotent is delegated there), so the table,
// the sequence and the trigger function are created on every node, each node counting its own
// attempts, and the trigger is created with citus.enable_unsafe_triggers so that Citus puts it
// on the shards (it refuses triggers on distributed tables otherwise). The error then comes
// back through the coordinator as the front would meet a real one.
class FrontRetryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    OnEveryNode(
        "CREATE TABLE IF NOT EXISTS public.orderflow_test_faults (failures int, sqlstate text)");
    OnEveryNode("CREATE SEQUENCE IF NOT EXISTS public.orderflow_test_attempts");
    Fail(0, "40001");
    OnEveryNode(
        "CREATE OR REPLACE FUNCTION public.orderflow_test_fail() RETURNS trigger LANGUAGE plpgsql "
        "AS $body$"
        " DECLARE v_fault public.orderflow_test_faults;"
        " BEGIN"
        "   SELECT * INTO v_fault FROM public.orderflow_test_faults;"
        "   IF nextval('public.orderflow_test_attempts') <= v_fault.failures THEN"
        "     RAISE EXCEPTION 'injected by the test' USING ERRCODE = v_fault.sqlstate;"
        "   END IF;"
        "   RETURN NEW;"
        " END $body$");
    WithTriggersOnShards(
        "CREATE TRIGGER orderflow_test_fail BEFORE INSERT ON orderflow.orders"
        " FOR EACH ROW EXECUTE FUNCTION public.orderflow_test_fail()");
    ASSERT_NO_FATAL_FAILURE(server_.Start());
  }
  void TearDown() override {
    WithTriggersOnShards("DROP TRIGGER IF EXISTS orderflow_test_fail ON orderflow.orders");
    // On Citus the trigger made the function a distributed object: dropped on the coordinator,
    // it goes from every node (the workers then have none to drop, and say so harmlessly).
    Execute("DROP FUNCTION IF EXISTS public.orderflow_test_fail()");
    OnEveryNode("DROP FUNCTION IF EXISTS public.orderflow_test_fail()");
    OnEveryNode("DROP TABLE IF EXISTS public.orderflow_test_faults");
    OnEveryNode("DROP SEQUENCE IF EXISTS public.orderflow_test_attempts");
  }
  // The next `failures` inserts into orderflow.orders raise `sqlstate` (on each node).
  static void Fail(int failures, const std::string& sqlstate) {
    OnEveryNode("TRUNCATE public.orderflow_test_faults");
    OnEveryNode(QueryValue("SELECT format('INSERT INTO public.orderflow_test_faults VALUES (%s, %L)',"
                           " $1::int, $2::text)",
                           {std::to_string(failures), sqlstate}));
    OnEveryNode("ALTER SEQUENCE public.orderflow_test_attempts RESTART");
  }
  // Runs a statement on the test database and, on Citus, as a local statement on every node
  // (run_command_on_all_nodes; a node that refuses reports it in the result, not as an error).
  static void OnEveryNode(const std::string& sql) {
    if (!OnCitus()) {
      Execute(sql);
      return;
    }
    Execute("SELECT run_command_on_all_nodes($1)", {sql});
  }
  // Runs a trigger DDL statement on the test database; on Citus with citus.enable_unsafe_triggers
  // for its transaction, so that the trigger is created on (or dropped from) the shards.
  static void WithTriggersOnShards(const std::string& sql) {
    if (!OnCitus()) {
      Execute(sql);
      return;
    }
    Execute(
        "DO $do$ BEGIN PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);"
        " EXECUTE " + QueryValue("SELECT quote_literal($1::text)", {sql}) + "; END $do$");
  }
  ServerProcess server_;
};

TEST_F(FrontRetryTest, SerializationFailuresAndDeadlocksAreRetriedTransparently) {
  int errors = 0;
  for (const char* sqlstate : {"40001", "40P01"}) {
    Fail(2, sqlstate);
    const HttpResponse created =
        server_.Post("/orders", kOrderBody, {"Idempotency-Key: " + Unique("retry")});
    EXPECT_EQ(created.status, 201) << sqlstate << ": " << created.body;
    errors += 2;
    const std::string page = server_.Get("/metrics").body;
    EXPECT_EQ(
        Sample(page, std::string(R"(orderflow_db_retries_total{sqlstate=")") + sqlstate + "\"}"), 2)
        << page;
    EXPECT_EQ(Sample(page, R"(orderflow_db_errors_total{class="40"})"), errors);
  }
}

TEST_F(FrontRetryTest, PersistentTransientErrorsBecome503AndConsumeNothing) {
  Fail(1000, "40001");
  const std::string key = Unique("retry");
  const HttpResponse refused = server_.Post("/orders", kOrderBody, {"Idempotency-Key: " + key});
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(refused.Header("retry-after"), "1");
  EXPECT_STREQ(ParseJson(refused.body)["code"].GetString(), "unavailable");
  EXPECT_EQ(Sample(server_.Get("/metrics").body, R"(orderflow_db_retries_total{sqlstate="40001"})"),
            3)
      << "three retries, then the answer";
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.idempotency_keys WHERE key = $1", {key}), 0);
  Fail(0, "40001");
  EXPECT_EQ(server_.Post("/orders", kOrderBody, {"Idempotency-Key: " + key}).status, 201)
      << "the key was not consumed by the failures";
}

// One request a load client sent, and what it got.
struct Sent {
  bool create = false;  // POST /orders (else POST /api/orders/process)
  std::string id;       // the Idempotency-Key or the orderId
  long status = 0;
  std::string body;
  std::string retry_after;
  double seconds = 0;
};

HttpResponse SendOne(uint16_t port, const Sent& sent, long timeout_ms = 30000) {
  HttpRequest request;
  request.method = "POST";
  request.timeout_ms = timeout_ms;
  if (sent.create) {
    request.path = "/orders";
    request.body = kOrderBody;
    request.headers = {"Idempotency-Key: " + sent.id};
  } else {
    request.path = "/api/orders/process";
    request.body = ProcessBody(sent.id);
  }
  return SendHttp(port, request);
}

// A text[] literal of ids made of [A-Za-z0-9-] (all ours are).
std::string ArrayOf(const std::vector<std::string>& ids) {
  std::string out = "{";
  for (const std::string& id : ids) out += (out.size() > 1 ? "," : "") + id;
  return out + "}";
}

void ExpectNothingDoubledNothingMissing(const std::vector<Sent>& log, const std::string& prefix) {
  std::vector<std::string> keys;
  std::vector<std::string> orders;
  std::map<std::string, std::string> order_of_key;
  for (const Sent& s : log) {
    if (s.status < 200 || s.status > 299) continue;
    if (!s.create) {
      orders.push_back(s.id);
      continue;
    }
    keys.push_back(s.id);
    const std::string id = ParseJson(s.body)["id"].GetString();
    const auto [it, first] = order_of_key.emplace(s.id, id);
    EXPECT_EQ(it->second, id) << "two answers for key " << s.id << " name different orders";
  }
  // Every key that got a 2xx maps to exactly the order it was answered with.
  EXPECT_EQ(
      QueryCount("SELECT count(DISTINCT k.key) FROM orderflow.idempotency_keys k"
                 " JOIN orderflow.orders o ON o.id = k.order_id AND o.idempotency_key = k.key"
                 " WHERE k.key = ANY ($1::text[])",
                 {ArrayOf(keys)}),
      static_cast<long>(order_of_key.size()))
      << "nothing that got a 2xx is missing";
  std::string pairs = "{";
  for (const auto& [key, id] : order_of_key)
    pairs += (pairs.size() > 1 ? "," : "") + key + ":" + id;
  pairs += "}";
  EXPECT_EQ(QueryCount("SELECT count(*) FROM unnest($1::text[]) AS p (pair)"
                       " JOIN orderflow.idempotency_keys k ON k.key = split_part(p.pair, ':', 1)"
                       " WHERE k.order_id::text <> split_part(p.pair, ':', 2)",
                       {pairs}),
            0)
      << "every key still names the order its client was given";
  EXPECT_EQ(
      QueryCount("SELECT count(*) FROM unnest($1::text[]) AS o (id) LEFT JOIN orderflow.workflows w"
                 " ON w.order_id = o.id WHERE w.status IS DISTINCT FROM 'completed'",
                 {ArrayOf(orders)}),
      0)
      << "every workflow that got a 200 is completed";
  EXPECT_EQ(
      QueryCount(
          "SELECT count(*) FROM (SELECT order_id FROM orderflow.payments WHERE order_id LIKE $1"
          " AND kind = 'charge' GROUP BY order_id HAVING count(*) > 1) doubled",
          {prefix + "%"}),
      0)
      << "no order is charged twice";
  EXPECT_EQ(
      QueryCount(
          "SELECT count(*) FROM orderflow.workflows w WHERE w.order_id LIKE $1 AND NOT EXISTS"
          " (SELECT 1 FROM orderflow.payments p WHERE p.order_id = w.order_id"
          " AND p.idempotency_key = w.order_id || ':charge')",
          {prefix + "%"}),
      0)
      << "every workflow is charged";
}

TEST(OutageTest, PostgresRestartUnderLoadGives503sThenRecoversWithinFiveSeconds) {
  ServerProcess server(
      std::map<std::string, std::string>{{"DB_POOL_SIZE", "8"}, {"HTTP_THREADS", "8"}});
  ASSERT_NO_FATAL_FAILURE(server.Start());
  const uint16_t port = server.port();
  const std::string prefix = Unique("outage");

  std::mutex mutex;
  std::vector<Sent> log;
  std::atomic<bool> stop{false};
  std::atomic<int> counter{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      while (!stop.load()) {
        Sent sent;
        sent.create = c % 2 == 0;
        sent.id = prefix + "-" + std::to_string(counter++);
        const auto started = std::chrono::steady_clock::now();
        const HttpResponse response = SendOne(port, sent);
        sent.seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        sent.status = response.status;
        sent.body = response.body;
        sent.retry_after = response.Header("retry-after");
        {
          std::lock_guard<std::mutex> lock(mutex);
          log.push_back(sent);
        }
        // A polite client waits a little after a 503 instead of hammering.
        if (sent.status == 503) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }

  std::this_thread::sleep_for(std::chrono::seconds(1));
  ASSERT_NO_FATAL_FAILURE(StopDatabase());
  EXPECT_TRUE(
      Eventually([&] { return server.Get("/health").status == 503; }, std::chrono::seconds(5)));
  const HttpResponse down = server.Get("/health");
  EXPECT_EQ(down.status, 503);
  EXPECT_EQ(down.body, R"({"status":"unavailable"})");
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ASSERT_NO_FATAL_FAILURE(StartDatabase());
  const auto restarted = std::chrono::steady_clock::now();
  EXPECT_TRUE(
      Eventually([&] { return server.Get("/health").status == 200; }, std::chrono::seconds(5)))
      << "the server recovers by itself within 5 s";
  std::printf(
      "recovered %.0f ms after PostgreSQL was back\n",
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - restarted)
          .count());
  std::this_thread::sleep_for(std::chrono::seconds(2));
  stop = true;
  for (std::thread& t : clients) t.join();

  int ok = 0;
  int unavailable = 0;
  double slowest = 0;
  for (const Sent& s : log) {
    EXPECT_TRUE(s.status == 200 || s.status == 201 || s.status == 503)
        << s.status << " " << s.body << " for " << s.id;
    if (s.status == 503) {
      ++unavailable;
      EXPECT_EQ(s.retry_after, "1") << "a 503 says when to retry";
      EXPECT_FALSE(ParseJson(s.body).HasMember("requestId")) << "a 503 is not an internal error";
    } else if (s.status == 200 || s.status == 201) {
      ++ok;
    }
    slowest = std::max(slowest, s.seconds);
  }
  std::printf("%zu requests: %d succeeded, %d got 503; slowest %.2f s\n", log.size(), ok,
              unavailable, slowest);
  EXPECT_GT(unavailable, 0) << "clients saw the outage";
  EXPECT_LT(slowest, 10.0) << "no request hangs past its timeouts (connect 3 s, statement 5 s)";
  ExpectNothingDoubledNothingMissing(log, prefix);

  // The 503s were refusals, not half-done work: sending them again succeeds exactly once.
  for (Sent& s : log) {
    if (s.status != 503) continue;
    const HttpResponse again = SendOne(port, s);
    EXPECT_TRUE(again.status == 200 || again.status == 201) << again.status << " " << again.body;
    s.status = again.status;
    s.body = again.body;
  }
  ExpectNothingDoubledNothingMissing(log, prefix);
}

// Sends `n` requests from `n` clients at once (creates and processes alternately) and returns
// those that did not succeed, as "status body" lines.
std::vector<std::string> FailedOf(uint16_t port, const std::string& prefix, int n) {
  std::mutex mutex;
  std::vector<std::string> failed;
  RunConcurrently(n, [&](int i) {
    Sent sent;
    sent.create = i % 2 == 0;
    sent.id = prefix + "-" + std::to_string(i);
    const HttpResponse response = SendOne(port, sent);
    if (response.status == 200 || response.status == 201) return;
    std::lock_guard<std::mutex> lock(mutex);
    failed.push_back(std::to_string(response.status) + " " + response.body + response.error);
  });
  return failed;
}

// Issue 9 item 4: pooled connections that died while idle (the server restarted, or ended the
// sessions) are found before a statement is sent on them, or the call is sent again on a fresh
// connection: once /health is 200, no request answers 503.
class StaleConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(server_.Start());
    // Every pooled connection opened and used: 32 clients on 8 connections.
    ASSERT_EQ(FailedOf(server_.port(), Unique("stale-warm"), 32), std::vector<std::string>{});
  }
  void ExpectEveryRequestSucceeds() {
    ASSERT_TRUE(
        Eventually([&] { return server_.Get("/health").status == 200; }, std::chrono::seconds(10)));
    for (int round = 0; round < 2; ++round) {
      EXPECT_EQ(FailedOf(server_.port(), Unique("stale"), 32), std::vector<std::string>{})
          << "round " << round << "; log:\n"
          << server_.Log().substr(0, 4000);
    }
    // Connected straight to PostgreSQL, the pooled connections died and were replaced. Through
    // PgBouncer (the second e2e run) they stay up: PgBouncer replaces its own server side.
    const char* const api_url = std::getenv("ORDERFLOW_TEST_API_DATABASE_URL");
    const char* const pg_port = std::getenv("ORDERFLOW_TEST_PG_PORT");
    const bool direct =
        api_url == nullptr || pg_port == nullptr ||
        std::string(api_url).find(std::string(":") + pg_port + "/") != std::string::npos;
    if (direct) {
      EXPECT_NE(server_.Log().find("\"event\":\"db_connection_replaced\""), std::string::npos)
          << "dead connections were found and replaced";
    }
  }
  ServerProcess server_{std::map<std::string, std::string>{
      {"DB_POOL_SIZE", "8"}, {"HTTP_THREADS", "8"}, {"JANITOR_INTERVAL_MS", "0"}}};
};

TEST_F(StaleConnectionTest, AfterAPostgresRestartNoRequestMeetsADeadConnection) {
  ASSERT_NO_FATAL_FAILURE(StopDatabase());
  ASSERT_NO_FATAL_FAILURE(StartDatabase());
  ExpectEveryRequestSucceeds();
}

TEST_F(StaleConnectionTest, AfterTheSessionsWereTerminatedNoRequestMeetsADeadConnection) {
  // Every server session of the test database but ours, as an operator would end them.
  ASSERT_GT(QueryCount("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                       " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                       " AND backend_type = 'client backend'"),
            0);
  ASSERT_TRUE(Eventually(
      [] {
        return QueryCount(
                   "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                   "'orderflow' AND backend_type = 'client backend'") == 0;
      },
      std::chrono::seconds(5)));
  ExpectEveryRequestSucceeds();
}

TEST(CrashTest, KillNineUnderLoadThenResendingEverythingDoublesAndLosesNothing) {
  ServerProcess server(
      std::map<std::string, std::string>{{"DB_POOL_SIZE", "16"}, {"HTTP_THREADS", "16"}});
  ASSERT_NO_FATAL_FAILURE(server.Start());
  const std::string prefix = Unique("kill");
  // 100 keys and 100 order ids, each sent twice (new and repeated requests, some at once).
  std::vector<Sent> requests;
  for (int i = 0; i < 100; ++i) {
    for (int copy = 0; copy < 2; ++copy) {
      Sent create;
      create.create = true;
      create.id = prefix + "-key-" + std::to_string(i);
      requests.push_back(create);
      Sent process;
      process.id = prefix + "-order-" + std::to_string(i);
      requests.push_back(process);
    }
  }
  std::shuffle(requests.begin(), requests.end(), std::mt19937(42));

  std::atomic<size_t> next{0};
  std::atomic<int> answered{0};
  const uint16_t port = server.port();
  std::thread killer([&] {
    Eventually([&] { return answered.load() >= 100; }, std::chrono::seconds(20));
    server.Kill9();
  });
  RunConcurrently(32, [&](int) {
    for (size_t i = next++; i < requests.size(); i = next++) {
      const HttpResponse response = SendOne(port, requests[i], 15000);
      requests[i].status = response.status;
      requests[i].body = response.body;
      if (response.status != 0) ++answered;
    }
  });
  killer.join();
  const long lost =
      std::count_if(requests.begin(), requests.end(), [](const Sent& s) { return s.status == 0; });
  std::printf("kill -9 after %d answers; %ld of %zu requests got none\n", answered.load(), lost,
              requests.size());
  EXPECT_GT(lost, 0) << "the kill landed under load";

  ASSERT_NO_FATAL_FAILURE(server.Start());
  // Re-send every request, answered or not, as a client that is unsure would.
  for (Sent& s : requests) {
    const HttpResponse again = SendOne(server.port(), s);
    ASSERT_TRUE(again.status == 200 || again.status == 201) << again.status << " " << again.body;
    if (s.status == 200 || s.status == 201) {
      if (s.create) {
        EXPECT_EQ(ParseJson(again.body)["id"], ParseJson(s.body)["id"])
            << "a key keeps its order across the crash";
      } else {
        EXPECT_STREQ(ParseJson(again.body)["status"].GetString(), "completed");
      }
    }

    s.status = again.status;
    s.body = again.body;
  }
  ExpectNothingDoubledNothingMissing(requests, prefix);
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.workflows WHERE order_id LIKE $1 AND status "
                       "= 'completed'",
                       {prefix + "-order-%"}),
            100);
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.payments WHERE order_id LIKE $1",
                       {prefix + "-order-%"}),
            100)
      << "one charge per workflow, no refund";
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.idempotency_keys WHERE key LIKE $1",
                       {prefix + "-key-%"}),
            100);
}

TEST(SlowClientTest, OneByteASecondDoesNotHoldUpOtherClients) {
  // One HTTP thread: if reading the slow request blocked it, nobody else would be served.
  ServerProcess server(
      std::map<std::string, std::string>{{"HTTP_THREADS", "1"}, {"DB_POOL_SIZE", "2"}});
  ASSERT_NO_FATAL_FAILURE(server.Start());
  const int slow = ConnectRaw(server.port());
  ASSERT_GE(slow, 0);
  const std::string request =
      "POST /orders HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
      "Idempotency-Key: " +
      Unique("slow") + "\r\nContent-Length: 30\r\n\r\n{\"item\":\"w\",\"quantity\":1}   ";
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (size_t i = 0; i < request.size() && !done.load(); ++i) {
      ASSERT_EQ(write(slow, &request[i], 1), 1);
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the slow request is half-sent
  for (int i = 0; i < 20; ++i) {
    const auto started = std::chrono::steady_clock::now();
    const HttpResponse response = server.Get("/health");
    EXPECT_EQ(response.status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1))
        << "request " << i << " waited behind the slow client";
  }
  EXPECT_EQ(server.Post("/api/orders/process", ProcessBody(Unique("beside-slow"))).status, 200);
  done = true;
  writer.join();
  close(slow);
}

TEST(GracefulStopTest, InFlightRequestsFinishNewConnectionsAreRefusedExitIsZero) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start());
  const uint16_t port = server.port();
  const std::string key = Unique("grace");

  // Another session holds the key's claim, so the server's request waits inside the database.
  pqxx::connection holder_connection(TestDatabaseUrl());
  pqxx::work holder(holder_connection);
  const pqxx::row held = holder.exec_params1(
      "SELECT body::text FROM orderflow.create_order_idempotent($1, $2::jsonb)", key, kOrderBody);

  HttpResponse in_flight;
  std::thread client([&] {
    HttpRequest request;
    request.method = "POST";
    request.path = "/orders";
    request.body = kOrderBody;
    request.headers = {"Idempotency-Key: " + key};
    in_flight = SendHttp(port, request);
  });
  ASSERT_TRUE(Eventually(
      [&] {
        return ServerLockWaiters() == 1;
      },
      std::chrono::seconds(5)))
      << "the request is waiting in the database";

  server.SignalTerm();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const int late = ConnectRaw(port);
  EXPECT_LT(late, 0) << "new connections are refused while stopping";
  if (late >= 0) close(late);

  holder.commit();
  client.join();
  EXPECT_EQ(in_flight.status, 200) << "the request in flight got its answer: " << in_flight.error;
  EXPECT_EQ(in_flight.Header("idempotent-replayed"), "true");
  EXPECT_EQ(ParseJson(in_flight.body)["id"], ParseJson(held[0].c_str())["id"]);
  EXPECT_EQ(server.Wait(std::chrono::seconds(10)), 0) << "exit status 0, within the bound";
  EXPECT_NE(server.Log().find("\"event\":\"stopped\",\"unanswered\":0"), std::string::npos)
      << server.Log();
}

}  // namespace
}  // namespace orderflow_test
