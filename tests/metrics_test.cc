#include "metrics.h"

#include "gtest/gtest.h"

namespace orderflow {
namespace {

bool Contains(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(MetricsTest, CountsRequestsByRouteAndStatus) {
  Metrics metrics;
  const int orders = metrics.AddRoute("POST /orders");
  EXPECT_EQ(metrics.AddRoute("POST /orders"), orders) << "a label is registered once";
  metrics.ObserveRequest(orders, 201, 0.004);
  metrics.ObserveRequest(orders, 201, 0.002);
  metrics.ObserveRequest(orders, 422, 0.3);
  const std::string text = metrics.Render({});
  EXPECT_TRUE(Contains(text, "# TYPE orderflow_http_requests_total counter")) << text;
  EXPECT_TRUE(
      Contains(text, R"(orderflow_http_requests_total{route="POST /orders",status="201"} 2)"))
      << text;
  EXPECT_TRUE(
      Contains(text, R"(orderflow_http_requests_total{route="POST /orders",status="422"} 1)"))
      << text;
}

TEST(MetricsTest, HistogramBucketsAreCumulativeInSeconds) {
  Metrics metrics;
  const int route = metrics.AddRoute("GET /health");
  metrics.ObserveRequest(route, 200, 0.0005);  // ≤ 1 ms
  metrics.ObserveRequest(route, 200, 0.004);   // ≤ 5 ms
  metrics.ObserveRequest(route, 200, 7.0);     // above every bound
  const std::string text = metrics.Render({});
  EXPECT_TRUE(Contains(text, "# TYPE orderflow_http_request_duration_seconds histogram"));
  EXPECT_TRUE(Contains(
      text, R"(orderflow_http_request_duration_seconds_bucket{route="GET /health",le="0.001"} 1)"))
      << text;
  EXPECT_TRUE(Contains(
      text,
      R"(orderflow_http_request_duration_seconds_bucket{route="GET /health",le="0.0025"} 1)"));
  EXPECT_TRUE(Contains(
      text, R"(orderflow_http_request_duration_seconds_bucket{route="GET /health",le="0.005"} 2)"));
  EXPECT_TRUE(Contains(
      text, R"(orderflow_http_request_duration_seconds_bucket{route="GET /health",le="5"} 2)"));
  EXPECT_TRUE(Contains(
      text, R"(orderflow_http_request_duration_seconds_bucket{route="GET /health",le="+Inf"} 3)"));
  EXPECT_TRUE(
      Contains(text, R"(orderflow_http_request_duration_seconds_count{route="GET /health"} 3)"));
  EXPECT_TRUE(
      Contains(text, R"(orderflow_http_request_duration_seconds_sum{route="GET /health"} 7.0045)"))
      << text;
}

TEST(MetricsTest, DatabaseErrorsRetriesPoolJanitorAndWorkflows) {
  Metrics metrics;
  metrics.CountDbError("08006");
  metrics.CountDbError("08001");
  metrics.CountDbError("40001");
  metrics.CountDbError("22003");
  metrics.CountDbRetry("40001");
  metrics.CountJanitorResumed(3);
  MetricsSnapshot snapshot;
  snapshot.pool_size = 8;
  snapshot.pool_in_use = 2;
  snapshot.pool_waiting = 1;
  snapshot.workflows =
      std::vector<std::pair<std::string, int64_t>>{{"completed", 10}, {"failed", 1}};
  const std::string text = metrics.Render(snapshot);
  EXPECT_TRUE(Contains(text, R"(orderflow_db_errors_total{class="08"} 2)")) << text;
  EXPECT_TRUE(Contains(text, R"(orderflow_db_errors_total{class="22"} 1)"))
      << "a data exception of the server's own work is a database error: " << text;
  EXPECT_TRUE(Contains(text, R"(orderflow_db_errors_total{class="40"} 1)"));
  EXPECT_TRUE(Contains(text, R"(orderflow_db_retries_total{sqlstate="40001"} 1)"));
  EXPECT_TRUE(Contains(text, "orderflow_db_pool_connections 8"));
  EXPECT_TRUE(Contains(text, "orderflow_db_pool_connections_in_use 2"));
  EXPECT_TRUE(Contains(text, "orderflow_db_pool_waiting 1"));
  EXPECT_TRUE(Contains(text, "orderflow_janitor_resumed_workflows_total 3"));
  EXPECT_TRUE(Contains(text, "orderflow_database_up 1"));
  EXPECT_TRUE(Contains(text, R"(orderflow_workflows{status="completed"} 10)"));
}

TEST(MetricsTest, ClientMistakesAreNotDatabaseErrors) {
  Metrics metrics;
  for (const char* state : {"22023", "OF404", "OF409", "OF422"}) metrics.CountDbError(state);
  const std::string text = metrics.Render({});
  EXPECT_EQ(text.find("orderflow_db_errors_total{"), std::string::npos) << text;
}

TEST(MetricsTest, UnreadableDatabaseIsReportedNotGuessed) {
  Metrics metrics;
  const std::string text = metrics.Render({});
  EXPECT_TRUE(Contains(text, "orderflow_database_up 0"));
  EXPECT_EQ(text.find("orderflow_workflows{"), std::string::npos);
}

TEST(MetricsTest, ProviderCallsByProviderAndOutcome) {
  EXPECT_EQ(ProviderCallOutcome("none", 200), "2xx");
  EXPECT_EQ(ProviderCallOutcome("none", 204), "2xx");
  EXPECT_EQ(ProviderCallOutcome("none", 302), "3xx");
  EXPECT_EQ(ProviderCallOutcome("none", 400), "4xx");
  EXPECT_EQ(ProviderCallOutcome("none", 409), "409") << "a conflict is its own outcome";
  EXPECT_EQ(ProviderCallOutcome("none", 410), "410") << "a webhook that unsubscribed";
  EXPECT_EQ(ProviderCallOutcome("none", 429), "429") << "a rate limit";
  EXPECT_EQ(ProviderCallOutcome("none", 503), "5xx");
  EXPECT_EQ(ProviderCallOutcome("none", 99), "other") << "no such status class";
  EXPECT_EQ(ProviderCallOutcome("none", 600), "other");
  for (const char* transport : {"timeout", "connect", "reset", "other"}) {
    EXPECT_EQ(ProviderCallOutcome(transport, 0), transport);
  }

  Metrics metrics;
  metrics.CountProviderCall("payments", "2xx");
  metrics.CountProviderCall("payments", "2xx");
  metrics.CountProviderCall("webhook:3", "timeout");
  metrics.CountProviderCall("we\"ird\\\n", "429");
  const std::string text = metrics.Render({});
  EXPECT_TRUE(Contains(text, "# TYPE orderflow_provider_calls_total counter")) << text;
  EXPECT_TRUE(
      Contains(text, R"(orderflow_provider_calls_total{provider="payments",outcome="2xx"} 2)"))
      << text;
  EXPECT_TRUE(
      Contains(text, R"(orderflow_provider_calls_total{provider="webhook:3",outcome="timeout"} 1)"))
      << text;
  EXPECT_TRUE(
      Contains(text, R"(orderflow_provider_calls_total{provider="we\"ird\\\n",outcome="429"} 1)"))
      << "label values escaped: " << text;
}

TEST(MetricsTest, ProviderHealthIsParsedFromTheDatabasesJson) {
  std::vector<ProviderHealth> providers;
  ASSERT_TRUE(ParseProviderHealth(
      R"([{"provider": "payments", "circuit": "open", "paused": true, "tokens": 2.5,
           "pending": 4, "dead": 1, "oldestUndeliveredSeconds": 12.25},
          {"provider": "webhook:3", "circuit": "closed", "paused": false, "tokens": null,
           "pending": 0, "dead": 0, "oldestUndeliveredSeconds": null},
          {"circuit": "closed"}, 7])",
      &providers));
  ASSERT_EQ(providers.size(), 2U) << "elements without a provider are skipped";
  EXPECT_EQ(providers[0].provider, "payments");
  EXPECT_EQ(providers[0].circuit, "open");
  EXPECT_TRUE(providers[0].paused);
  EXPECT_EQ(providers[0].tokens, 2.5);
  EXPECT_EQ(providers[0].pending, 4);
  EXPECT_EQ(providers[0].dead, 1);
  EXPECT_EQ(providers[0].oldest_undelivered_seconds, 12.25);
  EXPECT_EQ(providers[1].provider, "webhook:3");
  EXPECT_FALSE(providers[1].tokens) << "null: no rate limit";
  EXPECT_FALSE(providers[1].oldest_undelivered_seconds) << "null: nothing undelivered";
  EXPECT_TRUE(ParseProviderHealth("[]", &providers));
  EXPECT_TRUE(providers.empty()) << "no provider at all";
  EXPECT_FALSE(ParseProviderHealth("{}", &providers)) << "not an array";
  EXPECT_FALSE(ParseProviderHealth("nope", &providers)) << "not JSON";
}

TEST(MetricsTest, ProviderHealthGauges) {
  Metrics metrics;
  MetricsSnapshot snapshot;
  snapshot.workflows = std::vector<std::pair<std::string, int64_t>>{};
  ProviderHealth payments;
  payments.provider = "payments";
  payments.circuit = "half_open";
  payments.paused = true;
  payments.tokens = 7.5;
  payments.pending = 3;
  payments.dead = 2;
  payments.oldest_undelivered_seconds = 42.5;
  ProviderHealth hook;
  hook.provider = "webhook:\"3\"";
  hook.circuit = "closed";
  snapshot.providers = std::vector<ProviderHealth>{payments, hook};
  const std::string text = metrics.Render(snapshot);
  EXPECT_TRUE(Contains(text, "# TYPE orderflow_provider_circuit_state gauge")) << text;
  EXPECT_TRUE(
      Contains(text, R"(orderflow_provider_circuit_state{provider="payments",state="closed"} 0)"));
  EXPECT_TRUE(
      Contains(text, R"(orderflow_provider_circuit_state{provider="payments",state="open"} 0)"));
  EXPECT_TRUE(Contains(
      text, R"(orderflow_provider_circuit_state{provider="payments",state="half_open"} 1)"));
  EXPECT_TRUE(Contains(
      text, R"(orderflow_provider_circuit_state{provider="webhook:\"3\"",state="closed"} 1)"))
      << "label values escaped: " << text;
  EXPECT_TRUE(Contains(text, R"(orderflow_provider_paused{provider="payments"} 1)"));
  EXPECT_TRUE(Contains(text, R"(orderflow_provider_paused{provider="webhook:\"3\""} 0)"));
  EXPECT_TRUE(Contains(text, R"(orderflow_provider_tokens{provider="payments"} 7.5)"));
  EXPECT_EQ(text.find(R"(orderflow_provider_tokens{provider="webhook)"), std::string::npos)
      << "no rate limit, no tokens gauge";
  EXPECT_TRUE(Contains(text, R"(orderflow_provider_pending{provider="payments"} 3)"));
  EXPECT_TRUE(Contains(text, R"(orderflow_provider_dead{provider="payments"} 2)"));
  EXPECT_TRUE(Contains(text, R"(orderflow_provider_pending{provider="webhook:\"3\""} 0)"));
  EXPECT_TRUE(
      Contains(text, R"(orderflow_provider_oldest_undelivered_seconds{provider="payments"} 42.5)"));
  EXPECT_EQ(text.find(R"(orderflow_provider_oldest_undelivered_seconds{provider="webhook)"),
            std::string::npos)
      << "nothing undelivered, no age";
}

TEST(MetricsTest, UnreadableProviderHealthRendersNoProviderGauge) {
  Metrics metrics;
  MetricsSnapshot snapshot;
  snapshot.workflows = std::vector<std::pair<std::string, int64_t>>{};
  const std::string text = metrics.Render(snapshot);
  EXPECT_EQ(text.find("orderflow_provider_circuit_state"), std::string::npos) << text;
  EXPECT_EQ(text.find("orderflow_provider_pending"), std::string::npos) << text;
}

TEST(MetricsTest, StepHealthGaugesPerStepAndProviderAndTheStuckWorkflows) {
  StepHealth health;
  ASSERT_TRUE(ParseStepHealth(
      R"({"steps": [{"step": "reserve", "provider": null, "attempts": 6, "retries": 3, "failures": 0},
                    {"step": "charge", "provider": "payments", "attempts": 3, "retries": 1, "failures": 1},
                    {"nostep": 1}],
          "stuck": 2, "stuckOldestSeconds": 90})",
      &health));
  ASSERT_EQ(health.steps.size(), 2U) << "an element without a step is skipped";
  EXPECT_EQ(health.steps[0].provider, "") << "null provider: a step in the database";
  EXPECT_EQ(health.stuck, 2);
  Metrics metrics;
  MetricsSnapshot snapshot;
  snapshot.steps = health;
  const std::string text = metrics.Render(snapshot);
  EXPECT_TRUE(Contains(text, R"(orderflow_step_attempts_last_hour{step="reserve",provider=""} 6)"))
      << text;
  EXPECT_TRUE(
      Contains(text, R"(orderflow_step_retries_last_hour{step="charge",provider="payments"} 1)"));
  EXPECT_TRUE(
      Contains(text, R"(orderflow_step_failures_last_hour{step="charge",provider="payments"} 1)"));
  EXPECT_TRUE(Contains(text, "orderflow_stuck_workflows 2"));
  EXPECT_TRUE(Contains(text, "orderflow_stuck_oldest_seconds 90"));
  StepHealth none;
  ASSERT_TRUE(ParseStepHealth(R"({"steps": [], "stuck": 0, "stuckOldestSeconds": null})", &none));
  snapshot.steps = none;
  EXPECT_EQ(metrics.Render(snapshot).find("orderflow_stuck_oldest_seconds"), std::string::npos)
      << "nothing stuck, no age";
  EXPECT_FALSE(ParseStepHealth("[]", &none)) << "not an object";
}

}  // namespace
}  // namespace orderflow
