#include "sql_calls.h"

namespace orderflow {
namespace {

constexpr SqlCallDef kCalls[kSqlCallCount] = {
    {SqlCall::kHealth, "of_health", "SELECT 1"},
    {SqlCall::kCreateOrder, "of_create_order",
     "SELECT status, body::text, replayed FROM orderflow.create_order_idempotent($1, $2::jsonb)"},
    {SqlCall::kGetOrder, "of_get_order", "SELECT orderflow.get_order($1)::text"},
    {SqlCall::kProcessOrder, "of_process_order",
     "SELECT orderflow.process_order(b->>'orderId', (b->>'amount')::numeric, b->>'item')::text "
     "FROM (SELECT $1::jsonb AS b) AS request"},
    {SqlCall::kGetWorkflow, "of_get_workflow", "SELECT orderflow.get_workflow($1)::text"},
    {SqlCall::kCancelOrder, "of_cancel_order",
     "SELECT orderflow.cancel_order($1, ($2::jsonb)->>'reason')::text"},
    {SqlCall::kResumeDue, "of_janitor_tick", "SELECT orderflow.janitor_tick($1::integer)"},
    {SqlCall::kWorkflowCounts, "of_workflow_counts", "SELECT orderflow.workflow_counts()::text"},
    {SqlCall::kPublishOutbox, "of_publish_outbox", "SELECT orderflow.publish_outbox($1::integer)"},
};

}  // namespace

const SqlCallDef& Definition(SqlCall call) { return kCalls[static_cast<size_t>(call)]; }

const SqlCallDef* AllSqlCalls() { return kCalls; }

}  // namespace orderflow
