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

}  // namespace
}  // namespace orderflow
