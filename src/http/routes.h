// The route table: every route of the HTTP API in one place — method, path pattern, the SQL call
// it makes, whether a null answer is a 404, what body it takes, which worker lane runs it, and
// how it runs. The server registers its metrics and matches requests from this table, and runs
// the matched entry; README's HTTP table lists the same rows with their SQL functions.
#ifndef ORDERFLOW_HTTP_ROUTES_H_
#define ORDERFLOW_HTTP_ROUTES_H_

#include <string>
#include <vector>

#include "api.h"
#include "reply.h"
#include "sql_calls.h"

namespace orderflow {
namespace http {

enum class BodyKind {
  kNone,          // no body is read
  kJson,          // a JSON body (Content-Type application/json when a body is sent)
  kOptionalJson,  // as kJson, but no body at all is valid too
  kJsonAfterKey,  // as kJson, checked after the Idempotency-Key (whose error comes first)
};

// Which workers run the route: request traffic, or the operations lane (its own thread and
// database connection, so /health and /metrics never queue behind requests).
enum class Lane { kRequest, kOps };

struct RouteInput {
  std::vector<std::string> params;               // percent-decoded path parameters, in order
  const std::string* idempotency_key = nullptr;  // null when the header is absent
  const std::string* content_type = nullptr;     // null when the header is absent
  std::string body;
  bool has_body = false;
  std::string query;  // the target's query as sent (still percent-encoded), "" when none
};

// GET /api/events?after=<cursor>&limit=<n>, read from the query.
struct EventsQuery {
  SqlValue after;   // the cursor, decoded; null (absent): from the first event
  int limit = 100;  // 1..1000
};

// Reads `query` (RouteInput::query) into *events; returns "" or the sentence of a 400. Unknown
// parameters are ignored; `after` or `limit` given twice, a query that does not
// percent-decode, or a limit that is not a decimal integer from 1 to 1000 is refused. The
// cursor itself is the database's to judge (22023 when it is malformed).
std::string ParseEventsQuery(const std::string& query, EventsQuery* events);

struct RouteDef;
using RouteRunner = Reply (*)(Api& api, const RouteDef& route, const RequestContext& context,
                              const RouteInput& input);

struct RouteDef {
  const char* method;
  const char* pattern;  // "/api/orders/:orderId": ":name" segments are parameters
  SqlCall call;
  bool not_found_on_null;  // a null SQL answer is a 404 "<what> not found"
  const char* what;        // the thing a 404 names
  BodyKind body;
  Lane lane;
  RouteRunner run;
};

const std::vector<RouteDef>& RouteTable();

// What the request log line names (an on-call engineer greps for it): the order id of a route
// about one order (its path parameter, or POST /api/orders/process's "orderId"), or "". Only
// printable ASCII up to 200 characters is returned; anything else is left out.
std::string LoggedOrderId(const RouteDef& route, const RouteInput& input);
// The Idempotency-Key of POST /orders as the log names it (printable ASCII, at most 255), or "".
std::string LoggedKey(const RouteDef& route, const RouteInput& input);

// The SQL function a call runs ("orderflow.get_order"), read from its statement; "" if none.
std::string SqlFunctionOf(SqlCall call);

struct RouteMatch {
  const RouteDef* route = nullptr;  // null: no route for this method (see path_known)
  std::vector<std::string> params;  // raw (still percent-encoded) parameter segments
  bool path_known = false;          // some route has this path (so: 405, not 404)
  std::string allow;                // the methods the path has, for a 405's Allow
};

// Finds the route for `method` and `path`. HEAD matches GET routes.
RouteMatch MatchRoute(const std::string& method, const std::string& path);

// Runs `route` with the checks every route shares (Content-Type by body kind), catching
// exceptions into a 500.
Reply RunRoute(Api& api, const RouteDef& route, const RequestContext& context,
               const RouteInput& input);

// application/json, with or without parameters, in any letter case.
bool IsJsonContentType(const std::string* content_type);

}  // namespace http
}  // namespace orderflow

#endif  // ORDERFLOW_HTTP_ROUTES_H_
