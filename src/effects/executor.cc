#include "effects/executor.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <utility>

#include "log.h"

namespace orderflow {
namespace effects {
namespace {

// Effects one request follows inline (a charge, then the refund a failed reserve needs).
constexpr int kMaxInlineHops = 4;

// The queue of reports that wait for a reporter thread: far more than can be in flight.
std::string Text(const rapidjson::Value& object, const char* name) {
  const auto member = object.FindMember(name);
  if (member == object.MemberEnd() || !member->value.IsString()) return std::string();
  return std::string(member->value.GetString(), member->value.GetStringLength());
}

}  // namespace

bool ParseEffect(const std::string& json, const std::string& api_key, EffectCall* call,
                 std::string* error) {
  *call = EffectCall();
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    *error = "effect is not a JSON object";
    return false;
  }
  const auto id = doc.FindMember("id");
  const auto timeout = doc.FindMember("timeoutMs");
  const auto headers = doc.FindMember("headers");
  if (id == doc.MemberEnd() || !id->value.IsInt64() || timeout == doc.MemberEnd() ||
      !timeout->value.IsInt() || headers == doc.MemberEnd() || !headers->value.IsArray()) {
    *error = "effect lacks id, timeoutMs or headers";
    return false;
  }
  call->id = id->value.GetInt64();
  call->token = Text(doc, "token");
  call->order_id = Text(doc, "orderId");
  call->request.method = Text(doc, "method");
  call->request.url = Text(doc, "url");
  call->request.body = Text(doc, "body");
  call->request.timeout = std::chrono::milliseconds(timeout->value.GetInt());
  const auto provider = doc.FindMember("provider");
  if (provider == doc.MemberEnd()) {
    call->provider = kPaymentsProvider;  // written before effects had providers
  } else if (provider->value.IsString() && provider->value.GetStringLength() > 0) {
    call->provider = Text(doc, "provider");
  } else {
    *error = "effect provider is not a name";
    return false;
  }
  const auto allow_private = doc.FindMember("allowPrivate");
  if (allow_private == doc.MemberEnd()) {
    call->request.allow_private = true;
  } else if (allow_private->value.IsBool()) {
    call->request.allow_private = allow_private->value.GetBool();
  } else {
    *error = "effect allowPrivate is not a boolean";
    return false;
  }
  if (call->token.empty() || call->request.url.empty() ||
      (call->request.method != "GET" && call->request.method != "POST")) {
    *error = "effect lacks token, url or method";
    return false;
  }
  for (const auto& pair : headers->value.GetArray()) {
    if (!pair.IsArray() || pair.Size() != 2 || !pair[0].IsString() || !pair[1].IsString()) {
      *error = "effect header is not a [name, value] pair";
      return false;
    }
    call->request.headers.emplace_back(pair[0].GetString(), pair[1].GetString());
  }
  if (call->provider == kPaymentsProvider) {
    if (api_key.empty()) {
      // Sent without a key it could only fail (401) and stop; unsent, its lease expires and a
      // server with the key sends it.
      *error = "a payments call, and this server has no STRIPE_API_KEY";
      return false;
    }
    call->request.headers.emplace_back("Authorization", "Bearer " + api_key);
  }
  return true;
}

std::string OutcomeJson(const OutboundResponse& response) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("transport");
  writer.String(TransportErrorName(response.error));
  if (response.error == TransportError::kNone) {
    writer.Key("status");
    writer.Int64(response.status);
    writer.Key("body");
    writer.String(response.body.data(), static_cast<rapidjson::SizeType>(response.body.size()));
    const std::string retry_after = response.Header("retry-after");
    if (!retry_after.empty()) {
      writer.Key("retryAfter");
      writer.String(retry_after.c_str());
    }
    const std::string replayed = response.Header("idempotent-replayed");
    if (!replayed.empty()) {
      writer.Key("replayed");
      writer.Bool(replayed == "true");
    }
  } else {
    writer.Key("error");
    writer.String(response.error_text.c_str());
  }
  writer.Key("elapsedMs");
  writer.Double(static_cast<double>(response.elapsed.count()) / 1000.0);
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

EffectExecutor::EffectExecutor(HttpClient* client, http::WorkerPool* reporters, Api* api,
                               Metrics* metrics, std::string api_key, std::string owner)
    : client_(client),
      reporters_(reporters),
      api_(api),
      metrics_(metrics),
      api_key_(std::move(api_key)),
      owner_(std::move(owner)) {}

void EffectExecutor::RunInline(const RequestContext& context, Reply first,
                               std::function<void(Reply)> done) {
  EffectCall call;
  std::string error;
  const std::string effect = std::move(first.effect);
  first.effect.clear();
  if (!ParseEffect(effect, api_key_, &call, &error)) {
    // The lease expires and the janitor sends it; the client gets the state as it is.
    LogLine(LogLevel::kError, "effect_unreadable")
        .Str("requestId", context.request_id)
        .Str("error", error);
    done(std::move(first));
    return;
  }
  Send(context, std::move(call), 0, std::move(first), std::move(done));
}

void EffectExecutor::RunClaimed(const std::string& effect_json) {
  EffectCall call;
  std::string error;
  if (!ParseEffect(effect_json, api_key_, &call, &error)) {
    LogLine(LogLevel::kError, "effect_unreadable").Str("error", error);
    return;
  }
  Send(RequestContext{"janitor"}, std::move(call), 0, Reply(), nullptr);
}

void EffectExecutor::Send(const RequestContext& context, EffectCall call, int hops, Reply last,
                          std::function<void(Reply)> done) {
  ++in_flight_;
  const int64_t id = call.id;
  const std::string token = call.token;
  const std::string order_id = call.order_id;
  const std::string provider = call.provider;
  auto last_reply = std::make_shared<Reply>(std::move(last));
  client_->Submit(std::move(call.request), [this, context, id, token, order_id, provider, hops,
                                            last_reply, done](OutboundResponse response) {
    // On the client's thread: hand the report to a reporter at once.
    if (metrics_ != nullptr) {
      metrics_->CountProviderCall(
          provider, ProviderCallOutcome(TransportErrorName(response.error), response.status));
    }
    LogLine(LogLevel::kDebug, "effect_sent")
        .Str("requestId", context.request_id)
        .Str("orderId", order_id)
        .Str("provider", provider)
        .Int("effect", id)
        .Str("transport", TransportErrorName(response.error))
        .Int("status", response.status);
    const std::string outcome = OutcomeJson(response);
    auto report = [this, context, id, token, order_id, hops, last_reply, done,
                   outcome](std::chrono::steady_clock::duration) {
      --in_flight_;
      Reply reply = api_->ReportEffect(context, order_id, id, token, outcome,
                                       hops < kMaxInlineHops ? &owner_ : nullptr);
      if (reply.status != 200) {
        // Not recorded (the database is unreachable): the lease expires and a janitor re-sends
        // the same key. An inline client gets the error (503 + Retry-After) and may resend.
        LogLine(LogLevel::kWarn, "effect_report_failed")
            .Str("requestId", context.request_id)
            .Str("orderId", order_id)
            .Int("effect", id)
            .Str("detail", reply.log_detail);
      }
      if (!reply.effect.empty() && hops + 1 < kMaxInlineHops) {
        EffectCall next;
        std::string error;
        const std::string effect = std::move(reply.effect);
        reply.effect.clear();
        if (ParseEffect(effect, api_key_, &next, &error)) {
          Send(context, std::move(next), hops + 1, std::move(reply), done);
          return;
        }
        LogLine(LogLevel::kError, "effect_unreadable").Str("error", error);
      }
      if (done) done(std::move(reply));
    };
    if (!reporters_->TrySubmit(report)) {
      // Refused only while stopping: the lease expires and another janitor re-sends it.
      --in_flight_;
      LogLine(LogLevel::kWarn, "effect_report_dropped").Str("orderId", order_id).Int("effect", id);
      if (done) done(std::move(*last_reply));
    }
  });
}

}  // namespace effects
}  // namespace orderflow
