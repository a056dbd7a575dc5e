// EffectExecutor: carries the provider calls the database describes (db/functions/45_effects.sql):
// payment calls and webhook deliveries. It parses a leased effect's request, adds the credentials
// to payment calls only (STRIPE_API_KEY, which never reaches the database, the log or a webhook
// consumer), sends it on the HttpClient (libcurl multi: one thread, many calls),
// and reports the outcome to orderflow.report_effect on a reporter thread. No database
// connection is held while a call is in flight. What the outcome means is decided in SQL.
#ifndef ORDERFLOW_EFFECTS_EXECUTOR_H_
#define ORDERFLOW_EFFECTS_EXECUTOR_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "api.h"
#include "effects/http_client.h"
#include "http/worker_pool.h"
#include "metrics.h"
#include "reply.h"

namespace orderflow {
namespace effects {

// The parts of a leased effect's JSON the front needs to send it and report it.
struct EffectCall {
  int64_t id = 0;
  std::string token;
  std::string order_id;
  std::string provider;  // "payments" (charge, refund) or "webhook:<id>" (a delivery)
  OutboundRequest request;
};

// The provider whose calls carry our key; an effect without a "provider" member is its.
constexpr const char* kPaymentsProvider = "payments";

// Parses the JSON of a leased effect; false (with `error`) when it is malformed. The request's
// headers are the effect's, as given; a call to the payments provider also gets
// "Authorization: Bearer <api_key>" (last), and is refused when there is no key. No other
// provider ever sees the key. "allowPrivate": false (default true) makes the client refuse
// non-public addresses (OutboundRequest::allow_private).
bool ParseEffect(const std::string& json, const std::string& api_key, EffectCall* call,
                 std::string* error);

// The outcome JSON report_effect reads: {status, body, retryAfter} or {transport, error}.
std::string OutcomeJson(const OutboundResponse& response);

class EffectExecutor {
 public:
  // `reporters` runs the reports (its threads take pooled connections); `api` makes them.
  // `metrics` (may be null) counts every call finished, by provider and outcome.
  EffectExecutor(HttpClient* client, http::WorkerPool* reporters, Api* api, Metrics* metrics,
                 std::string api_key, std::string owner);

  // Sends the effect, reports its outcome, and follows the next effect report_effect leases
  // (a refund after a failed reserve), then calls `done` with the reply to answer: the
  // workflow's state after the last report. `first` is the reply that carried the effect.
  void RunInline(const RequestContext& context, Reply first, std::function<void(Reply)> done);

  // Sends an effect the janitor claimed and reports it; nobody waits for it.
  void RunClaimed(const std::string& effect_json);

  size_t in_flight() const { return in_flight_.load(); }
  const std::string& owner() const { return owner_; }

 private:
  void Send(const RequestContext& context, EffectCall call, int hops, Reply last,
            std::function<void(Reply)> done);

  HttpClient* const client_;
  http::WorkerPool* const reporters_;
  Api* const api_;
  Metrics* const metrics_;
  const std::string api_key_;
  const std::string owner_;
  std::atomic<size_t> in_flight_{0};
};

}  // namespace effects
}  // namespace orderflow

#endif  // ORDERFLOW_EFFECTS_EXECUTOR_H_
