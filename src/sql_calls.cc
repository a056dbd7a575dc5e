#include "sql_calls.h"

namespace orderflow {
namespace {

// The calls that name one order (or one Idempotency-Key) are bare calls with that argument a
// parameter: `SELECT f($1, ...)` or `SELECT a, b FROM f($1, ...)`, no cast of the result (jsonb's
// text form is the same) and no subquery, the shape Citus runs on the order's node as a whole
// (db/citus/2_functions.sql). On plain PostgreSQL the shape makes no difference.
constexpr SqlCallDef kCalls[kSqlCallCount] = {
    {SqlCall::kHealth, "of_health", "SELECT 1"},
    {SqlCall::kCreateOrder, "of_create_order",
     "SELECT status, body, replayed FROM orderflow.create_order_idempotent($1, $2::jsonb)"},
    {SqlCall::kGetOrder, "of_get_order", "SELECT orderflow.get_order($1)"},
    {SqlCall::kProcessOrder, "of_process_order",
     "SELECT state, effect FROM orderflow.process_order_http($1, $2::jsonb, $3, $4)"},
    {SqlCall::kGetWorkflow, "of_get_workflow", "SELECT orderflow.get_workflow($1)"},
    {SqlCall::kCancelOrder, "of_cancel_order",
     "SELECT state, effect FROM orderflow.cancel_order_http($1, $2::jsonb, $3)"},
    {SqlCall::kResumeDue, "of_janitor_tick",
     "SELECT orderflow.janitor_tick_report($1::integer)::text"},
    {SqlCall::kWorkflowCounts, "of_workflow_counts", "SELECT orderflow.workflow_counts()::text"},
    {SqlCall::kPublishOutbox, "of_publish_outbox", "SELECT orderflow.publish_outbox($1::integer)"},
    {SqlCall::kClaimEffects, "of_claim_effects",
     "SELECT COALESCE(jsonb_agg(e), '[]')::text FROM orderflow.claim_effects($1::integer, $2, "
     "$3::boolean) AS e"},
    {SqlCall::kReportEffect, "of_report_effect",
     "SELECT state, effect FROM orderflow.report_effect($1, $2::bigint, $3::uuid, $4::jsonb, "
     "$5)"},
    {SqlCall::kProviderHealth, "of_provider_health", "SELECT orderflow.provider_health()::text"},
    {SqlCall::kReadEvents, "of_read_events", "SELECT orderflow.read_events($1, $2::integer)::text"},
    {SqlCall::kStepHealth, "of_step_health", "SELECT orderflow.step_health()::text"},
    {SqlCall::kConsoleOverview, "of_console_overview", "SELECT orderflow.console_overview()::text",
     true},
    {SqlCall::kConsoleWorkflows, "of_console_workflows",
     "SELECT orderflow.list_workflows($1, $2, NULL, NULL, $3, $4, $5::integer)::text", true},
    {SqlCall::kConsoleOrder, "of_console_order", "SELECT orderflow.console_order($1)", true},
    {SqlCall::kConsoleAction, "of_console_action",
     "SELECT orderflow.console_action($1, $2, $3, $4)::text", true},
    {SqlCall::kConsoleRedrive, "of_console_redrive",
     "SELECT orderflow.console_redrive($1::bigint, $2)::text", true},
    {SqlCall::kConsoleRole, "of_console_role",
     "SELECT pg_has_role('orderflow_operator', 'MEMBER') AND NOT pg_has_role('orderflow_api', "
     "'MEMBER')",
     true},
};

}  // namespace

const SqlCallDef& Definition(SqlCall call) { return kCalls[static_cast<size_t>(call)]; }

const SqlCallDef* AllSqlCalls() { return kCalls; }

}  // namespace orderflow
