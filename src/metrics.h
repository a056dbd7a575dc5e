// Metrics: counters and histograms kept in memory, rendered in the Prometheus text format
// (GET /metrics). Request-path updates are lock-free atomics; the rare database errors and
// retries, and the provider calls (not on the request path), are counted under a mutex.
#ifndef ORDERFLOW_METRICS_H_
#define ORDERFLOW_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace orderflow {

// One provider's health as orderflow.provider_health() reports it (db/functions), read at
// scrape time: the payments provider, or a webhook subscription ("webhook:3").
struct ProviderHealth {
  std::string provider;
  std::string circuit;           // "closed", "open" or "half_open"
  bool paused = false;           // a provider-wide pause (a 429's Retry-After) is in force
  std::optional<double> tokens;  // the rate limit's bucket; nullopt: no rate limit
  int64_t pending = 0;           // effects not yet delivered and not dead
  int64_t dead = 0;              // effects that stopped (dead letters)
  std::optional<double> oldest_undelivered_seconds;  // nullopt: nothing undelivered
};

// Reads provider_health()'s JSON (an array of {"provider", "circuit", "paused", "tokens",
// "pending", "dead", "oldestUndeliveredSeconds"}); false when it is not an array. An element
// that is not an object with a "provider" string is skipped; a member missing or of another
// type reads as its default (a number member that is null or absent: nullopt).
bool ParseProviderHealth(const std::string& json, std::vector<ProviderHealth>* providers);

// Steps and stuck workflows as orderflow.step_health() reports them (db/functions/75_history.sql):
// per step and provider ("" for a step run in the database) over the last hour, and the
// workflows stuck_workflows lists.
struct StepHealth {
  struct Step {
    std::string step;
    std::string provider;  // "" for a step in the database, "payments", "webhook:<id>"
    int64_t attempts = 0;
    int64_t retries = 0;
    int64_t failures = 0;
  };
  std::vector<Step> steps;
  int64_t stuck = 0;
  std::optional<double> stuck_oldest_seconds;  // nullopt: none is stuck
};

// Reads step_health()'s JSON ({"steps": [{step, provider, attempts, retries, failures}],
// "stuck": n, "stuckOldestSeconds": s or null}); false when it is not such an object.
bool ParseStepHealth(const std::string& json, StepHealth* health);

// Values read from elsewhere at scrape time.
struct MetricsSnapshot {
  int pool_size = 0;
  int pool_in_use = 0;
  int pool_waiting = 0;
  // Workflow counts by status from the database; nullopt when it could not be read.
  std::optional<std::vector<std::pair<std::string, int64_t>>> workflows;
  // Per provider, from the database; nullopt when it could not be read (nothing is rendered).
  std::optional<std::vector<ProviderHealth>> providers;
  // Steps over the last hour and stuck workflows; nullopt when they could not be read.
  std::optional<StepHealth> steps;
};

// The outcome label of a provider call the executor finished, for
// orderflow_provider_calls_total{provider,outcome}: `transport` is TransportErrorName's
// ("none", "timeout", "connect", "reset", "other"); with an answer (transport "none") the
// status class "2xx", "3xx", "4xx" or "5xx", except 409, 410 and 429, which are their own
// outcome ("409", "410", "429": a conflict, a webhook that unsubscribed, a rate limit); a
// status outside 200..599 is "other". So at most 11 outcomes: 2xx 3xx 4xx 5xx 409 410 429
// timeout connect reset other.
std::string ProviderCallOutcome(const std::string& transport, long status);

class Metrics {
 public:
  // Upper bounds of the request duration histogram, in seconds.
  static constexpr std::array<double, 12> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,   0.25,   0.5,   1,    2.5,   5};

  Metrics();
  ~Metrics();

  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Registers a route label (e.g. "POST /orders") and returns its id. Not thread-safe: call
  // before serving.
  int AddRoute(const std::string& label);

  void ObserveRequest(int route, int status, double seconds);
  // A failed database call, counted by SQLSTATE class (its first two characters). Client
  // mistakes (db/sqlstate.h IsClientError: 22023, OF404, OF409, OF422) are not counted.
  void CountDbError(const std::string& sqlstate);
  // A database call retried by the front, counted by SQLSTATE.
  void CountDbRetry(const std::string& sqlstate);
  // Workflows the janitor resumed, outbox events it published.
  void CountJanitorResumed(int64_t workflows) { janitor_resumed_.fetch_add(workflows); }
  void CountOutboxPublished(int64_t events) { outbox_published_.fetch_add(events); }
  // A provider call the executor finished (effects/executor.h), by provider ("payments",
  // "webhook:3") and outcome (ProviderCallOutcome). Any thread.
  void CountProviderCall(const std::string& provider, const std::string& outcome);

  std::string Render(const MetricsSnapshot& snapshot) const;

 private:
  struct Route {
    std::string label;
    std::array<std::atomic<uint64_t>, 600> by_status{};                // index: HTTP status
    std::array<std::atomic<uint64_t>, kBuckets.size() + 1> buckets{};  // last: above all bounds
    std::atomic<uint64_t> sum_micros{0};
  };

  std::vector<std::unique_ptr<Route>> routes_;
  std::atomic<int64_t> janitor_resumed_{0};
  std::atomic<int64_t> outbox_published_{0};
  mutable std::mutex mutex_;
  std::map<std::string, uint64_t> db_errors_;   // by SQLSTATE class; guarded by mutex_
  std::map<std::string, uint64_t> db_retries_;  // by SQLSTATE; guarded by mutex_
  // By (provider, outcome); guarded by mutex_.
  std::map<std::pair<std::string, std::string>, uint64_t> provider_calls_;
};

}  // namespace orderflow

#endif  // ORDERFLOW_METRICS_H_
