#include "http/routes.h"

#include <rapidjson/document.h>
#include <strings.h>

#include <cstring>
#include <exception>

#include "url.h"
#include "validation.h"

namespace orderflow {
namespace http {
namespace {

Reply Health(Api& api, const RouteDef&, const RequestContext& context, const RouteInput&) {
  return api.Health(context);
}

Reply MetricsText(Api& api, const RouteDef&, const RequestContext& context, const RouteInput&) {
  return api.Metrics(context);
}

Reply CreateOrder(Api& api, const RouteDef&, const RequestContext& context,
                  const RouteInput& input) {
  return api.CreateOrder(context, input.idempotency_key, input.body);
}

Reply ReadById(Api& api, const RouteDef& route, const RequestContext& context,
               const RouteInput& input) {
  return api.JsonOrNotFound(context, route.call, {input.params.at(0)}, route.what);
}

Reply ProcessOrder(Api& api, const RouteDef&, const RequestContext& context,
                   const RouteInput& input) {
  return api.ProcessOrder(context, input.body);
}

Reply CancelOrder(Api& api, const RouteDef&, const RequestContext& context,
                  const RouteInput& input) {
  return api.CancelOrder(context, input.params.at(0), input.body);
}

Reply ReadEvents(Api& api, const RouteDef&, const RequestContext& context,
                 const RouteInput& input) {
  EventsQuery events;
  const std::string problem = ParseEventsQuery(input.query, &events);
  if (!problem.empty()) return Reply::Error(400, "invalid_request", problem);
  return api.ReadEvents(context, events.after, events.limit);
}

std::vector<std::string> Segments(const std::string& path) {
  std::vector<std::string> segments;
  size_t start = 1;  // after the leading '/'
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const size_t end = slash == std::string::npos ? path.size() : slash;
    segments.push_back(path.substr(start, end - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return segments;
}

// Matches `path` against `pattern`; parameters (non-empty) go to *params.
bool Matches(const std::string& pattern, const std::string& path,
             std::vector<std::string>* params) {
  const std::vector<std::string> want = Segments(pattern);
  const std::vector<std::string> have = Segments(path);
  if (want.size() != have.size()) return false;
  std::vector<std::string> found;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!want[i].empty() && want[i][0] == ':') {
      if (have[i].empty()) return false;
      found.push_back(have[i]);
    } else if (want[i] != have[i]) {
      return false;
    }
  }
  *params = std::move(found);
  return true;
}

Reply UnsupportedMediaType() {
  return Reply::Error(415, "unsupported_media_type",
                      "the request body must be sent as Content-Type: application/json");
}

}  // namespace

const std::vector<RouteDef>& RouteTable() {
  static const std::vector<RouteDef> routes = {
      {"GET", "/health", SqlCall::kHealth, false, "", BodyKind::kNone, Lane::kOps, Health},
      {"GET", "/metrics", SqlCall::kWorkflowCounts, false, "", BodyKind::kNone, Lane::kOps,
       MetricsText},
      {"POST", "/orders", SqlCall::kCreateOrder, false, "", BodyKind::kJsonAfterKey, Lane::kRequest,
       CreateOrder},
      {"GET", "/orders/:id", SqlCall::kGetOrder, true, "order", BodyKind::kNone, Lane::kRequest,
       ReadById},
      {"POST", "/api/orders/process", SqlCall::kProcessOrder, false, "", BodyKind::kJson,
       Lane::kRequest, ProcessOrder},
      {"GET", "/api/orders/:orderId", SqlCall::kGetWorkflow, true, "order", BodyKind::kNone,
       Lane::kRequest, ReadById},
      {"POST", "/api/orders/:orderId/cancel", SqlCall::kCancelOrder, false, "",
       BodyKind::kOptionalJson, Lane::kRequest, CancelOrder},
      {"GET", "/api/events", SqlCall::kReadEvents, false, "", BodyKind::kNone, Lane::kRequest,
       ReadEvents},
  };
  return routes;
}

std::string ParseEventsQuery(const std::string& query, EventsQuery* events) {
  *events = EventsQuery();
  const auto pairs = ParseQuery(query);
  if (!pairs) return "the query string is not valid percent-encoded UTF-8";
  bool seen_after = false, seen_limit = false;
  for (const auto& [name, value] : *pairs) {
    if (name == "after") {
      if (seen_after) return "after must be given at most once";
      seen_after = true;
      events->after = value;
    } else if (name == "limit") {
      if (seen_limit) return "limit must be given at most once";
      seen_limit = true;
      const char* const kBadLimit = "limit must be a whole number from 1 to 1000";
      if (value.empty() || value.size() > 4 ||
          value.find_first_not_of("0123456789") != std::string::npos) {
        return kBadLimit;
      }
      const int limit = std::stoi(value);
      if (limit < 1 || limit > 1000) return kBadLimit;
      events->limit = limit;
    }
  }
  return "";
}

namespace {

// The value as a log may show it: printable ASCII of at most `max` characters, else "".
std::string Printable(const std::string& value, size_t max) {
  if (value.empty() || value.size() > max) return "";
  for (const char c : value) {
    if (c < 0x20 || c > 0x7e) return "";
  }
  return value;
}

}  // namespace

std::string LoggedOrderId(const RouteDef& route, const RouteInput& input) {
  if (!input.params.empty() && std::strstr(route.pattern, "/orders/") != nullptr) {
    return Printable(input.params[0], 200);
  }
  if (route.call != SqlCall::kProcessOrder || input.body.empty()) return "";
  rapidjson::Document body;
  body.Parse(input.body.c_str(), input.body.size());
  if (body.HasParseError() || !body.IsObject()) return "";
  const auto order = body.FindMember("orderId");
  if (order == body.MemberEnd() || !order->value.IsString()) return "";
  return Printable(std::string(order->value.GetString(), order->value.GetStringLength()), 200);
}

std::string LoggedKey(const RouteDef& route, const RouteInput& input) {
  if (route.call != SqlCall::kCreateOrder || input.idempotency_key == nullptr) return "";
  return Printable(*input.idempotency_key, 255);
}

std::string SqlFunctionOf(SqlCall call) {
  const std::string sql = Definition(call).sql;
  const size_t start = sql.find("orderflow.");
  if (start == std::string::npos) return "";
  return sql.substr(start, sql.find('(', start) - start);
}

RouteMatch MatchRoute(const std::string& method, const std::string& path) {
  RouteMatch match;
  const std::string& wanted = method == "HEAD" ? std::string("GET") : method;
  for (const RouteDef& route : RouteTable()) {
    std::vector<std::string> params;
    if (!Matches(route.pattern, path, &params)) continue;
    match.path_known = true;
    if (match.allow.find(route.method) == std::string::npos) {
      match.allow += (match.allow.empty() ? "" : ", ") + std::string(route.method);
      if (std::string(route.method) == "GET") match.allow += ", HEAD";
    }
    if (match.route == nullptr && wanted == route.method) {
      match.route = &route;
      match.params = std::move(params);
    }
  }
  return match;
}

bool IsJsonContentType(const std::string* content_type) {
  if (content_type == nullptr) return false;
  const std::string& value = *content_type;
  const size_t end = value.find(';');
  std::string type = value.substr(0, end);
  type.erase(type.find_last_not_of(" \t") + 1);
  return strcasecmp(type.c_str(), "application/json") == 0;
}

Reply RunRoute(Api& api, const RouteDef& route, const RequestContext& context,
               const RouteInput& input) {
  try {
    const bool json_required =
        route.body != BodyKind::kNone && input.has_body && !IsJsonContentType(input.content_type);
    if (json_required) {
      if (route.body != BodyKind::kJsonAfterKey) return UnsupportedMediaType();
      // A missing or unusable key is answered first, by the route itself (the seed's exact body).
      if (CheckIdempotencyKey(input.idempotency_key) == KeyCheck::kPresent) {
        return UnsupportedMediaType();
      }
    }
    return route.run(api, route, context, input);
  } catch (const std::exception& e) {
    return Reply::Internal(context.request_id, e.what());
  }
}

}  // namespace http
}  // namespace orderflow
