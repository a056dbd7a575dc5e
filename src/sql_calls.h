// The SQL the front sends: one statement per kind of request, each calling one orderflow
// function. Request bodies are passed as jsonb and checked and unpacked in SQL (the one owner
// of input rules), so numbers reach PostgreSQL exactly as the client wrote them (no binary
// floating point on the way). The order id and the idempotency key are arguments of their own,
// so that a sharded deployment can route a call without reading its body.
#ifndef ORDERFLOW_SQL_CALLS_H_
#define ORDERFLOW_SQL_CALLS_H_

#include <cstddef>

namespace orderflow {

enum class SqlCall {
  kHealth,        // () → 1
  kCreateOrder,   // (key, body) → status, body, replayed
  kGetOrder,      // (id) → order json or null
  kProcessOrder,  // (orderId or null, body, owner, key mode) → state json, effect json
  kGetWorkflow,   // (orderId) → workflow state json or null
  kCancelOrder,   // (orderId, body or null, owner) → state json, effect json
  kResumeDue,  // (batch) → {"resumed": n, "orders": [{orderId, was, step, attempt, reason, now}]}
  kWorkflowCounts,  // () → {"pending": n, ...}
  kPublishOutbox,   // (batch) → number of events NOTIFYed
  kClaimEffects,    // (limit, owner, with payments) → JSON array of leased provider requests
  kReportEffect,    // (order id, effect id, lease token, outcome, owner or null) → state, next effect
  kProviderHealth,  // () → JSON array, one element per provider (metrics.h ProviderHealth)
  kReadEvents,      // (cursor or null, limit) → {"events": [...], "next": cursor}
  kStepHealth,      // () → {"steps": [...], "stuck": n, "stuckOldestSeconds": s} (metrics.h)
  // The console's (src/admin/), run as a member of orderflow_operator on a pool of its own:
  kConsoleOverview,   // () → overview json
  kConsoleWorkflows,  // (status, step, prefix, after, limit; each may be null) → {workflows, next}
  kConsoleOrder,      // (orderId) → {state, history, ledger, calls}
  kConsoleAction,     // (orderId, action, reason or null, source) → state json
  kConsoleRedrive,    // (effect id, source) → json
  kConsoleRole,       // () → whether the login is a member of orderflow_operator
};

constexpr size_t kSqlCallCount = 20;

struct SqlCallDef {
  SqlCall call;
  const char* name;  // prepared statement name
  const char* sql;
  // A console call: prepared only on the console's pool (DbPoolOptions::console), so that the
  // API's login never needs the operator functions and the console's never needs the API's.
  bool console = false;
};

const SqlCallDef& Definition(SqlCall call);
const SqlCallDef* AllSqlCalls();  // kSqlCallCount entries, in enum order

}  // namespace orderflow

#endif  // ORDERFLOW_SQL_CALLS_H_
