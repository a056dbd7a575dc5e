// Webhooks end to end (db/functions/47_webhooks.sql, src/effects/): the server delivers the
// outbox's events to our own receiver (tests/sim/webhook_sim.py) over real HTTP, and every claim
// is checked where the consumer sees it: the receiver verifies each Standard Webhooks signature
// with the subscription's secret and counts deliveries per webhook-id. Proven: every event
// reaches every subscribed receiver at least once, with one webhook-id across its retries;
// nothing reaches a removed subscription; after a receiver outage with kill -9 of the server and
// a PostgreSQL restart in the middle everything arrives; the per-endpoint rate limit holds at
// the receiver. Each scenario prints its figures (events, deliveries, duplicates) for the note.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"
#include "webhook_receiver.h"

namespace orderflow_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A quick schedule, so that a retried delivery lands in seconds (the default spans 3 days).
constexpr const char* kQuickSchedule = "{0, 100, 200, 400, 800, 1000, 1000, 2000, 2000, 2000}";

class WebhookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ResetDrills();
    ASSERT_NO_FATAL_FAILURE(receiver_.Start());
    Execute(
        "UPDATE orderflow.effect_policies SET schedule_ms = $1::integer[] WHERE kind = 'webhook'",
        {kQuickSchedule});
  }
  void TearDown() override {
    servers_.clear();
    ResetDrills();
    receiver_.Stop();
  }

  // A server without a payment provider's key: it sends webhooks all the same.
  ServerProcess* StartServer(const std::string& id = "a") {
    servers_.push_back(std::make_unique<ServerProcess>(std::map<std::string, std::string>{
        {"SERVER_ID", "hooks-" + id}, {"JANITOR_INTERVAL_MS", "100"}, {"DB_POOL_SIZE", "8"}}));
    servers_.back()->Start();
    return servers_.back().get();
  }

  // Subscribes endpoint `name` of the receiver; returns the subscription id.
  std::string Subscribe(const std::string& name, const std::string& events = "") {
    const std::string row = QueryValue(
        "SELECT id || ' ' || secret FROM orderflow.add_webhook($1, NULLIF($2, '')::text[], true)",
        {receiver_.Url(name), events});
    const std::string id = row.substr(0, row.find(' '));
    receiver_.AddEndpoint(name, {row.substr(row.find(' ') + 1)});
    return id;
  }

  std::vector<std::string> CompleteOrders(ServerProcess* server, const std::string& prefix, int n) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) ids.push_back(Unique(prefix + std::to_string(i)));
    RunConcurrently(8, [&](int t) {
      for (size_t i = static_cast<size_t>(t); i < ids.size(); i += 8) {
        const HttpResponse response = server->Post("/api/orders/process", ProcessBody(ids[i]));
        EXPECT_EQ(response.status, 200) << response.body;
      }
    });
    return ids;
  }

  // The webhook-ids the receiver must get for these orders' events of `type`.
  static std::set<std::string> EventIds(const std::vector<std::string>& orders,
                                        const std::string& type) {
    std::set<std::string> ids;
    for (const std::string& order : orders) {
      const std::string id = QueryValue(
          "SELECT 'evt_' || id FROM orderflow.outbox WHERE order_id = $1 AND event_type = $2",
          {order, type});
      if (!id.empty()) ids.insert(id);
    }
    return ids;
  }

  // Every id in `want` was accepted by the receiver at least once, and it got nothing else.
  static ::testing::AssertionResult ReceivedAll(const WebhookDeliveries& got,
                                                const std::set<std::string>& want) {
    for (const std::string& id : want) {
      const auto found = got.ids.find(id);
      if (found == got.ids.end() || found->second.accepted < 1) {
        return ::testing::AssertionFailure()
               << id << " never accepted; the receiver has " << got.json;
      }
    }
    for (const auto& [id, count] : got.ids) {
      if (want.count(id) == 0) return ::testing::AssertionFailure() << "unexpected delivery " << id;
    }
    return ::testing::AssertionSuccess();
  }

  WebhookDeliveries WaitFor(const std::string& name, const std::set<std::string>& want,
                            milliseconds timeout) {
    return receiver_.WaitForDeliveries(
        name,
        [&](const WebhookDeliveries& got) {
          for (const std::string& id : want) {
            const auto found = got.ids.find(id);
            if (found == got.ids.end() || found->second.accepted < 1) return false;
          }
          return true;
        },
        timeout);
  }

  static void Report(const std::string& scenario, size_t events, const WebhookDeliveries& got) {
    const std::string line = "webhook scenario " + scenario + ": " + std::to_string(events) +
                             " events, " + std::to_string(got.attempts) +
                             " deliveries received (verified), " + std::to_string(got.accepted) +
                             " accepted, " + std::to_string(got.Duplicates()) +
                             " duplicates seen by the receiver, " +
                             std::to_string(got.bad_signatures) + " bad signatures";
    std::printf("%s\n", line.c_str());
    ::testing::Test::RecordProperty("summary", line);
  }

  WebhookReceiver receiver_;
  std::vector<std::unique_ptr<ServerProcess>> servers_;
};

TEST_F(WebhookTest, EveryEventReachesEverySubscriberWithOneWebhookIdAcrossRetries) {
  Subscribe("all");
  const std::string cancels = Subscribe("cancels", "{order.cancelled}");
  // The first eight deliveries to "all" fail; "cancels" is rate limited twice.
  receiver_.SetFault(R"({"endpoint": "all", "status": 500, "times": 8})");
  receiver_.SetFault(R"({"endpoint": "cancels", "status": 429, "retryAfter": "1", "times": 2})");
  ServerProcess* server = StartServer();
  const std::vector<std::string> orders = CompleteOrders(server, "wh-all-", 20);
  const std::vector<std::string> cancelled(orders.begin(), orders.begin() + 5);
  for (const std::string& id : cancelled) {
    ASSERT_EQ(server->Post("/api/orders/" + id + "/cancel", "").status, 200);
  }
  std::set<std::string> everything = EventIds(orders, "order.confirmed");
  const std::set<std::string> cancellations = EventIds(cancelled, "order.cancelled");
  everything.insert(cancellations.begin(), cancellations.end());
  ASSERT_EQ(everything.size(), 25U);

  const WebhookDeliveries all = WaitFor("all", everything, seconds(30));
  EXPECT_TRUE(ReceivedAll(all, everything));
  const WebhookDeliveries only_cancels = WaitFor("cancels", cancellations, seconds(30));
  EXPECT_TRUE(ReceivedAll(only_cancels, cancellations)) << "only what it subscribed to";
  EXPECT_EQ(all.bad_signatures + only_cancels.bad_signatures, 0) << "every signature verified";
  EXPECT_GE(all.attempts, 25 + 8) << "the eight failed deliveries were retried";
  long retried = 0;
  for (const auto& [id, count] : all.ids) {
    if (count.attempts > 1) ++retried;
    EXPECT_TRUE(count.type == "order.confirmed" || count.type == "order.cancelled") << id;
    EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.outbox WHERE 'evt_' || id = $1 AND "
                         "order_id = $2 AND event_type = $3",
                         {id, count.order_id, count.type}),
              1)
        << id << ": the webhook-id, type and order are the event's";
  }
  EXPECT_GE(retried, 1) << "some ids came more than once, each under its one webhook-id";
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.effects WHERE kind = 'webhook' AND state <> "
                       "'succeeded' AND provider IN ('webhook:' || (SELECT max(id) FROM "
                       "orderflow.webhooks WHERE url = $1))",
                       {receiver_.Url("all")}),
            0)
      << "every delivery recorded as delivered";
  Report("retries", everything.size(), all);

  // Removed: nothing more reaches it; the other subscription gets the new events.
  Execute("SELECT orderflow.remove_webhook($1::bigint)", {cancels});
  const long before = receiver_.Deliveries("cancels").attempts;
  const std::vector<std::string> later = CompleteOrders(server, "wh-later-", 3);
  for (const std::string& id : later) server->Post("/api/orders/" + id + "/cancel", "");
  std::set<std::string> later_events = EventIds(later, "order.cancelled");
  ASSERT_EQ(later_events.size(), 3U);
  std::set<std::string> all_events = everything;
  for (const std::string& id : EventIds(later, "order.confirmed")) all_events.insert(id);
  all_events.insert(later_events.begin(), later_events.end());
  EXPECT_TRUE(ReceivedAll(WaitFor("all", all_events, seconds(30)), all_events));
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_EQ(receiver_.Deliveries("cancels").attempts, before)
      << "nothing is delivered to a removed subscription";
}

TEST_F(WebhookTest, AfterAReceiverOutageWithKillNineAndAPostgresRestartEverythingArrives) {
  const std::string hook = Subscribe("out");
  Execute("SELECT orderflow.set_webhook($1::bigint, $2::jsonb)",
          {hook, R"({"timeoutMs": 1000, "circuitOpenMs": 200, "circuitMaxOpenMs": 1000})"});
  receiver_.Stop();  // down: connections are refused
  ServerProcess* first = StartServer("one");
  std::vector<std::string> orders = CompleteOrders(first, "wh-out-a-", 30);
  std::this_thread::sleep_for(milliseconds(700));  // deliveries fail, the circuit opens
  const std::string circuit =
      QueryValue("SELECT state FROM orderflow.circuits WHERE provider = 'webhook:' || $1", {hook});
  first->Kill9();
  StopDatabase();
  std::this_thread::sleep_for(milliseconds(500));
  StartDatabase();
  ServerProcess* second = StartServer("two");
  const std::vector<std::string> more = CompleteOrders(second, "wh-out-b-", 30);
  orders.insert(orders.end(), more.begin(), more.end());
  receiver_.Restart();
  const std::set<std::string> events = EventIds(orders, "order.confirmed");
  ASSERT_EQ(events.size(), 60U);
  const WebhookDeliveries got = WaitFor("out", events, seconds(60));
  EXPECT_TRUE(ReceivedAll(got, events));
  EXPECT_EQ(got.bad_signatures, 0);
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.effects WHERE provider = 'webhook:' || $1 "
                       "AND state = 'dead'",
                       {hook}),
            0)
      << "nothing died: an open circuit does not use up a delivery's attempts";
  std::printf("webhook outage: the circuit was %s when the server was killed\n", circuit.c_str());
  Report("outage-kill9-pgrestart", events.size(), got);
}

TEST_F(WebhookTest, TheRateLimitOfAnEndpointHoldsAtTheReceiver) {
  const std::string hook = Subscribe("slow");
  Execute("SELECT orderflow.set_webhook($1::bigint, '{\"ratePerSecond\": 4}')", {hook});
  ServerProcess* server = StartServer();
  const std::vector<std::string> orders = CompleteOrders(server, "wh-rate-", 24);
  const std::set<std::string> events = EventIds(orders, "order.confirmed");
  const WebhookDeliveries got = WaitFor("slow", events, seconds(30));
  EXPECT_TRUE(ReceivedAll(got, events));
  std::vector<double> times = got.arrivals;
  std::sort(times.begin(), times.end());
  ASSERT_EQ(times.size(), 24U);
  size_t most_in_a_second = 0;
  for (size_t i = 0, j = 0; i < times.size(); ++i) {
    while (times[i] - times[j] >= 1.0) ++j;
    most_in_a_second = std::max(most_in_a_second, i - j + 1);
  }
  EXPECT_LE(most_in_a_second, 8U) << "the bucket (4) plus a second's refill (4)";
  const double span = times.back() - times.front();
  EXPECT_GE(span, (24.0 - 4.0) / 4.0 - 0.5) << "24 deliveries at 4/s after a burst of 4";
  std::printf("webhook rate: 24 deliveries over %.1f s, at most %zu in any second\n", span,
              most_in_a_second);
}

TEST_F(WebhookTest, ARotatedSecretSignsBesideTheOldOneSoEitherVerifies) {
  const std::string hook = Subscribe("rot");
  const std::string old_secret =
      QueryValue("SELECT secret FROM orderflow.webhooks WHERE id = $1::bigint", {hook});
  const std::string new_secret =
      QueryValue("SELECT orderflow.rotate_webhook_secret($1::bigint)", {hook});
  ServerProcess* server = StartServer();
  receiver_.AddEndpoint("rot", {new_secret});
  const std::vector<std::string> first = CompleteOrders(server, "wh-rot-a-", 2);
  EXPECT_TRUE(ReceivedAll(WaitFor("rot", EventIds(first, "order.confirmed"), seconds(20)),
                          EventIds(first, "order.confirmed")))
      << "a consumer that already has the new secret verifies";
  receiver_.AddEndpoint("rot", {old_secret});
  const std::vector<std::string> second = CompleteOrders(server, "wh-rot-b-", 2);
  std::set<std::string> both = EventIds(first, "order.confirmed");
  for (const std::string& id : EventIds(second, "order.confirmed")) both.insert(id);
  const WebhookDeliveries got = WaitFor("rot", both, seconds(20));
  EXPECT_TRUE(ReceivedAll(got, both)) << "and one that still has the old one, for 24 h";
  EXPECT_EQ(got.bad_signatures, 0);
}

// The consumers that poll: GET /api/events pages by cursor in the order the relay published the
// events and resumes where it stopped; bad input is a 400 with a JSON body; /metrics shows each
// provider.
TEST_F(WebhookTest, PollingConsumersReadEveryEventOverHttpByCursor) {
  Subscribe("metrics");
  ServerProcess* server = StartServer();
  // Catch up to the end of the stream first (other tests left events, some not yet published).
  for (int i = 0; i < 1000 && QueryValue("SELECT orderflow.publish_outbox(10000)::text") != "0";
       ++i) {
  }
  std::string cursor;
  for (int page = 0; page < 1000; ++page) {
    const HttpResponse response =
        server->Get("/api/events?limit=1000" + (cursor.empty() ? "" : "&after=" + cursor));
    ASSERT_EQ(response.status, 200) << response.body;
    const rapidjson::Document body = ParseJson(response.body);
    if (body["next"].IsString()) cursor = body["next"].GetString();
    if (body["events"].Size() == 0) break;
  }
  const std::vector<std::string> orders = CompleteOrders(server, "wh-poll-", 5);
  std::vector<std::string> seen;
  for (int page = 0; page < 100; ++page) {  // the janitor's relay publishes every tick
    const HttpResponse response =
        server->Get("/api/events?limit=2" + (cursor.empty() ? "" : "&after=" + cursor));
    ASSERT_EQ(response.status, 200) << response.body;
    const rapidjson::Document body = ParseJson(response.body);
    for (const auto& event : body["events"].GetArray()) {
      EXPECT_STREQ(event["type"].GetString(), "order.confirmed");
      seen.push_back(event["orderId"].GetString());
    }
    if (body["events"].Size() == 0 && seen.size() >= orders.size()) break;
    if (body["next"].IsString()) cursor = body["next"].GetString();
    if (body["events"].Size() == 0) std::this_thread::sleep_for(milliseconds(100));
  }
  std::vector<std::string> want = orders, got = seen;
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want) << "every event once, in pages of two";
  // The webhook deliveries of the same events, before /metrics is read below.
  EXPECT_TRUE(ReceivedAll(WaitFor("metrics", EventIds(orders, "order.confirmed"), seconds(20)),
                          EventIds(orders, "order.confirmed")));

  const HttpResponse zero = server->Get("/api/events?limit=0");
  EXPECT_EQ(zero.status, 400) << zero.body;
  EXPECT_TRUE(ParseJson(zero.body).IsObject());
  const HttpResponse bogus = server->Get("/api/events?after=not-a-cursor");
  EXPECT_EQ(bogus.status, 400) << bogus.body;
  EXPECT_EQ(bogus.body.find("orderflow."), std::string::npos) << "no SQL leaks: " << bogus.body;

  const HttpResponse metrics = server->Get("/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find(
                "orderflow_provider_circuit_state{provider=\"payments\",state=\"closed\"} 1"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("orderflow_provider_calls_total{provider=\"webhook:"),
            std::string::npos)
      << "the deliveries were counted by outcome";
  EXPECT_NE(metrics.body.find("orderflow_provider_pending{provider=\"webhook:"), std::string::npos);
}

}  // namespace
}  // namespace orderflow_test
