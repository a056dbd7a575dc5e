// Charge and refund at a payment provider (db/functions/45_effects.sql, src/effects/): the
// server talks to our Stripe simulator (tests/sim/stripe_sim.py) over real HTTP, and every
// claim of "exactly once" is checked against the simulator's own counts: at most one successful
// charge and at most one refund per order, a refund only for a charged order that failed or was
// cancelled — under every fault knob, with clients racing, with kill -9 of the server between
// the provider's charge and our record of it, with PostgreSQL restarting during the reports,
// and with two servers' janitors on one database. Each scenario prints one summary line (orders,
// charges and refunds counted at the simulator, final statuses) for the issue's note.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "simulator.h"

namespace orderflow_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kTestKey = "sk_test_orderflow_simulator";

std::string Body(const std::string& order_id, const std::string& payment_method = "") {
  std::string body = R"({"orderId":")" + order_id + R"(","amount":25.50,"item":"widget")";
  if (!payment_method.empty()) body += R"(,"paymentMethod":")" + payment_method + "\"";
  return body + "}";
}

class ProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ResetDrills();
    ASSERT_NO_FATAL_FAILURE(simulator_.Start());
    Execute("SELECT orderflow.set_provider('payments', $1, $2::jsonb)",
            // The circuit opens for at most a second here (the default doubles up to 5
            // minutes), so that chaos that trips it still settles within the scenario's time.
            {simulator_.BaseUrl(), R"({"timeoutMs": 1000, "reconcileDelayMs": 0,
                                       "circuitOpenMs": 200, "circuitMaxOpenMs": 1000})"});
    // A quick schedule, so that every scenario settles in seconds.
    Execute(
        "UPDATE orderflow.effect_policies SET max_attempts = 40, base_delay_ms = 50, "
        "multiplier = 2, max_delay_ms = 400, jitter = 0.2");
  }
  void TearDown() override {
    servers_.clear();
    Execute("SELECT orderflow.set_provider('payments', NULL)");
    Execute(
        "UPDATE orderflow.effect_policies SET max_attempts = 25, base_delay_ms = 200, "
        "multiplier = 2, max_delay_ms = 60000, jitter = 0.2");
    simulator_.Stop();
  }

  ServerProcess* StartServer(const std::string& id = "a") {
    servers_.push_back(std::make_unique<ServerProcess>(
        std::map<std::string, std::string>{{"STRIPE_API_KEY", kTestKey},
                                           {"SERVER_ID", "test-" + id},
                                           {"JANITOR_INTERVAL_MS", "100"},
                                           {"DB_POOL_SIZE", "8"},
                                           {"HTTP_THREADS", "8"}}));
    servers_.back()->Start();
    return servers_.back().get();
  }

  // Waits until every order is finished and has no provider call open.
  void Settle(const std::vector<std::string>& orders, std::chrono::milliseconds timeout) {
    const bool settled = Eventually(
        [&] {
          for (const std::string& id : orders) {
            if (QueryCount("SELECT count(*) FROM orderflow.workflows WHERE order_id = $1 AND "
                           "finished_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
                           "orderflow.effects e WHERE e.order_id = $1 AND e.state = 'open')",
                           {id}) != 1) {
              return false;
            }
          }
          return true;
        },
        timeout);
    EXPECT_TRUE(settled)
        << "every order ends completed, failed or cancelled; open calls: "
        << QueryValue(
               "SELECT string_agg(order_id || ' ' || kind || ' ' || phase || ' ' "
               "|| coalesce(last_error, ''), '; ') FROM orderflow.provider_effects "
               "WHERE phase NOT IN ('failed', 'dead')");
  }

  // The simulator's counts against each order's final status; prints the scenario's line.
  void ExpectEffectivelyOnce(const std::string& scenario, const std::vector<std::string>& orders) {
    std::map<std::string, int> statuses;
    long charges = 0, refunds = 0;
    for (const std::string& id : orders) {
      const std::string status =
          QueryValue("SELECT status FROM orderflow.workflows WHERE order_id = $1", {id});
      const ProviderCounts counted = simulator_.CountsFor(id);
      ++statuses[status];
      charges += counted.charges;
      refunds += counted.refunds;
      EXPECT_LE(counted.charges, 1) << id << ": at most one charge at the provider";
      EXPECT_LE(counted.refunds, 1) << id << ": at most one refund at the provider";
      if (status == "completed") {
        EXPECT_EQ(counted.charges, 1) << id << ": a completed order was charged once";
        EXPECT_EQ(counted.refunds, 0) << id << ": and never refunded";
      } else if (status == "cancelled" || status == "failed") {
        EXPECT_EQ(counted.refunds, counted.charges)
            << id << " (" << status << "): a charge is refunded, and only a charge";
      } else {
        ADD_FAILURE() << id << " ended " << status;
      }
    }
    std::string line = "provider scenario " + scenario + ": " + std::to_string(orders.size()) +
                       " orders, " + std::to_string(charges) + " charges and " +
                       std::to_string(refunds) + " refunds counted at the simulator;";
    for (const auto& [status, n] : statuses) line += " " + status + " " + std::to_string(n);
    std::printf("%s\n", line.c_str());
    RecordProperty("summary", line);
  }

  std::vector<std::string> Orders(const std::string& prefix, int n) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) ids.push_back(Unique(prefix + std::to_string(i)));
    return ids;
  }

  ProviderSimulator simulator_;
  std::vector<std::unique_ptr<ServerProcess>> servers_;
};

TEST_F(ProviderTest, AHealthyProviderAnswersCompletedOnTheFirstCall) {
  ServerProcess* server = StartServer();
  const std::vector<std::string> orders = Orders("pv-ok-", 10);
  for (const std::string& id : orders) {
    const HttpResponse response = server->Post("/api/orders/process", Body(id));
    ASSERT_EQ(response.status, 200) << response.body;
    rapidjson::Document state = ParseJson(response.body);
    EXPECT_STREQ(state["status"].GetString(), "completed") << "the first call answers completed";
    const std::string pi = state["steps"]["charge"]["provider"]["objectId"].GetString();
    EXPECT_EQ(pi.rfind("pi_", 0), 0U) << "the PaymentIntent id is in the state: " << pi;
  }
  const HttpResponse replay = server->Post("/api/orders/process", Body(orders[0]));
  EXPECT_STREQ(ParseJson(replay.body)["status"].GetString(), "completed") << "a replay";
  ExpectEffectivelyOnce("healthy", orders);
  EXPECT_EQ(simulator_.Totals().charges, 10) << "one charge per order, nothing else";
}

TEST_F(ProviderTest, ADeclinedCardFailsTheOrderWithTheDeclineAndReservesNothing) {
  ServerProcess* server = StartServer();
  const std::string id = Unique("pv-declined");
  const HttpResponse response =
      server->Post("/api/orders/process", Body(id, "pm_card_chargeDeclined"));
  ASSERT_EQ(response.status, 200) << response.body;
  rapidjson::Document state = ParseJson(response.body);
  EXPECT_STREQ(state["status"].GetString(), "failed");
  EXPECT_STREQ(state["error"].GetString(), "charge failed: card declined");
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.reservations WHERE order_id = $1", {id}), 0)
      << "nothing reserved";
  EXPECT_EQ(simulator_.CountsFor(id).charges, 0) << "the simulator charged nothing";

  const std::string action = Unique("pv-3ds");
  const HttpResponse needs_action =
      server->Post("/api/orders/process", Body(action, "pm_card_authenticationRequired"));
  EXPECT_STREQ(ParseJson(needs_action.body)["error"].GetString(),
               "charge failed: requires_action: the payment needs the customer's authentication")
      << needs_action.body;
  const HttpResponse bad = server->Post("/api/orders/process", Body(Unique("pv-bad"), "card"));
  EXPECT_EQ(bad.status, 400) << "a payment method that is not an id is refused: " << bad.body;
}

TEST_F(ProviderTest, ACancelOfACompletedOrderRefundsOnceHoweverManyCancelsRace) {
  ServerProcess* server = StartServer();
  const std::vector<std::string> orders = Orders("pv-cancel-", 6);
  for (const std::string& id : orders) {
    ASSERT_EQ(server->Post("/api/orders/process", Body(id)).status, 200);
  }
  for (const std::string& id : orders) {
    RunConcurrently(5, [&](int) {
      const HttpResponse response = server->Post("/api/orders/" + id + "/cancel", "");
      EXPECT_EQ(response.status, 200) << response.body;
      const std::string status = ParseJson(response.body)["status"].GetString();
      EXPECT_TRUE(status == "cancelled" || status == "cancelling") << status;
    });
  }
  Settle(orders, seconds(20));
  for (const std::string& id : orders) {
    EXPECT_EQ(QueryValue("SELECT status FROM orderflow.workflows WHERE order_id = $1", {id}),
              "cancelled");
  }
  ExpectEffectivelyOnce("cancel-completed", orders);
  EXPECT_EQ(simulator_.Totals().refunds, 6) << "one refund per order";
}

TEST_F(ProviderTest, AnOrderThatFailsAfterItsChargeIsRefundedOnceAtTheProvider) {
  ServerProcess* server = StartServer();
  const std::string item = Unique("pv-sold-out");
  Execute("SELECT orderflow.set_stock($1, 0)", {item});
  std::vector<std::string> orders;
  for (int i = 0; i < 4; ++i) {
    const std::string id = Unique("pv-oos-" + std::to_string(i));
    orders.push_back(id);
    const HttpResponse response =
        server->Post("/api/orders/process",
                     R"({"orderId":")" + id + R"(","amount":9.99,"item":")" + item + R"("})");
    ASSERT_EQ(response.status, 200) << response.body;
    EXPECT_STREQ(ParseJson(response.body)["status"].GetString(), "failed")
        << "out of stock after the charge: " << response.body;
  }
  Settle(orders, seconds(20));
  for (const std::string& id : orders) {
    EXPECT_EQ(simulator_.CountsFor(id).refunds, 1) << id << ": the charge was refunded there";
    EXPECT_FALSE(QueryValue("SELECT compensated_at FROM orderflow.workflow_steps WHERE order_id = "
                            "$1 AND step = 'charge'",
                            {id})
                     .empty())
        << id << ": and the charge step is compensated once the refund is recorded";
  }
  ExpectEffectivelyOnce("failed-after-charge", orders);
  Execute("SELECT orderflow.set_stock($1, NULL)", {item});
}

struct Knob {
  const char* name;
  const char* faults;
};

class ProviderFaultTest : public ProviderTest, public ::testing::WithParamInterface<Knob> {};

TEST_P(ProviderFaultTest, EveryOrderIsChargedExactlyOnceAndEnds) {
  simulator_.SetFaults(GetParam().faults);
  ServerProcess* server = StartServer();
  const std::vector<std::string> orders = Orders(std::string("pv-") + GetParam().name + "-", 24);
  RunConcurrently(8, [&](int t) {
    for (size_t i = static_cast<size_t>(t); i < orders.size(); i += 8) {
      const HttpResponse response = server->Post("/api/orders/process", Body(orders[i]));
      EXPECT_TRUE(response.status == 200 || response.status == 503) << response.body;
    }
  });
  Settle(orders, seconds(60));
  ExpectEffectivelyOnce(GetParam().name, orders);
}

INSTANTIATE_TEST_SUITE_P(
    Knobs, ProviderFaultTest,
    ::testing::Values(
        Knob{"stored500before", R"({"error_rate_before": 0.4, "error_status": 500, "seed": 1})"},
        Knob{"stored500after", R"({"error_rate_after": 0.4, "error_status": 500, "seed": 2})"},
        Knob{"503before", R"({"error_rate_before": 0.4, "error_status": 503, "seed": 3})"},
        Knob{"502after", R"({"error_rate_after": 0.4, "error_status": 502, "seed": 4})"},
        Knob{"ratelimit", R"({"rate_limit_rate": 0.4, "retry_after_s": 1, "seed": 5})"},
        Knob{"resetafter", R"({"reset_after_charge_rate": 0.4, "seed": 6})"},
        Knob{"hang", R"({"hang_rate": 0.25, "hang_ms": 2500, "seed": 7})"},
        Knob{"latency", R"({"latency_ms": 150, "seed": 8})"},
        Knob{"everything", R"({"error_rate_before": 0.15, "error_rate_after": 0.15,
                              "error_status": 500, "rate_limit_rate": 0.1,
                              "reset_after_charge_rate": 0.1, "latency_ms": 20, "seed": 9})"}),
    [](const ::testing::TestParamInfo<Knob>& info) { return std::string(info.param.name); });

TEST_F(ProviderTest, ClientsRacingProcessAndCancelNeverChargeTwiceOrRefundWrongly) {
  simulator_.SetFaults(R"({"latency_ms": 40, "error_rate_after": 0.2, "error_status": 500,
                           "seed": 11})");
  ServerProcess* server = StartServer();
  const std::vector<std::string> orders = Orders("pv-race-", 12);
  for (size_t n = 0; n < orders.size(); ++n) {
    const std::string& id = orders[n];
    RunConcurrently(7, [&](int t) {
      if (t == 6) {
        // The cancel lands at different moments: before the charge is sent, while it is in
        // flight, or after the order completed.
        std::this_thread::sleep_for(milliseconds(static_cast<int>(n % 4) * 25));
        server->Post("/api/orders/" + id + "/cancel", "");
      } else {
        server->Post("/api/orders/process", Body(id));
      }
    });
  }
  Settle(orders, seconds(60));
  ExpectEffectivelyOnce("race-process-cancel", orders);
}

TEST_F(ProviderTest, KillNineBetweenTheProvidersChargeAndOurRecordChargesOnce) {
  // The simulator charges after 400 ms; the server dies at 200 ms with every call in flight.
  simulator_.SetFaults(R"({"latency_ms": 400, "seed": 12})");
  ServerProcess* server = StartServer("k1");
  const std::vector<std::string> orders = Orders("pv-kill-", 20);
  std::vector<std::thread> clients;
  for (const std::string& id : orders) {
    clients.emplace_back([server, id] {
      HttpRequest request;
      request.method = "POST";
      request.path = "/api/orders/process";
      request.body = Body(id);
      request.headers = {"Content-Type: application/json"};
      SendHttp(server->port(), request);  // the answer is lost with the server
    });
  }
  ASSERT_TRUE(Eventually(
      [] {
        return QueryCount(
                   "SELECT count(*) FROM orderflow.effects WHERE order_id LIKE 'pv-kill-%' "
                   "AND state = 'open' AND lease_token IS NOT NULL") >= 10;
      },
      seconds(10)))
      << "calls are in flight at the provider";
  server->Kill9();
  for (std::thread& client : clients) client.join();
  // A new server's janitor re-claims the expired leases and re-sends the same keys; the
  // clients, who lost their answers, send everything again.
  ServerProcess* again = StartServer("k2");
  RunConcurrently(4, [&](int t) {
    for (size_t i = static_cast<size_t>(t); i < orders.size(); i += 4) {
      again->Post("/api/orders/process", Body(orders[i]));
    }
  });
  Settle(orders, seconds(60));
  ExpectEffectivelyOnce("kill9-mid-call", orders);
  EXPECT_EQ(simulator_.Totals().charges, 20) << "one charge each, although every call was cut";
}

TEST_F(ProviderTest, APostgresRestartDuringTheReportsLosesAndDoublesNothing) {
  simulator_.SetFaults(R"({"latency_ms": 400, "seed": 13})");
  ServerProcess* server = StartServer();
  const std::vector<std::string> orders = Orders("pv-pgrestart-", 20);
  std::vector<std::thread> clients;
  for (const std::string& id : orders) {
    clients.emplace_back([server, id] { server->Post("/api/orders/process", Body(id)); });
  }
  std::this_thread::sleep_for(milliseconds(150));
  StopDatabase();  // the calls are at the provider; their reports find no database
  std::this_thread::sleep_for(milliseconds(800));
  StartDatabase();
  for (std::thread& client : clients) client.join();
  // A client that was answered 503 (+ Retry-After) during the outage sends again, as told.
  for (const std::string& id : orders) {
    EXPECT_TRUE(Eventually(
        [&] { return server->Post("/api/orders/process", Body(id)).status == 200; }, seconds(20)))
        << id << ": answered once the database is back";
  }
  Settle(orders, seconds(60));
  ExpectEffectivelyOnce("postgres-restart", orders);
}

TEST_F(ProviderTest, TwoServersAndTheirJanitorsOnOneDatabaseChargeOnce) {
  simulator_.SetFaults(R"({"error_rate_after": 0.3, "error_status": 500,
                           "reset_after_charge_rate": 0.2, "latency_ms": 10, "seed": 14})");
  ServerProcess* first = StartServer("one");
  ServerProcess* second = StartServer("two");
  const std::vector<std::string> orders = Orders("pv-two-", 24);
  RunConcurrently(8, [&](int t) {
    for (size_t i = static_cast<size_t>(t); i < orders.size(); i += 8) {
      (t % 2 == 0 ? first : second)->Post("/api/orders/process", Body(orders[i]));
      (t % 2 == 0 ? second : first)->Post("/api/orders/process", Body(orders[i]));
    }
  });
  Settle(orders, seconds(60));
  ExpectEffectivelyOnce("two-servers", orders);
}

// The payments circuit (db/functions/44_circuits.sql): with every call failing, it opens after
// ten calls; while open the simulator receives no call but the probes, the orders wait (they
// neither fail nor use up attempts) and say why, and once the simulator heals they complete.
TEST_F(ProviderTest, AnOpenCircuitSendsOnlyItsProbesAndTheOrdersCompleteOnceTheProviderHeals) {
  Execute("SELECT orderflow.set_provider('payments', $1, $2::jsonb)",
          {simulator_.BaseUrl(),
           R"({"timeoutMs": 1000, "reconcileDelayMs": 0, "circuitOpenMs": 1000,
               "circuitMaxOpenMs": 2000})"});
  simulator_.SetFaults(R"({"error_rate_before": 1, "error_status": 503})");
  ServerProcess* server = StartServer();
  // One prefix for this run's orders: earlier passes of the suite left orders named alike.
  const std::string prefix = Unique("pv-circuit") + "-";
  std::vector<std::string> orders;
  for (int i = 0; i < 30; ++i) orders.push_back(prefix + std::to_string(i));
  RunConcurrently(10, [&](int t) {
    for (size_t i = static_cast<size_t>(t); i < orders.size(); i += 10) {
      EXPECT_EQ(server->Post("/api/orders/process", Body(orders[i])).status, 200);
    }
  });
  ASSERT_TRUE(Eventually(
      [] {
        return QueryValue("SELECT state FROM orderflow.circuits WHERE provider = 'payments'") !=
               "closed";
      },
      seconds(10)))
      << "ten failed calls open the circuit";
  std::this_thread::sleep_for(milliseconds(300));  // calls sent before it opened have landed
  const long trips_before =
      QueryCount("SELECT trips FROM orderflow.circuits WHERE provider = 'payments'");
  const long sent_before = simulator_.Requests();
  const long attempts_before =
      QueryCount("SELECT sum(attempts) FROM orderflow.effects WHERE starts_with(order_id, $1)", {prefix});
  std::this_thread::sleep_for(seconds(5));
  const long sent_during = simulator_.Requests() - sent_before;
  const long trips_during =
      QueryCount("SELECT trips FROM orderflow.circuits WHERE provider = 'payments'") - trips_before;
  // Each failed probe re-opens the circuit (one trip); one more probe may be in flight.
  EXPECT_LE(sent_during, trips_during + 1)
      << "while open only probes reach the provider: " << sent_during << " calls, " << trips_during
      << " re-opens";
  EXPECT_GE(trips_during, 1) << "the probes failed and re-opened it";
  EXPECT_EQ(
      QueryCount("SELECT count(*) FROM orderflow.workflows WHERE starts_with(order_id, $1) "
                 "AND status <> 'charging'",
                 {prefix}),
      0)
      << "the orders wait: none failed";
  const std::string waiting = QueryValue(
      "SELECT orderflow.get_workflow($1) #>> '{steps,charge,provider,waitingFor,reason}'",
      {orders.back()});
  EXPECT_TRUE(waiting == "circuit_open" || waiting == "half_open" || waiting.empty()) << waiting;
  const long attempts_after =
      QueryCount("SELECT sum(attempts) FROM orderflow.effects WHERE starts_with(order_id, $1)", {prefix});
  EXPECT_LE(attempts_after - attempts_before, sent_during + 1)
      << "while open the waiting calls keep their attempts: only the probes count one";

  simulator_.SetFaults("{}");
  Settle(orders, seconds(40));
  for (const std::string& id : orders) {
    EXPECT_EQ(QueryValue("SELECT status FROM orderflow.workflows WHERE order_id = $1", {id}),
              "completed");
  }
  ExpectEffectivelyOnce("circuit", orders);
  std::printf("circuit figures: %ld calls before it opened, %ld calls in 5 s open (%ld re-opens)\n",
              sent_before, sent_during, trips_during);
}

// The rate limit (a token bucket in the database, 5 per second): measured at the simulator,
// no second holds more calls than the bucket's 5 plus 5 refilled, and the whole run stays at
// the rate.
TEST_F(ProviderTest, TheRateLimitHoldsAtTheSimulator) {
  Execute(
      "SELECT orderflow.set_provider('payments', $1, $2::jsonb)",
      {simulator_.BaseUrl(), R"({"timeoutMs": 1000, "reconcileDelayMs": 0, "ratePerSecond": 5})"});
  ServerProcess* server = StartServer();
  const std::vector<std::string> orders = Orders("pv-rate-", 40);
  std::atomic<int> busy{0};
  RunConcurrently(20, [&](int t) {
    for (size_t i = static_cast<size_t>(t); i < orders.size(); i += 20) {
      // A 503 (+ Retry-After: the server had too many waiting) is sent again, as told; on Citus
      // every lease and report writes the provider's reference rows on every node.
      HttpResponse answer = server->Post("/api/orders/process", Body(orders[i]));
      for (int again = 0; answer.status == 503 && again < 30; ++again) {
        EXPECT_EQ(answer.Header("retry-after"), "1") << answer.body;
        ++busy;
        std::this_thread::sleep_for(seconds(1));
        answer = server->Post("/api/orders/process", Body(orders[i]));
      }
      EXPECT_EQ(answer.status, 200) << answer.body;
    }
  });
  std::printf("rate limit: %d answers were 503 and sent again\n", busy.load());
  Settle(orders, seconds(60));
  ExpectEffectivelyOnce("rate-limit", orders);
  std::vector<double> times;
  for (const std::string& id : orders) {
    for (const double t : simulator_.RequestTimes(id)) times.push_back(t);
  }
  std::sort(times.begin(), times.end());
  ASSERT_EQ(times.size(), orders.size()) << "one call per order, nothing retried";
  size_t most_in_a_second = 0;
  for (size_t i = 0, j = 0; i < times.size(); ++i) {
    while (times[i] - times[j] >= 1000.0) ++j;
    most_in_a_second = std::max(most_in_a_second, i - j + 1);
  }
  const double span_s = (times.back() - times.front()) / 1000.0;
  EXPECT_LE(most_in_a_second, 10U)
      << "at most the bucket (5) plus a second's refill (5) in any second";
  EXPECT_GE(span_s, (40.0 - 5.0) / 5.0 - 0.5)
      << "40 calls at 5/s after a burst of 5 take about 7 s";
  std::printf("rate figures: 40 calls over %.1f s at the simulator, at most %zu in any second\n",
              span_s, most_in_a_second);
}

}  // namespace
}  // namespace orderflow_test
