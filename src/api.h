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
  Api(DbPool* pool, const RequestValidator* validator, Metrics* metrics);

  Reply Health(const RequestContext& context);
  // `idempotency_key` is null when the header is absent.
  Reply CreateOrder(const RequestContext& context, const std::string* idempotency_key,
                    const std::string& body);
  Reply GetOrder(const RequestContext& context, const std::string& id);
  Reply ProcessOrder(const RequestContext& context, const std::string& body);
  Reply GetWorkflow(const RequestContext& context, const std::string& order_id);
  Reply CancelOrder(const RequestContext& context, const std::string& order_id,
                    const std::string& body);
  Reply Metrics(const RequestContext& context);

  // Runs one SQL call, retrying transient SQLSTATEs (retry.h) and counting failures in the
  // metrics. Every database call of the server goes through here.
  Status Call(SqlCall call, const std::vector<SqlValue>& params, std::vector<SqlValue>* row);

 private:
  // A single-value call: the JSON text it returns is passed through, null becomes a 404.
  Reply JsonOrNotFound(const RequestContext& context, SqlCall call,
                       const std::vector<SqlValue>& params, const char* what);

  DbPool* const pool_;
  const RequestValidator* const validator_;
  orderflow::Metrics* const metrics_;
  const RetryPolicy retry_policy_;
};

}  // namespace orderflow

#endif  // ORDERFLOW_API_H_
