// Api: one method per route. Each checks what the transport must (validation.h), makes exactly
// one SQL call and turns its answer or its SQLSTATE into a Reply. No business rule, and no rule
// of a request's fields, lives here.
#ifndef ORDERFLOW_API_H_
#define ORDERFLOW_API_H_

#include <string>
#include <vector>

#include "db_pool.h"
#include "metrics.h"
#include "reply.h"
#include "retry.h"
#include "validation.h"

namespace orderflow {

struct RequestContext {
  std::string request_id;
};

class Api {
 public:
  // `stats_pool` is the pool /metrics reports on (default: `pool`): the operations lane runs
  // its own Api on a pool of its own but reports the request pool.
  Api(DbPool* pool, const RequestValidator* validator, Metrics* metrics,
      DbPool* stats_pool = nullptr);

  Reply Health(const RequestContext& context);
  // `idempotency_key` is null when the header is absent.
  Reply CreateOrder(const RequestContext& context, const std::string* idempotency_key,
                    const std::string& body);
  Reply ProcessOrder(const RequestContext& context, const std::string& body);
  Reply CancelOrder(const RequestContext& context, const std::string& order_id,
                    const std::string& body);
  Reply Metrics(const RequestContext& context);
  // GET /api/events: a page of events after `after` (null: from the first), at most `limit`;
  // orderflow.read_events' JSON is the body.
  Reply ReadEvents(const RequestContext& context, const SqlValue& after, int limit);
  // The outcome of a provider call (effects/executor.h) to orderflow.report_effect; the reply's
  // body is the workflow's state, its `effect` the next call leased to `owner` (if not null).
  Reply ReportEffect(const RequestContext& context, const std::string& order_id, int64_t effect_id,
                     const std::string& token, const std::string& outcome,
                     const std::string* owner);

  // Who leases provider calls inline (SERVER_ID) and the kind of its key ("test" or "live");
  // without a key, null: this server then sends none.
  void SetEffectOwner(std::string owner, std::string key_mode);

  // Runs one SQL call, retrying transient SQLSTATEs (retry.h) and counting failures in the
  // metrics. Every database call of the server goes through here.
  Status Call(SqlCall call, const std::vector<SqlValue>& params, std::vector<SqlValue>* row);

  // A single-value call: the JSON text it returns is passed through, null becomes a 404
  // "<what> not found" (the reads of the route table).
  Reply JsonOrNotFound(const RequestContext& context, SqlCall call,
                       const std::vector<SqlValue>& params, const char* what);

 private:
  DbPool* const pool_;
  DbPool* const stats_pool_;
  const RequestValidator* const validator_;
  orderflow::Metrics* const metrics_;
  const RetryPolicy retry_policy_;
  SqlValue effect_owner_;
  SqlValue key_mode_;
};

}  // namespace orderflow

#endif  // ORDERFLOW_API_H_
