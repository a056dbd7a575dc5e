#include "metrics.h"

#include <cinttypes>
#include <cstdio>
#include <sstream>

#include "db/sqlstate.h"

namespace orderflow {
namespace {

// Label values are ours (route patterns, statuses, SQLSTATEs); escape anyway, per the format.
std::string Escape(const std::string& value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string Number(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.9g", value);
  return text;
}

}  // namespace

constexpr std::array<double, 12> Metrics::kBuckets;

Metrics::Metrics() = default;
Metrics::~Metrics() = default;

int Metrics::AddRoute(const std::string& label) {
  for (size_t i = 0; i < routes_.size(); ++i) {
    if (routes_[i]->label == label) return static_cast<int>(i);
  }
  routes_.push_back(std::make_unique<Route>());
  routes_.back()->label = label;
  return static_cast<int>(routes_.size() - 1);
}

void Metrics::ObserveRequest(int route, int status, double seconds) {
  if (route < 0 || route >= static_cast<int>(routes_.size())) return;
  Route& r = *routes_[route];
  if (status >= 0 && status < static_cast<int>(r.by_status.size())) {
    r.by_status[status].fetch_add(1, std::memory_order_relaxed);
  }
  size_t bucket = 0;
  while (bucket < kBuckets.size() && seconds > kBuckets[bucket]) ++bucket;
  r.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  r.sum_micros.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

void Metrics::CountDbError(const std::string& sqlstate) {
  // A client's mistake reported by our functions is an answer, not a database error.
  if (IsClientError(ClassifySqlState(sqlstate))) return;
  const std::string klass = sqlstate.size() >= 2 ? sqlstate.substr(0, 2) : "XX";
  std::lock_guard<std::mutex> lock(mutex_);
  ++db_errors_[klass];
}

void Metrics::CountDbRetry(const std::string& sqlstate) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++db_retries_[sqlstate];
}

std::string Metrics::Render(const MetricsSnapshot& snapshot) const {
  std::ostringstream out;
  out << "# HELP orderflow_http_requests_total HTTP requests answered, by route and status.\n"
         "# TYPE orderflow_http_requests_total counter\n";
  for (const auto& route : routes_) {
    for (size_t status = 0; status < route->by_status.size(); ++status) {
      const uint64_t n = route->by_status[status].load(std::memory_order_relaxed);
      if (n == 0) continue;
      out << "orderflow_http_requests_total{route=\"" << Escape(route->label) << "\",status=\""
          << status << "\"} " << n << "\n";
    }
  }

  out << "# HELP orderflow_http_request_duration_seconds Time from routing to response, by route.\n"
         "# TYPE orderflow_http_request_duration_seconds histogram\n";
  for (const auto& route : routes_) {
    const std::string label = Escape(route->label);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += route->buckets[i].load(std::memory_order_relaxed);
      out << "orderflow_http_request_duration_seconds_bucket{route=\"" << label << "\",le=\""
          << Number(kBuckets[i]) << "\"} " << cumulative << "\n";
    }
    cumulative += route->buckets[kBuckets.size()].load(std::memory_order_relaxed);
    out << "orderflow_http_request_duration_seconds_bucket{route=\"" << label << "\",le=\"+Inf\"} "
        << cumulative << "\n";
    out << "orderflow_http_request_duration_seconds_sum{route=\"" << label << "\"} "
        << Number(route->sum_micros.load(std::memory_order_relaxed) / 1e6) << "\n";
    // _count is the +Inf bucket of the same read: one consistent snapshot even while requests
    // are observed during the scrape.
    out << "orderflow_http_request_duration_seconds_count{route=\"" << label << "\"} " << cumulative
        << "\n";
  }

  out << "# HELP orderflow_db_pool_connections Size of the database connection pool.\n"
         "# TYPE orderflow_db_pool_connections gauge\n"
      << "orderflow_db_pool_connections " << snapshot.pool_size << "\n"
      << "# HELP orderflow_db_pool_connections_in_use Pooled connections lent out now.\n"
         "# TYPE orderflow_db_pool_connections_in_use gauge\n"
      << "orderflow_db_pool_connections_in_use " << snapshot.pool_in_use << "\n"
      << "# HELP orderflow_db_pool_waiting Callers waiting for a pooled connection now.\n"
         "# TYPE orderflow_db_pool_waiting gauge\n"
      << "orderflow_db_pool_waiting " << snapshot.pool_waiting << "\n";

  {
    std::lock_guard<std::mutex> lock(mutex_);
    out << "# HELP orderflow_db_errors_total Failed database calls, by SQLSTATE class.\n"
           "# TYPE orderflow_db_errors_total counter\n";
    for (const auto& [klass, n] : db_errors_) {
      out << "orderflow_db_errors_total{class=\"" << Escape(klass) << "\"} " << n << "\n";
    }
    out << "# HELP orderflow_db_retries_total Database calls retried by the front, by SQLSTATE.\n"
           "# TYPE orderflow_db_retries_total counter\n";
    for (const auto& [state, n] : db_retries_) {
      out << "orderflow_db_retries_total{sqlstate=\"" << Escape(state) << "\"} " << n << "\n";
    }
  }

  out << "# HELP orderflow_janitor_resumed_workflows_total Workflows resumed by this server's "
         "janitor.\n"
         "# TYPE orderflow_janitor_resumed_workflows_total counter\n"
      << "orderflow_janitor_resumed_workflows_total " << janitor_resumed_.load() << "\n"
      << "# HELP orderflow_outbox_published_events_total Outbox events this server NOTIFYed.\n"
         "# TYPE orderflow_outbox_published_events_total counter\n"
      << "orderflow_outbox_published_events_total " << outbox_published_.load() << "\n";

  out << "# HELP orderflow_database_up 1 when the database answered this scrape.\n"
         "# TYPE orderflow_database_up gauge\n"
      << "orderflow_database_up " << (snapshot.workflows ? 1 : 0) << "\n";
  if (snapshot.workflows) {
    out << "# HELP orderflow_workflows Workflows in the database, by status.\n"
           "# TYPE orderflow_workflows gauge\n";
    for (const auto& [status, n] : *snapshot.workflows) {
      out << "orderflow_workflows{status=\"" << Escape(status) << "\"} " << n << "\n";
    }
  }
  return out.str();
}

}  // namespace orderflow
