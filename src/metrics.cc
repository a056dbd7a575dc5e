#include "metrics.h"

#include <rapidjson/document.h>

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

// The gauges of orderflow.provider_health(), one family after another as the format wants.
void RenderProviders(const std::vector<ProviderHealth>& providers, std::ostringstream* out) {
  *out << "# HELP orderflow_provider_circuit_state The provider's circuit breaker: 1 for its "
          "state, 0 for the others.\n"
          "# TYPE orderflow_provider_circuit_state gauge\n";
  for (const ProviderHealth& p : providers) {
    for (const char* state : {"closed", "open", "half_open"}) {
      *out << "orderflow_provider_circuit_state{provider=\"" << Escape(p.provider) << "\",state=\""
           << state << "\"} " << (p.circuit == state ? 1 : 0) << "\n";
    }
  }
  *out << "# HELP orderflow_provider_paused 1 while a provider-wide pause (Retry-After) holds "
          "its calls.\n"
          "# TYPE orderflow_provider_paused gauge\n";
  for (const ProviderHealth& p : providers) {
    *out << "orderflow_provider_paused{provider=\"" << Escape(p.provider) << "\"} "
         << (p.paused ? 1 : 0) << "\n";
  }
  *out << "# HELP orderflow_provider_tokens Tokens in the provider's rate-limit bucket (absent: "
          "no limit).\n"
          "# TYPE orderflow_provider_tokens gauge\n";
  for (const ProviderHealth& p : providers) {
    if (!p.tokens) continue;
    *out << "orderflow_provider_tokens{provider=\"" << Escape(p.provider) << "\"} "
         << Number(*p.tokens) << "\n";
  }
  *out << "# HELP orderflow_provider_pending Provider calls not yet delivered (nor dead).\n"
          "# TYPE orderflow_provider_pending gauge\n";
  for (const ProviderHealth& p : providers) {
    *out << "orderflow_provider_pending{provider=\"" << Escape(p.provider) << "\"} " << p.pending
         << "\n";
  }
  *out << "# HELP orderflow_provider_dead Provider calls that stopped (dead letters).\n"
          "# TYPE orderflow_provider_dead gauge\n";
  for (const ProviderHealth& p : providers) {
    *out << "orderflow_provider_dead{provider=\"" << Escape(p.provider) << "\"} " << p.dead << "\n";
  }
  *out << "# HELP orderflow_provider_oldest_undelivered_seconds Age of the provider's oldest "
          "undelivered call (absent: none).\n"
          "# TYPE orderflow_provider_oldest_undelivered_seconds gauge\n";
  for (const ProviderHealth& p : providers) {
    if (!p.oldest_undelivered_seconds) continue;
    *out << "orderflow_provider_oldest_undelivered_seconds{provider=\"" << Escape(p.provider)
         << "\"} " << Number(*p.oldest_undelivered_seconds) << "\n";
  }
}

// The gauges of orderflow.step_health().
void RenderSteps(const StepHealth& health, std::ostringstream* out) {
  const struct {
    const char* name;
    const char* help;
    int64_t StepHealth::Step::*field;
  } families[] = {
      {"orderflow_step_attempts_last_hour",
       "Attempts of each step (and provider call) in the last hour.", &StepHealth::Step::attempts},
      {"orderflow_step_retries_last_hour", "Attempts that failed and were tried again, last hour.",
       &StepHealth::Step::retries},
      {"orderflow_step_failures_last_hour", "Attempts that ended their step for good, last hour.",
       &StepHealth::Step::failures},
  };
  for (const auto& family : families) {
    *out << "# HELP " << family.name << " " << family.help << "\n# TYPE " << family.name
         << " gauge\n";
    for (const StepHealth::Step& s : health.steps) {
      *out << family.name << "{step=\"" << Escape(s.step) << "\",provider=\"" << Escape(s.provider)
           << "\"} " << s.*family.field << "\n";
    }
  }
  *out << "# HELP orderflow_stuck_workflows Workflows suspended or older than "
          "settings.stuck_after.\n"
          "# TYPE orderflow_stuck_workflows gauge\n"
          "orderflow_stuck_workflows "
       << health.stuck << "\n";
  if (health.stuck_oldest_seconds) {
    *out << "# HELP orderflow_stuck_oldest_seconds Age of the oldest stuck workflow.\n"
            "# TYPE orderflow_stuck_oldest_seconds gauge\n"
            "orderflow_stuck_oldest_seconds "
         << Number(*health.stuck_oldest_seconds) << "\n";
  }
}

}  // namespace

bool ParseStepHealth(const std::string& json, StepHealth* health) {
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("steps") ||
      !doc["steps"].IsArray()) {
    return false;
  }
  health->steps.clear();
  for (const auto& element : doc["steps"].GetArray()) {
    if (!element.IsObject() || !element.HasMember("step") || !element["step"].IsString()) continue;
    StepHealth::Step step;
    step.step = element["step"].GetString();
    if (element.HasMember("provider") && element["provider"].IsString()) {
      step.provider = element["provider"].GetString();
    }
    for (const auto& [name, field] : {std::pair{"attempts", &StepHealth::Step::attempts},
                                      std::pair{"retries", &StepHealth::Step::retries},
                                      std::pair{"failures", &StepHealth::Step::failures}}) {
      if (element.HasMember(name) && element[name].IsNumber()) {
        step.*field = static_cast<int64_t>(element[name].GetDouble());
      }
    }
    health->steps.push_back(std::move(step));
  }
  health->stuck = doc.HasMember("stuck") && doc["stuck"].IsNumber()
                      ? static_cast<int64_t>(doc["stuck"].GetDouble())
                      : 0;
  health->stuck_oldest_seconds = std::nullopt;
  if (doc.HasMember("stuckOldestSeconds") && doc["stuckOldestSeconds"].IsNumber()) {
    health->stuck_oldest_seconds = doc["stuckOldestSeconds"].GetDouble();
  }
  return true;
}

bool ParseProviderHealth(const std::string& json, std::vector<ProviderHealth>* providers) {
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsArray()) return false;
  providers->clear();
  for (const auto& element : doc.GetArray()) {
    if (!element.IsObject()) continue;
    const auto member = [&element](const char* name) -> const rapidjson::Value* {
      const auto it = element.FindMember(name);
      return it == element.MemberEnd() ? nullptr : &it->value;
    };
    const auto number = [&member](const char* name) -> std::optional<double> {
      const rapidjson::Value* value = member(name);
      if (value == nullptr || !value->IsNumber()) return std::nullopt;
      return value->GetDouble();
    };
    const rapidjson::Value* provider = member("provider");
    if (provider == nullptr || !provider->IsString()) continue;
    ProviderHealth health;
    health.provider.assign(provider->GetString(), provider->GetStringLength());
    if (const rapidjson::Value* circuit = member("circuit"); circuit && circuit->IsString()) {
      health.circuit.assign(circuit->GetString(), circuit->GetStringLength());
    }
    if (const rapidjson::Value* paused = member("paused"); paused && paused->IsBool()) {
      health.paused = paused->GetBool();
    }
    health.tokens = number("tokens");
    health.pending = static_cast<int64_t>(number("pending").value_or(0));
    health.dead = static_cast<int64_t>(number("dead").value_or(0));
    health.oldest_undelivered_seconds = number("oldestUndeliveredSeconds");
    providers->push_back(std::move(health));
  }
  return true;
}

std::string ProviderCallOutcome(const std::string& transport, long status) {
  if (transport != "none") return transport;
  if (status == 409 || status == 410 || status == 429) return std::to_string(status);
  if (status < 200 || status > 599) return "other";
  return std::to_string(status / 100) + "xx";
}

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

void Metrics::CountProviderCall(const std::string& provider, const std::string& outcome) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++provider_calls_[{provider, outcome}];
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
    out << "# HELP orderflow_provider_calls_total Provider calls this server finished, by "
           "provider and outcome.\n"
           "# TYPE orderflow_provider_calls_total counter\n";
    for (const auto& [key, n] : provider_calls_) {
      out << "orderflow_provider_calls_total{provider=\"" << Escape(key.first) << "\",outcome=\""
          << Escape(key.second) << "\"} " << n << "\n";
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
  if (snapshot.providers) RenderProviders(*snapshot.providers, &out);
  if (snapshot.steps) RenderSteps(*snapshot.steps, &out);
  return out.str();
}

}  // namespace orderflow
