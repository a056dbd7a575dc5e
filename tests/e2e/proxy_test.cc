// End-to-end: the production front, nginx with deploy/nginx/orderflow.conf, in front of the real
// server (issue 9). What nginx refuses it answers itself, in our JSON error shape with an
// X-Request-Id, and the server never sees it; what it passes, it passes as one clean
// Content-Length-framed request at a time on a long-lived connection.
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "harness.h"
#include "raw_http.h"

namespace orderflow_test {
namespace {

const char kOrderBody[] = R"({"item":"widget","quantity":1})";

bool IsHexId(const std::string& id) {
  return id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::string PostRequest(const std::string& path, const std::string& body,
                        const std::string& extra_headers = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n" +
         extra_headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

class ProxyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess({{"DB_POOL_SIZE", "4"}, {"HTTP_THREADS", "4"}}, Front::kNginx);
    server_->Start();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void TearDown() override {
    EXPECT_EQ(server_->Get("/health").status, 200) << "nginx and the server survived the test";
  }

  // An answer nginx made itself: the status, our JSON error shape with `code`, a fresh request
  // id, and no trace of the request in the server's log (it never reached the server).
  static void ExpectNginxError(const RawResponse& response, long status, const std::string& code) {
    ASSERT_EQ(response.status, status) << response.error << " " << response.body;
    EXPECT_EQ(response.Header("content-type"), "application/json");
    rapidjson::Document body;
    body.Parse(response.body.c_str());
    ASSERT_FALSE(body.HasParseError()) << response.body;
    ASSERT_TRUE(body.IsObject() && body.HasMember("error") && body["error"].IsString() &&
                body["error"].GetStringLength() > 0 && body.HasMember("code") &&
                body["code"].IsString())
        << response.body;
    EXPECT_EQ(std::string(body["code"].GetString()), code) << response.body;
    const std::string id = response.Header("x-request-id");
    EXPECT_TRUE(IsHexId(id)) << "X-Request-Id: " << id;
    EXPECT_EQ(server_->Log().find(id), std::string::npos) << "the server saw the request";
  }

  static ServerProcess* server_;
};
ServerProcess* ProxyTest::server_ = nullptr;

TEST_F(ProxyTest, TwoMegabyteRequestPathIs414) {
  const std::string path = "/api/orders/" + std::string(2 << 20, 'a');
  const int fd = ConnectRaw(server_->port());
  ASSERT_GE(fd, 0);
  SendAll(fd, "GET " + path + " HTTP/1.1\r\nHost: test\r\n\r\n");  // nginx may stop reading early
  std::string buffer;
  ExpectNginxError(ReadResponse(fd, &buffer), 414, "uri_too_long");
  close(fd);
  EXPECT_LT(server_->Log().size(), 1U << 20) << "no 2 MB log line";
}

TEST_F(ProxyTest, FiveHundredRepeatedTenKilobyteHeadersAre431) {
  std::string request = "GET /health HTTP/1.1\r\nHost: test\r\n";
  for (int i = 0; i < 500; ++i) request += "X-Pad: " + std::string(10 << 10, 'p') + "\r\n";
  const int fd = ConnectRaw(server_->port());
  ASSERT_GE(fd, 0);
  SendAll(fd, request + "\r\n");
  std::string buffer;
  ExpectNginxError(ReadResponse(fd, &buffer), 431, "headers_too_large");
  close(fd);
}

TEST_F(ProxyTest, ContentLengthOverOneMebibyteIs413BeforeAnyBodyIsSent) {
  const std::string key = Unique("proxy-413");
  const int fd = ConnectRaw(server_->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd,
                      "POST /orders HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                      "Idempotency-Key: " +
                          key + "\r\nContent-Length: 8000001\r\n\r\n"));
  std::string buffer;
  const RawResponse refused = ReadResponse(fd, &buffer, false, std::chrono::seconds(2));
  ExpectNginxError(refused, 413, "payload_too_large");
  EXPECT_EQ(refused.Header("connection"), "close");
  // After nginx's lingering close (it reads what the client still sends for up to 5 s).
  EXPECT_TRUE(PeerCloses(fd, std::chrono::seconds(10))) << "and the connection is closed";
  close(fd);
  // Exactly 1 MiB is still passed on (and refused by the server, for its content).
  const RawResponse mebibyte = Exchange(
      server_->port(),
      PostRequest("/orders", std::string(1 << 20, ' '), "Idempotency-Key: " + key + "\r\n"));
  EXPECT_EQ(mebibyte.status, 400) << mebibyte.body;
  EXPECT_NE(server_->Log().find(mebibyte.Header("x-request-id")), std::string::npos);
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.idempotency_keys WHERE key = $1", {key}), 0);
}

// Every framing a front and a back end could read differently is refused before the server:
// nothing smuggled behind it runs.
TEST_F(ProxyTest, SmugglingShapesAre400AndRunNothing) {
  const std::string hidden = Unique("smuggled");
  const std::string hidden_request = PostRequest("/api/orders/process", ProcessBody(hidden));
  const std::string key = Unique("proxy-smuggle");
  const std::string start =
      "POST /orders HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
      "Idempotency-Key: " +
      key + "\r\n";
  const std::string body = kOrderBody;
  const std::string length = std::to_string(body.size());
  const struct {
    const char* name;
    std::string request;
  } kCases[] = {
      {"two Content-Length headers",
       start + "Content-Length: " + length + "\r\nContent-Length: 3\r\n\r\n" + body},
      {"two equal Content-Length headers",
       start + "Content-Length: " + length + "\r\nContent-Length: " + length + "\r\n\r\n" + body},
      {"obs-fold header line",
       start + "X-A: a\r\n b\r\nContent-Length: " + length + "\r\n\r\n" + body + hidden_request},
      {"folded Content-Length", start + "X-A: a\r\n Content-Length: 0\r\nContent-Length: " +
                                    length + "\r\n\r\n" + body + hidden_request},
      {"Content-Length and Transfer-Encoding",
       start + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden_request},
      {"Content-Length: 0x10", start + "Content-Length: 0x10\r\n\r\n" + body},
      {"Content-Length: -1", start + "Content-Length: -1\r\n\r\n" + body},
      {"Content-Length: 99999999999999999999",
       start + "Content-Length: 99999999999999999999\r\n\r\n" + body},
      {"chunk size 0x5", start + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"},
      {"chunk size ' 5'", start + "Transfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n"},
      {"space before the colon", start + "Content-Length : " + length + "\r\n\r\n" + body},
  };
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.name);
    ExpectNginxError(Exchange(server_->port(), c.request), 400, "invalid_request");
  }
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.workflows WHERE order_id = $1", {hidden}), 0)
      << "the hidden request never ran";
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.idempotency_keys WHERE key = $1", {key}), 0);
  // A chunked body that is valid is read whole by nginx and passed on with a Content-Length.
  const RawResponse chunked = Exchange(
      server_->port(), start + "Transfer-Encoding: chunked\r\n\r\n" + [&] {
        std::ostringstream hex;
        hex << std::hex << body.size();
        return hex.str();
      }() + "\r\n" + body + "\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.status, 201) << chunked.body;
}

TEST_F(ProxyTest, PipelinedRequestsAreAllAnsweredInOrder) {
  const std::string first = Unique("pipelined");
  const std::string second = Unique("pipelined");
  const int fd = ConnectRaw(server_->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, PostRequest("/api/orders/process", ProcessBody(first)) +
                              PostRequest("/api/orders/process", ProcessBody(second)) +
                              "GET /health HTTP/1.1\r\nHost: test\r\n\r\n"));
  std::string buffer;
  for (const std::string& id : {first, second}) {
    const RawResponse response = ReadResponse(fd, &buffer);
    ASSERT_EQ(response.status, 200) << response.error << " " << response.body;
    EXPECT_EQ(std::string(ParseJson(response.body)["orderId"].GetString()), id);
  }
  const RawResponse health = ReadResponse(fd, &buffer);
  EXPECT_EQ(health.status, 200) << health.error;
  EXPECT_EQ(health.body, R"({"status":"ok"})");
  close(fd);
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.workflows WHERE order_id IN ($1, $2)",
                       {first, second}),
            2);
}

TEST_F(ProxyTest, HeadIsAnsweredLikeGetWithoutABody) {
  const std::string id = Unique("head");
  ASSERT_EQ(server_->Post("/api/orders/process", ProcessBody(id)).status, 200);
  const int fd = ConnectRaw(server_->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd,
                      "HEAD /health HTTP/1.1\r\nHost: test\r\n\r\n"
                      "HEAD /api/orders/" +
                          id +
                          " HTTP/1.1\r\nHost: test\r\n\r\n"
                          "GET /health HTTP/1.1\r\nHost: test\r\n\r\n"));
  std::string buffer;
  const RawResponse health = ReadResponse(fd, &buffer, true);
  EXPECT_EQ(health.status, 200) << health.error;
  EXPECT_EQ(health.Header("content-length"), "15");
  const RawResponse order = ReadResponse(fd, &buffer, true);
  EXPECT_EQ(order.status, 200) << order.error;
  const RawResponse get = ReadResponse(fd, &buffer);
  EXPECT_EQ(get.status, 200) << get.error;
  EXPECT_EQ(get.body, R"({"status":"ok"})") << "no body came after the HEAD answers";
  close(fd);
}

TEST_F(ProxyTest, HalfClosedClientGetsItsAnswer) {
  const std::string id = Unique("half-closed");
  const int fd = ConnectRaw(server_->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, PostRequest("/api/orders/process", ProcessBody(id))));
  ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
  std::string buffer;
  const RawResponse response = ReadResponse(fd, &buffer);
  ASSERT_EQ(response.status, 200) << response.error;
  EXPECT_EQ(std::string(ParseJson(response.body)["orderId"].GetString()), id);
  EXPECT_TRUE(PeerCloses(fd, std::chrono::seconds(5)));
  close(fd);
}

TEST_F(ProxyTest, ExpectContinueIsAnswered) {
  const int fd = ConnectRaw(server_->port());
  ASSERT_GE(fd, 0);
  const std::string body = kOrderBody;
  ASSERT_TRUE(SendAll(fd,
                      "POST /orders HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                      "Idempotency-Key: " +
                          Unique("expect") + "\r\nExpect: 100-continue\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n"));
  std::string buffer;
  const RawResponse go_on = ReadResponse(fd, &buffer, false, std::chrono::seconds(1));
  EXPECT_EQ(go_on.status, 100) << go_on.error;
  ASSERT_TRUE(SendAll(fd, body));
  const RawResponse created = ReadResponse(fd, &buffer);
  EXPECT_EQ(created.status, 201) << created.error << " " << created.body;
  close(fd);
}

TEST_F(ProxyTest, ConnectionCloseAndHttp10CloseTheSocketAfterTheAnswer) {
  for (const std::string request :
       {"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
        "GET /health HTTP/1.0\r\n\r\n"}) {
    SCOPED_TRACE(request);
    const int fd = ConnectRaw(server_->port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, request));
    std::string buffer;
    EXPECT_EQ(ReadResponse(fd, &buffer).status, 200);
    EXPECT_TRUE(PeerCloses(fd, std::chrono::seconds(2)));
    close(fd);
  }
}

// The server sees only the headers it reads; the ones that made Pistache answer 500 or 415
// directly never reach it.
TEST_F(ProxyTest, HeadersTheServerNeverReadsCannotFailARequest) {
  for (const std::string header :
       {"Cookie: session", "Date: garbage", "Cache-Control: max-stale", "Accept: text/html;q=2",
        "Host: a:b", "If-Modified-Since: no", "Content-Encoding: gzip"}) {
    SCOPED_TRACE(header);
    const std::string host = header.rfind("Host:", 0) == 0 ? header : "Host: test";
    const std::string other = header.rfind("Host:", 0) == 0 ? "" : header + "\r\n";
    const RawResponse health =
        Exchange(server_->port(), "GET /health HTTP/1.1\r\n" + host + "\r\n" + other + "\r\n");
    EXPECT_EQ(health.status, 200) << health.body;
    const std::string body = kOrderBody;
    const RawResponse created =
        Exchange(server_->port(),
                 "POST /orders HTTP/1.1\r\n" + host + "\r\n" + other +
                     "Content-Type: application/json\r\nIdempotency-Key: " + Unique("unread") +
                     "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    EXPECT_EQ(created.status, 201) << created.body;
  }
}

TEST_F(ProxyTest, RequestIdsAreKeptOrMadeAndReachTheServer) {
  const RawResponse made = Exchange(server_->port(), "GET /health HTTP/1.1\r\nHost: test\r\n\r\n");
  ASSERT_TRUE(IsHexId(made.Header("x-request-id"))) << made.Header("x-request-id");
  EXPECT_NE(server_->Log().find("\"requestId\":\"" + made.Header("x-request-id") + "\""),
            std::string::npos)
      << "the server logged the id nginx made";
  const RawResponse kept = Exchange(
      server_->port(), "GET /health HTTP/1.1\r\nHost: test\r\nX-Request-Id: trace-proxy.1\r\n\r\n");
  EXPECT_EQ(kept.Header("x-request-id"), "trace-proxy.1");
  EXPECT_NE(server_->Log().find("\"requestId\":\"trace-proxy.1\""), std::string::npos);
  const RawResponse replaced = Exchange(
      server_->port(), "GET /health HTTP/1.1\r\nHost: test\r\nX-Request-Id: not a token\r\n\r\n");
  const std::string id = replaced.Header("x-request-id");
  EXPECT_TRUE(IsHexId(id)) << id;
  EXPECT_NE(server_->Log().find("\"requestId\":\"" + id + "\""), std::string::npos)
      << "nginx and the server agree on the replacement";
}

// The connections to the server, from /proc/net/tcp: "local-port:remote-port" of every socket
// that has the server's port at either end and is in `state` (hex, as the kernel writes it).
std::set<std::string> ConnectionsOfPort(uint16_t port, const std::string& state) {
  std::set<std::string> found;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // the column names
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, st;
      fields >> slot >> local >> remote >> st;
      const auto port_of = [](const std::string& address) {
        return static_cast<uint16_t>(
            std::stoul(address.substr(address.find(':') + 1), nullptr, 16));
      };
      if (st != state) continue;
      if (port_of(local) != port && port_of(remote) != port) continue;
      found.insert(local + ">" + remote);
    }
  }
  return found;
}

// A client that goes away mid-request does not make nginx drop its request to the server: for
// each of 200 clients that closed (FIN or RST) right after sending, nginx's access log shows the
// server's whole answer read (its status and its full length). Pistache 0.0.5 misdelivers only
// answers still pending when their connection closes; a connection nginx closes afterwards
// (when writing to the vanished client failed, or the keepalive pool is full) has none pending.
TEST_F(ProxyTest, AbortingClientsStillGetTheServersWholeAnswerRead) {
  const std::string id = Unique("abort");
  ASSERT_EQ(server_->Post("/api/orders/process", ProcessBody(id)).status, 200);
  const std::string length = server_->Get("/api/orders/" + id).Header("content-length");
  ASSERT_FALSE(length.empty());
  const uint16_t backend = server_->direct_port();
  const char kTimeWait[] = "06";
  const std::set<std::string> before = ConnectionsOfPort(backend, kTimeWait);
  const std::string prefix = Unique("abort-request");
  constexpr int kAborts = 200;
  for (int i = 0; i < kAborts; ++i) {
    const int fd = ConnectRaw(server_->port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, "GET /api/orders/" + id + " HTTP/1.1\r\nHost: test\r\nX-Request-Id: " +
                                prefix + "-" + std::to_string(i) + "\r\n\r\n"));
    if (i % 2 == 0) {
      CloseWithReset(fd);
    } else {
      close(fd);
    }
  }
  EXPECT_EQ(server_->Get("/health").status, 200);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int logged = 0;
  std::string log;
  while (logged < kAborts && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::ifstream in(server_->proxy_dir() + "/access.log");
    std::ostringstream text;
    text << in.rdbuf();
    log = text.str();
    logged = 0;
    for (size_t at = log.find(prefix); at != std::string::npos; at = log.find(prefix, at + 1)) {
      ++logged;
    }
  }
  ASSERT_EQ(logged, kAborts) << "every aborted request was logged by nginx";
  int whole = 0;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(prefix) == std::string::npos) continue;
    const bool read_whole = line.find("\"upstreamStatus\":\"200\"") != std::string::npos &&
                            line.find("\"upstreamLength\":\"" + length + "\"") != std::string::npos;
    EXPECT_TRUE(read_whole) << line;
    whole += read_whole ? 1 : 0;
  }
  EXPECT_EQ(whole, kAborts);
  int closed = 0;
  for (const std::string& c : ConnectionsOfPort(backend, kTimeWait)) closed += before.count(c) == 0;
  const char kEstablished[] = "01";
  std::printf(
      "%d aborted clients: %d whole answers read by nginx; %d connections to the server closed "
      "afterwards, %zu open\n",
      kAborts, whole, closed, ConnectionsOfPort(backend, kEstablished).size() / 2);
}

TEST(ProxyDownTest, ServerDownIs502JsonWithRetryAfterThenRecovers) {
  ServerProcess server({}, Front::kNginx);
  ASSERT_NO_FATAL_FAILURE(server.Start());
  const uint16_t port = server.port();
  server.Kill9();
  const RawResponse down = Exchange(port, "GET /health HTTP/1.1\r\nHost: test\r\n\r\n");
  EXPECT_EQ(down.status, 502) << down.error;
  EXPECT_EQ(down.Header("content-type"), "application/json");
  EXPECT_EQ(down.body, R"({"error":"the service is not reachable","code":"bad_gateway"})");
  EXPECT_EQ(down.Header("retry-after"), "1");
  EXPECT_TRUE(IsHexId(down.Header("x-request-id")));
  ASSERT_NO_FATAL_FAILURE(server.Start());
  EXPECT_EQ(server.port(), port) << "the same nginx, now pointed at the new server";
  EXPECT_EQ(Exchange(port, "GET /health HTTP/1.1\r\nHost: test\r\n\r\n").status, 200);
}

}  // namespace
}  // namespace orderflow_test
