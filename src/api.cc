#include "api.h"

#include <rapidjson/document.h>

#include <thread>

namespace orderflow {
namespace {

// The exact body DESIGN.md names for a missing key (the one error without a "code").
constexpr const char* kKeyRequiredBody = R"({"error":"Idempotency-Key header is required"})";

}  // namespace

Api::Api(DbPool* pool, const RequestValidator* validator, orderflow::Metrics* metrics,
         DbPool* stats_pool)
    : pool_(pool),
      stats_pool_(stats_pool != nullptr ? stats_pool : pool),
      validator_(validator),
      metrics_(metrics) {}

Status Api::Call(SqlCall call, const std::vector<SqlValue>& params, std::vector<SqlValue>* row) {
  return RetryTransient(
      [&] {
        Status status = pool_->Run(call, params, row);
        if (!status.ok()) metrics_->CountDbError(status.sqlstate());
        return status;
      },
      retry_policy_, [this](const Status& failed) { metrics_->CountDbRetry(failed.sqlstate()); },
      [](std::chrono::milliseconds delay) { std::this_thread::sleep_for(delay); });
}

Reply Api::Health(const RequestContext& /*context*/) {
  std::vector<SqlValue> row;
  const Status status = Call(SqlCall::kHealth, {}, &row);
  if (!status.ok()) {
    Reply reply = Reply::Json(503, R"({"status":"unavailable"})");
    reply.headers.emplace_back("Retry-After", kRetryAfterSeconds);
    reply.log_detail = status.ToString();
    return reply;
  }
  return Reply::Json(200, R"({"status":"ok"})");
}

Reply Api::CreateOrder(const RequestContext& context, const std::string* idempotency_key,
                       const std::string& body) {
  // The key's rules are the database's; only a key that cannot be sent as text stops here.
  switch (CheckIdempotencyKey(idempotency_key)) {
    case KeyCheck::kMissing:
      return Reply::Json(400, kKeyRequiredBody);
    case KeyCheck::kNotText:
      return Reply::Error(400, "invalid_request",
                          "Idempotency-Key header must be UTF-8 text without NUL bytes");
    case KeyCheck::kPresent:
      break;
  }
  const BodyCheck checked = validator_->Check(body);
  if (!checked.problem.empty()) return Reply::Error(400, "invalid_request", checked.problem);

  std::vector<SqlValue> row;
  const Status status = Call(SqlCall::kCreateOrder, {*idempotency_key, body}, &row);
  if (!status.ok()) return Reply::FromStatus(status, context.request_id);
  if (row.size() != 3 || !row[0] || !row[1] || !row[2]) {
    return Reply::Internal(context.request_id, "create_order_idempotent returned no row");
  }
  Reply reply = Reply::Json(std::stoi(*row[0]), *row[1]);
  if (*row[2] == "t") reply.headers.emplace_back("Idempotent-Replayed", "true");
  return reply;
}

Reply Api::ProcessOrder(const RequestContext& context, const std::string& body) {
  const BodyCheck checked = validator_->Check(body);
  if (!checked.problem.empty()) return Reply::Error(400, "invalid_request", checked.problem);
  std::vector<SqlValue> row;
  // The first argument is never null: when the body's orderId is missing or not a string the
  // function refuses the body with its own sentence either way (22023), and Citus 13.2.2 crashes
  // the coordinator's backend on a delegated call whose distribution argument is null.
  const Status status = Call(SqlCall::kProcessOrder,
                             {SqlValue(checked.order_id.value_or(std::string())), body,
                              effect_owner_, key_mode_},
                             &row);
  if (!status.ok()) return Reply::FromStatus(status, context.request_id);
  if (row.size() != 2 || !row[0]) {
    return Reply::Internal(context.request_id, "process_order_http returned null");
  }
  Reply reply = Reply::Json(200, *row[0]);
  if (row[1]) reply.effect = *row[1];
  return reply;
}

Reply Api::CancelOrder(const RequestContext& context, const std::string& order_id,
                       const std::string& body) {
  // The body is optional: no body cancels without a reason.
  const bool has_body = body.find_first_not_of(" \t\r\n") != std::string::npos;
  if (has_body) {
    const BodyCheck checked = validator_->Check(body);
    if (!checked.problem.empty()) return Reply::Error(400, "invalid_request", checked.problem);
  }
  std::vector<SqlValue> row;
  const Status status =
      Call(SqlCall::kCancelOrder, {order_id, has_body ? SqlValue(body) : SqlValue(), effect_owner_},
           &row);
  if (!status.ok()) return Reply::FromStatus(status, context.request_id);
  if (row.size() != 2 || !row[0]) {
    return Reply::Internal(context.request_id, "cancel_order_http returned null");
  }
  Reply reply = Reply::Json(200, *row[0]);
  if (row[1]) reply.effect = *row[1];
  return reply;
}

Reply Api::ReportEffect(const RequestContext& context, const std::string& order_id,
                        int64_t effect_id, const std::string& token, const std::string& outcome,
                        const std::string* owner) {
  std::vector<SqlValue> row;
  const Status status = Call(
      SqlCall::kReportEffect,
      {order_id, std::to_string(effect_id), token, outcome, owner ? SqlValue(*owner) : SqlValue()},
      &row);
  if (!status.ok()) return Reply::FromStatus(status, context.request_id);
  if (row.size() != 2 || !row[0]) {
    return Reply::Internal(context.request_id, "report_effect returned no state");
  }
  Reply reply = Reply::Json(200, *row[0]);
  if (row[1]) reply.effect = *row[1];
  return reply;
}

void Api::SetEffectOwner(std::string owner, std::string key_mode) {
  effect_owner_ = std::move(owner);
  key_mode_ = std::move(key_mode);
}

Reply Api::Metrics(const RequestContext& /*context*/) {
  MetricsSnapshot snapshot;
  snapshot.pool_size = stats_pool_->size();
  snapshot.pool_in_use = stats_pool_->in_use();
  snapshot.pool_waiting = stats_pool_->waiting();
  std::vector<SqlValue> row;
  if (Call(SqlCall::kWorkflowCounts, {}, &row).ok() && !row.empty() && row[0]) {
    rapidjson::Document counts;
    counts.Parse(row[0]->c_str());
    if (!counts.HasParseError() && counts.IsObject()) {
      std::vector<std::pair<std::string, int64_t>> workflows;
      for (const auto& member : counts.GetObject()) {
        if (member.value.IsInt64())
          workflows.emplace_back(member.name.GetString(), member.value.GetInt64());
      }
      snapshot.workflows = std::move(workflows);
    }
  }
  // Per provider: circuit, pause, bucket, backlog. Not asked when the database did not answer
  // the counts (a second call would only wait out the same retries).
  row.clear();
  if (snapshot.workflows && Call(SqlCall::kProviderHealth, {}, &row).ok() && !row.empty() &&
      row[0]) {
    std::vector<ProviderHealth> providers;
    if (ParseProviderHealth(*row[0], &providers)) snapshot.providers = std::move(providers);
  }
  row.clear();
  if (snapshot.workflows && Call(SqlCall::kStepHealth, {}, &row).ok() && !row.empty() && row[0]) {
    StepHealth steps;
    if (ParseStepHealth(*row[0], &steps)) snapshot.steps = std::move(steps);
  }
  return Reply::Text(200, metrics_->Render(snapshot), kPrometheusContentType);
}

Reply Api::ReadEvents(const RequestContext& context, const SqlValue& after, int limit) {
  std::vector<SqlValue> row;
  const Status status = Call(SqlCall::kReadEvents, {after, std::to_string(limit)}, &row);
  if (!status.ok()) return Reply::FromStatus(status, context.request_id);
  if (row.empty() || !row[0]) {
    return Reply::Internal(context.request_id, "read_events returned null");
  }
  return Reply::Json(200, *row[0]);
}

Reply Api::JsonOrNotFound(const RequestContext& context, SqlCall call,
                          const std::vector<SqlValue>& params, const char* what) {
  std::vector<SqlValue> row;
  const Status status = Call(call, params, &row);
  if (!status.ok()) return Reply::FromStatus(status, context.request_id);
  if (row.empty() || !row[0]) {
    return Reply::Error(404, "not_found", std::string(what) + " not found");
  }
  return Reply::Json(200, *row[0]);
}

}  // namespace orderflow
