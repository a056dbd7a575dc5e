// RequestFramer: requests framed from bytes however they are split, and every smuggling-prone
// or oversized input refused with its status.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "http/framing.h"
#include "http/routes.h"

namespace orderflow {
namespace http {
namespace {

struct Framed {
  std::vector<FramedRequest> requests;
  int continues = 0;
  bool failed = false;
  FramingError error;
};

// Feeds `bytes` in pieces of `step` bytes and frames everything that becomes available.
Framed Frame(const std::string& bytes, size_t step = 0) {
  RequestFramer framer;
  Framed out;
  if (step == 0) step = bytes.size() == 0 ? 1 : bytes.size();
  for (size_t i = 0; i < bytes.size() && !out.failed; i += step) {
    framer.Feed(bytes.data() + i, std::min(step, bytes.size() - i));
    while (true) {
      FramedRequest request;
      FramingError error;
      const RequestFramer::Result result = framer.Next(&request, &error);
      if (result == RequestFramer::Result::kNeedMore) break;
      if (result == RequestFramer::Result::kContinue) {
        ++out.continues;
        continue;
      }
      if (result == RequestFramer::Result::kError) {
        out.failed = true;
        out.error = error;
        break;
      }
      out.requests.push_back(std::move(request));
    }
  }
  return out;
}

int StatusOf(const std::string& bytes) {
  const Framed framed = Frame(bytes);
  return framed.failed ? framed.error.status : 0;
}

std::string Post(const std::string& extra_headers, const std::string& body) {
  return "POST /orders HTTP/1.1\r\nHost: h\r\n" + extra_headers + "\r\n" + body;
}

TEST(HttpFramingTest, OneRequestWithItsBodyWhateverTheSplit) {
  const std::string bytes = Post("Content-Length: 5\r\nX-Request-Id: r1\r\n", "hello");
  for (const size_t step : {size_t(1), size_t(3), size_t(7), bytes.size()}) {
    SCOPED_TRACE(step);
    const Framed framed = Frame(bytes, step);
    ASSERT_FALSE(framed.failed) << framed.error.message;
    ASSERT_EQ(framed.requests.size(), 1U);
    EXPECT_EQ(framed.requests[0].method, "POST");
    EXPECT_EQ(framed.requests[0].target, "/orders");
    EXPECT_EQ(framed.requests[0].body, "hello");
    ASSERT_NE(framed.requests[0].Header("x-request-id"), nullptr);
    EXPECT_EQ(*framed.requests[0].Header("x-request-id"), "r1");
    EXPECT_TRUE(framed.requests[0].keep_alive);
  }
}

TEST(HttpFramingTest, PipelinedRequestsAreAllFramedInOrder) {
  const std::string bytes = Post("Content-Length: 2\r\n", "{}") +
                            "GET /health HTTP/1.1\r\nHost: h\r\n\r\n" +
                            Post("Transfer-Encoding: chunked\r\n", "2\r\n{}\r\n0\r\n\r\n");
  const Framed framed = Frame(bytes);
  ASSERT_FALSE(framed.failed) << framed.error.message;
  ASSERT_EQ(framed.requests.size(), 3U);
  EXPECT_EQ(framed.requests[0].body, "{}");
  EXPECT_EQ(framed.requests[1].target, "/health");
  EXPECT_EQ(framed.requests[2].body, "{}");
}

TEST(HttpFramingTest, FoldedHeaderLinesAreRefusedSoNoHiddenRequest) {
  const std::string hidden = "POST /api/orders/process HTTP/1.1\r\nHost: h\r\n\r\n";
  const Framed framed = Frame(
      Post("X-A: a\r\n b\r\nContent-Length: " + std::to_string(hidden.size()) + "\r\n", hidden));
  EXPECT_TRUE(framed.failed);
  EXPECT_EQ(framed.error.status, 400);
  EXPECT_TRUE(framed.requests.empty()) << "no request at all, hidden or not";
}

TEST(HttpFramingTest, ContentLengthMustBeOneDecimalNumber) {
  EXPECT_EQ(StatusOf(Post("Content-Length: 2\r\nContent-Length: 3\r\n", "{}x")), 400);
  EXPECT_EQ(StatusOf(Post("Content-Length: 2, 3\r\n", "{}x")), 400);
  EXPECT_EQ(StatusOf(Post("Content-Length: 0x10\r\n", "")), 400);
  EXPECT_EQ(StatusOf(Post("Content-Length: -1\r\n", "")), 400);
  EXPECT_EQ(StatusOf(Post("Content-Length: +2\r\n", "{}")), 400);
  EXPECT_EQ(StatusOf(Post("Content-Length: 99999999999999999999\r\n", "")), 400);
  EXPECT_EQ(StatusOf(Post("Content-Length: \r\n", "")), 400);
  EXPECT_EQ(StatusOf(Post("Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", "{}")), 400);
  // The same value twice is one length.
  const Framed same = Frame(Post("Content-Length: 2\r\nContent-Length: 2\r\n", "{}"));
  ASSERT_FALSE(same.failed);
  EXPECT_EQ(same.requests.at(0).body, "{}");
}

TEST(HttpFramingTest, AnnouncedBodyOverTheLimitIs413BeforeItArrives) {
  EXPECT_EQ(StatusOf(Post("Content-Length: 8000001\r\n", "")), 413);
  EXPECT_EQ(StatusOf(Post("Content-Length: " + std::to_string(kMaxBodyBytes) + "\r\n", "")), 0)
      << "exactly the limit is read";
}

TEST(HttpFramingTest, ChunkSizesAreStrictHexWithOptionalExtensions) {
  const auto chunked = [](const std::string& chunks) {
    return Post("Transfer-Encoding: chunked\r\n", chunks);
  };
  EXPECT_EQ(StatusOf(chunked("0x5\r\nhello\r\n0\r\n\r\n")), 400);
  EXPECT_EQ(StatusOf(chunked(" 5\r\nhello\r\n0\r\n\r\n")), 400);
  EXPECT_EQ(StatusOf(chunked("5\r\nhelloXX0\r\n\r\n")), 400) << "data must end with CRLF";
  EXPECT_EQ(StatusOf(chunked("g\r\n")), 400);
  EXPECT_EQ(StatusOf(chunked("fffffffffffffffff\r\n")), 413);
  EXPECT_EQ(StatusOf(chunked("100001\r\n")), 413) << "one chunk over 1 MiB";
  const Framed framed = Frame(chunked("1c;ext=1\r\n" + std::string(0x1c, 'a') +
                                      "\r\n3 ; name\r\nbcd\r\n0\r\nTrailer: x\r\n\r\n"));
  ASSERT_FALSE(framed.failed) << framed.error.message;
  EXPECT_EQ(framed.requests.at(0).body, std::string(0x1c, 'a') + "bcd");
  EXPECT_EQ(StatusOf(Post("Transfer-Encoding: gzip, chunked\r\n", "")), 501);
}

TEST(HttpFramingTest, HeadLimitCountsTheRequestLineAndRepeatedFields) {
  const std::string long_path = "GET /" + std::string(2 << 20, 'a') + " HTTP/1.1\r\n";
  const Framed path = Frame(long_path, 4096);
  EXPECT_TRUE(path.failed);
  EXPECT_EQ(path.error.status, 414);
  std::string repeated = "GET /health HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 500; ++i) repeated += "X-Pad: " + std::string(100, 'p') + "\r\n";
  EXPECT_EQ(StatusOf(repeated + "\r\n"), 431) << "repeats count: 500 x 100 bytes";
  std::string under = "GET /health HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 100; ++i) under += "X-Pad: " + std::string(100, 'p') + "\r\n";
  EXPECT_EQ(StatusOf(under + "\r\n"), 0);
}

TEST(HttpFramingTest, HeadersTheServiceNeverReadsCannotFailARequest) {
  const Framed framed = Frame(
      "GET /health HTTP/1.1\r\nHost: h\r\nCookie: session\r\nDate: garbage\r\n"
      "Cache-Control: max-stale\r\nAccept: text/html;q=2\r\nUser-Agent: \x01weird\r\n\r\n");
  ASSERT_FALSE(framed.failed) << framed.error.message;
  EXPECT_EQ(framed.requests.size(), 1U);
}

TEST(HttpFramingTest, MalformedLinesAndHostsAre400) {
  EXPECT_EQ(StatusOf("GET /health HTTP/1.1\nHost: h\n\n"), 400) << "bare LF";
  EXPECT_EQ(StatusOf("GET /health HTTP/1.1\r\nHost : h\r\n\r\n"), 400) << "blank before colon";
  EXPECT_EQ(StatusOf("GET /health HTTP/1.1\r\nHost: a:b\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET /health HTTP/1.1\r\n\r\n"), 400) << "HTTP/1.1 without Host";
  EXPECT_EQ(StatusOf("GET /health HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
  EXPECT_EQ(StatusOf("GET  /health HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(StatusOf("GET http://h/health HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  static const char kNul[] = "GET /health HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";
  EXPECT_EQ(StatusOf(std::string(kNul, sizeof(kNul) - 1)), 400) << "NUL in a value";
  EXPECT_EQ(StatusOf("GET /health HTTP/1.1\r\nHost: [::1]:3000\r\n\r\n"), 0);
  EXPECT_EQ(StatusOf("GET /health HTTP/1.1\r\nHost: localhost:3000\r\n\r\n"), 0);
}

TEST(HttpFramingTest, ConnectionCloseHttp10AndExpectContinue) {
  EXPECT_FALSE(Frame("GET /health HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
                   .requests.at(0)
                   .keep_alive);
  EXPECT_FALSE(Frame("GET /health HTTP/1.0\r\n\r\n").requests.at(0).keep_alive);
  EXPECT_TRUE(
      Frame("GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").requests.at(0).keep_alive);

  RequestFramer framer;
  const std::string head = Post("Expect: 100-continue\r\nContent-Length: 2\r\n", "");
  framer.Feed(head.data(), head.size());
  FramedRequest request;
  FramingError error;
  EXPECT_EQ(framer.Next(&request, &error), RequestFramer::Result::kContinue);
  EXPECT_EQ(framer.Next(&request, &error), RequestFramer::Result::kNeedMore);
  framer.Feed("{}", 2);
  ASSERT_EQ(framer.Next(&request, &error), RequestFramer::Result::kRequest);
  EXPECT_EQ(request.body, "{}");
  EXPECT_EQ(StatusOf(Post("Expect: something-else\r\n", "")), 417);
}

TEST(HttpRoutesTest, OneTableMatchesEveryRouteAndHeadIsGet) {
  const RouteMatch process_read = MatchRoute("GET", "/api/orders/process");
  ASSERT_NE(process_read.route, nullptr) << "an order called 'process' can be read";
  EXPECT_EQ(process_read.route->call, SqlCall::kGetWorkflow);
  EXPECT_EQ(process_read.params.at(0), "process");
  EXPECT_EQ(MatchRoute("POST", "/api/orders/process").route->call, SqlCall::kProcessOrder);
  EXPECT_EQ(MatchRoute("HEAD", "/health").route->call, SqlCall::kHealth);
  const RouteMatch wrong = MatchRoute("DELETE", "/orders");
  EXPECT_EQ(wrong.route, nullptr);
  EXPECT_TRUE(wrong.path_known);
  EXPECT_EQ(wrong.allow, "POST");
  EXPECT_EQ(MatchRoute("PUT", "/health").allow, "GET, HEAD");
  EXPECT_FALSE(MatchRoute("GET", "/nope").path_known);
  EXPECT_FALSE(MatchRoute("GET", "/orders/").path_known) << "an empty id is no id";
  EXPECT_EQ(SqlFunctionOf(SqlCall::kGetOrder), "orderflow.get_order");
  EXPECT_EQ(SqlFunctionOf(SqlCall::kHealth), "");
  for (const RouteDef& route : RouteTable()) {
    EXPECT_EQ(MatchRoute(route.method, route.pattern).route, &route) << route.pattern;
    EXPECT_EQ(route.not_found_on_null, std::string(route.what) == "order") << route.pattern;
  }
}

// README's HTTP table names the SQL function of every route: the one the route's statement
// really calls (sql_calls.cc), so the table cannot drift from the code.
TEST(HttpRoutesTest, ReadmeNamesTheSqlFunctionOfEveryRoute) {
  std::ifstream file(std::string(ORDERFLOW_SOURCE_DIR) + "/README.md");
  ASSERT_TRUE(file) << "README.md not found";
  std::stringstream text;
  text << file.rdbuf();
  const std::string readme = text.str();
  for (const RouteDef& route : RouteTable()) {
    std::string path = route.pattern;  // ":id" is written "{id}" in the README
    for (size_t colon = path.find(':'); colon != std::string::npos; colon = path.find(':')) {
      const size_t end = std::min(path.find('/', colon), path.size());
      path = path.substr(0, colon) + "{" + path.substr(colon + 1, end - colon - 1) + "}" +
             path.substr(end);
    }
    const std::string row_start = "\n| `" + std::string(route.method) + " " + path + "`";
    const size_t row = readme.find(row_start);
    ASSERT_NE(row, std::string::npos) << "no README row for " << route.method << " " << path;
    const std::string line = readme.substr(row + 1, readme.find('\n', row + 1) - row - 1);
    const std::string function = SqlFunctionOf(route.call);
    if (function.empty()) {
      EXPECT_NE(line.find("none"), std::string::npos) << line;
    } else {
      EXPECT_NE(line.find("`" + function + "`"), std::string::npos)
          << line << "\n  should name " << function;
    }
  }
}

TEST(HttpRoutesTest, EveryRouteRunsTheSqlCallsOwnDefinition) {
  for (size_t i = 0; i < kSqlCallCount; ++i) {
    EXPECT_EQ(static_cast<size_t>(AllSqlCalls()[i].call), i) << "sql_calls.cc is in enum order";
    ASSERT_NE(AllSqlCalls()[i].sql, nullptr) << "call " << i << " has a statement";
    ASSERT_NE(AllSqlCalls()[i].name, nullptr) << "call " << i << " has a name";
  }
  EXPECT_EQ(SqlFunctionOf(SqlCall::kReadEvents), "orderflow.read_events");
  EXPECT_EQ(SqlFunctionOf(SqlCall::kProviderHealth), "orderflow.provider_health");
  EXPECT_EQ(SqlFunctionOf(SqlCall::kClaimEffects), "orderflow.claim_effects");
}

TEST(HttpRoutesTest, EventsAreReadOnTheRequestLane) {
  const RouteMatch match = MatchRoute("GET", "/api/events");
  ASSERT_NE(match.route, nullptr);
  EXPECT_EQ(match.route->call, SqlCall::kReadEvents);
  EXPECT_EQ(match.route->lane, Lane::kRequest);
  EXPECT_EQ(match.route->body, BodyKind::kNone);
  EXPECT_EQ(MatchRoute("HEAD", "/api/events").route, match.route);
  EXPECT_EQ(MatchRoute("POST", "/api/events").allow, "GET, HEAD");
}

TEST(HttpRoutesTest, TheQueryIsWhatFollowsTheFirstQuestionMark) {
  FramedRequest request;
  request.target = "/api/events?after=a?b&limit=5";
  EXPECT_EQ(request.Path(), "/api/events");
  EXPECT_EQ(request.Query(), "after=a?b&limit=5");
  request.target = "/api/events";
  EXPECT_EQ(request.Query(), "");
  request.target = "/api/events?";
  EXPECT_EQ(request.Query(), "");
}

TEST(HttpRoutesTest, EventsQueryDefaultsAndValues) {
  EventsQuery events;
  EXPECT_EQ(ParseEventsQuery("", &events), "");
  EXPECT_EQ(events.after, std::nullopt) << "no cursor: from the first event";
  EXPECT_EQ(events.limit, 100) << "the default page";
  EXPECT_EQ(ParseEventsQuery("after=c%3A12%2F3&limit=1000&utm_source=x", &events), "");
  EXPECT_EQ(events.after, SqlValue("c:12/3")) << "the cursor, percent-decoded";
  EXPECT_EQ(events.limit, 1000) << "the largest page";
  EXPECT_EQ(ParseEventsQuery("limit=1&after=", &events), "");
  EXPECT_EQ(events.after, SqlValue("")) << "an empty cursor is the database's to judge";
  EXPECT_EQ(events.limit, 1);
  EXPECT_EQ(ParseEventsQuery("limit=0007", &events), "");
  EXPECT_EQ(events.limit, 7) << "a decimal integer, leading zeros and all";
  EXPECT_EQ(events.after, std::nullopt) << "nothing left of the previous parse";
}

TEST(HttpRoutesTest, EventsQueryRefusesABadLimitWithoutAskingTheDatabase) {
  EventsQuery events;
  for (const char* query :
       {"limit=0", "limit=1001", "limit=", "limit", "limit=-1", "limit=+5", "limit=5.0",
        "limit=1e3", "limit=%201", "limit=99999999999999999999", "limit=ten", "limit=0x10"}) {
    EXPECT_NE(ParseEventsQuery(query, &events), "") << query;
  }
  EXPECT_NE(ParseEventsQuery("limit=5&limit=6", &events), "") << "given twice";
  EXPECT_NE(ParseEventsQuery("after=a&after=b", &events), "") << "given twice";
  EXPECT_NE(ParseEventsQuery("after=%zz", &events), "") << "not percent-encoding";
}

TEST(HttpRoutesTest, JsonContentTypeWithOrWithoutParameters) {
  const std::string plain = "application/json";
  const std::string with = "application/json; charset";
  const std::string upper = "Application/JSON;charset=utf-8";
  const std::string text = "text/plain";
  const std::string suffix = "application/jsonx";
  EXPECT_TRUE(IsJsonContentType(&plain));
  EXPECT_TRUE(IsJsonContentType(&with));
  EXPECT_TRUE(IsJsonContentType(&upper));
  EXPECT_FALSE(IsJsonContentType(&text));
  EXPECT_FALSE(IsJsonContentType(&suffix));
  EXPECT_FALSE(IsJsonContentType(nullptr));
}

}  // namespace
}  // namespace http
}  // namespace orderflow

namespace orderflow {
namespace http {
namespace {

// The request log names the order (or the key) a request is about, and nothing unprintable.
TEST(HttpRoutesTest, TheLogNamesTheOrderOrTheKeyOfARequest) {
  RouteInput process;
  process.body = R"({"orderId":"o-42","amount":5})";
  const RouteMatch post = MatchRoute("POST", "/api/orders/process");
  ASSERT_NE(post.route, nullptr);
  EXPECT_EQ(LoggedOrderId(*post.route, process), "o-42") << "from the body";
  process.body = R"({"orderId":"o-\n42"})";
  EXPECT_EQ(LoggedOrderId(*post.route, process), "") << "a control character is not logged";
  process.body = "not json";
  EXPECT_EQ(LoggedOrderId(*post.route, process), "");

  RouteInput by_path;
  by_path.params = {"o-7"};
  const RouteMatch get = MatchRoute("GET", "/api/orders/o-7");
  ASSERT_NE(get.route, nullptr);
  EXPECT_EQ(LoggedOrderId(*get.route, by_path), "o-7") << "from the path";
  const RouteMatch cancel = MatchRoute("POST", "/api/orders/o-7/cancel");
  ASSERT_NE(cancel.route, nullptr);
  EXPECT_EQ(LoggedOrderId(*cancel.route, by_path), "o-7");

  const std::string key = "key-1";
  RouteInput create;
  create.idempotency_key = &key;
  const RouteMatch orders = MatchRoute("POST", "/orders");
  ASSERT_NE(orders.route, nullptr);
  EXPECT_EQ(LoggedKey(*orders.route, create), "key-1");
  EXPECT_EQ(LoggedOrderId(*orders.route, create), "") << "POST /orders names its key, not an order";
  EXPECT_EQ(LoggedKey(*post.route, create), "") << "only POST /orders' key is logged";
}

}  // namespace
}  // namespace http
}  // namespace orderflow
