#include "effects/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace orderflow {
namespace effects {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// A tiny HTTP/1.1 server on 127.0.0.1, one thread per connection, keep-alive. The path picks the
// behaviour:
//   /ok            200 "hello" with X-Test: Yes
//   /echo          200 with the request body; Idempotency-Key, X-Method and X-Expect echoed
//   /expect        200 with the size of the request body; X-Expect echoed
//   /delay?ms=N    200 "late" after N ms
//   /close         closes the connection without answering
//   /partial       promises 10 bytes, sends 3, closes
//   /hang          never answers (waits for the client to go away)
//   /big           a body one byte over kMaxResponseBody
//   /interim       a 100 Continue with X-Interim, then 200 with X-Final
//   /redirect      302 to /ok
class LoopbackServer {
 public:
  LoopbackServer() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(listen_fd_, 1024) != 0) {
      ADD_FAILURE() << "test server: bind/listen failed";
    }
    socklen_t len = sizeof(addr);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }

  ~LoopbackServer() {
    stopping_ = true;
    shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
    acceptor_.join();
    close(listen_fd_);
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const int fd : open_fds_) shutdown(fd, SHUT_RDWR);  // wakes recv()
      threads.swap(threads_);
    }
    for (std::thread& thread : threads) thread.join();
  }

  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int port() const { return port_; }
  int requests() const { return requests_.load(); }
  int connections() const { return connections_.load(); }

 private:
  void Accept() {
    while (!stopping_) {
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) {
        if (stopping_) return;
        continue;
      }
      ++connections_;
      std::lock_guard<std::mutex> lock(mutex_);
      open_fds_.push_back(fd);
      threads_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  static bool Send(int fd, const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  static std::string Response(const std::string& status_line, const std::string& headers,
                              const std::string& body) {
    return "HTTP/1.1 " + status_line + "\r\n" + headers +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }

  void Serve(int fd) {
    std::string buffer;
    char chunk[65536];
    auto fill = [&]() {
      const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) return false;
      buffer.append(chunk, static_cast<size_t>(n));
      return true;
    };
    while (true) {
      size_t head_end;
      while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
        if (!fill()) return Close(fd);
      }
      const std::string head = buffer.substr(0, head_end);
      buffer.erase(0, head_end + 4);
      const size_t line_end = head.find("\r\n");
      const std::string request_line = head.substr(0, line_end);
      const size_t sp1 = request_line.find(' ');
      const size_t sp2 = request_line.find(' ', sp1 + 1);
      const std::string method = request_line.substr(0, sp1);
      const std::string target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
      std::map<std::string, std::string> headers;  // names lowercased
      size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
      while (pos < head.size()) {
        size_t end = head.find("\r\n", pos);
        if (end == std::string::npos) end = head.size();
        const std::string line = head.substr(pos, end - pos);
        const size_t colon = line.find(':');
        if (colon != std::string::npos) {
          std::string name = line.substr(0, colon);
          for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          const size_t value_start = line.find_first_not_of(' ', colon + 1);
          headers[name] = value_start == std::string::npos ? "" : line.substr(value_start);
        }
        pos = end + 2;
      }
      const size_t length =
          headers.count("content-length") ? std::stoul(headers["content-length"]) : 0;
      while (buffer.size() < length) {
        if (!fill()) return Close(fd);
      }
      const std::string body = buffer.substr(0, length);
      buffer.erase(0, length);
      ++requests_;

      const std::string path = target.substr(0, target.find('?'));
      const std::string query =
          target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);
      std::string reply;
      if (path == "/ok") {
        reply = Response("200 OK", "X-Test: Yes\r\n", "hello");
      } else if (path == "/echo") {
        auto echoed = [&](const char* name) {
          return headers.count(name) ? headers[name] : std::string("(none)");
        };
        reply = Response("200 OK",
                         "Idempotency-Key: " + echoed("idempotency-key") +
                             "\r\nX-Method: " + method + "\r\nX-Expect: " + echoed("expect") +
                             "\r\nX-Empty: " + echoed("x-empty") + "\r\n",
                         body);
      } else if (path == "/expect") {
        reply = Response(
            "200 OK",
            "X-Expect: " + (headers.count("expect") ? headers["expect"] : "(none)") + "\r\n",
            std::to_string(body.size()));
      } else if (path == "/delay") {
        const int ms = std::stoi(query.substr(query.find('=') + 1));
        std::this_thread::sleep_for(milliseconds(ms));
        reply = Response("200 OK", "", "late");
      } else if (path == "/close") {
        return Close(fd);
      } else if (path == "/partial") {
        Send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        return Close(fd);
      } else if (path == "/hang") {
        while (fill()) {
        }
        return Close(fd);
      } else if (path == "/big") {
        reply = Response("200 OK", "", std::string(kMaxResponseBody + 1, 'x'));
      } else if (path == "/interim") {
        reply = "HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n" +
                Response("200 OK", "X-Final: 1\r\n", "ok");
      } else if (path == "/redirect") {
        reply = Response("302 Found", "Location: /ok\r\n", "");
      } else {
        reply = Response("404 Not Found", "", "");
      }
      if (!Send(fd, reply)) return Close(fd);
    }
  }

  void Close(int fd) {
    std::lock_guard<std::mutex> lock(mutex_);
    open_fds_.erase(std::find(open_fds_.begin(), open_fds_.end(), fd));
    close(fd);
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
  std::atomic<int> connections_{0};
  std::mutex mutex_;
  std::vector<int> open_fds_;         // guarded by mutex_
  std::vector<std::thread> threads_;  // guarded by mutex_
  std::thread acceptor_;
};

// A port nothing listens on: bound, then closed.
int ClosedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

OutboundRequest Get(const std::string& url) {
  OutboundRequest request;
  request.method = "GET";
  request.url = url;
  return request;
}

// Submits one call and waits (at most 5 s) for its callback.
OutboundResponse CallAndWait(HttpClient& client, OutboundRequest request) {
  auto promise = std::make_shared<std::promise<OutboundResponse>>();
  std::future<OutboundResponse> future = promise->get_future();
  client.Submit(std::move(request),
                [promise](OutboundResponse response) { promise->set_value(std::move(response)); });
  if (future.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    ADD_FAILURE() << "no callback within 5 s";
    OutboundResponse none;
    none.error = TransportError::kOther;
    none.error_text = "test: no callback";
    return none;
  }
  return future.get();
}

class HttpClientTest : public ::testing::Test {
 protected:
  HttpClientTest() { client_.Start(); }
  LoopbackServer server_;
  HttpClient client_;
};

TEST(HttpClientNamesTest, TransportErrorNames) {
  EXPECT_STREQ(TransportErrorName(TransportError::kNone), "none") << "kNone";
  EXPECT_STREQ(TransportErrorName(TransportError::kConnect), "connect") << "kConnect";
  EXPECT_STREQ(TransportErrorName(TransportError::kTimeout), "timeout") << "kTimeout";
  EXPECT_STREQ(TransportErrorName(TransportError::kReset), "reset") << "kReset";
  EXPECT_STREQ(TransportErrorName(TransportError::kOther), "other") << "kOther";
}

TEST_F(HttpClientTest, GetReturnsStatusBodyAndLowercasedHeaders) {
  const OutboundResponse r = CallAndWait(client_, Get(server_.Url("/ok")));
  ASSERT_EQ(r.error, TransportError::kNone) << "error_text: " << r.error_text;
  EXPECT_EQ(r.status, 200) << "status of /ok";
  EXPECT_EQ(r.body, "hello") << "body of /ok";
  EXPECT_EQ(r.Header("x-test"), "Yes") << "header name lowercased, value as sent";
  EXPECT_EQ(r.Header("content-length"), "5") << "every response header is kept";
  EXPECT_EQ(r.Header("x-absent"), "") << "an absent header reads as empty";
  EXPECT_GT(r.elapsed.count(), 0) << "elapsed is measured";
}

TEST_F(HttpClientTest, PostSendsBodyByteForByteAndHeadersAsGiven) {
  std::string body = "amount=2550&currency=usd&metadata%5Border_id%5D=o-1&";
  body += std::string("\0\x01\xff", 3);
  body += std::string(3000, 'z');
  OutboundRequest request;
  request.method = "POST";
  request.url = server_.Url("/echo");
  request.headers = {{"Idempotency-Key", "o-1:charge"},
                     {"Content-Type", "application/x-www-form-urlencoded"},
                     {"X-Empty", ""}};
  request.body = body;
  const OutboundResponse r = CallAndWait(client_, request);
  ASSERT_EQ(r.error, TransportError::kNone) << "error_text: " << r.error_text;
  EXPECT_EQ(r.status, 200) << "status of /echo";
  EXPECT_EQ(r.body, body) << "the body went out and came back byte for byte";
  EXPECT_EQ(r.Header("idempotency-key"), "o-1:charge") << "Idempotency-Key sent as given";
  EXPECT_EQ(r.Header("x-method"), "POST") << "method";
  EXPECT_EQ(r.Header("x-empty"), "") << "a header with an empty value is sent, empty";
}

TEST_F(HttpClientTest, LargePostSendsNoExpectContinue) {
  OutboundRequest request;
  request.method = "POST";
  request.url = server_.Url("/expect");
  request.body = std::string(2 * kMaxResponseBody, 'b');  // curl 7.88 adds Expect above 1 MiB
  const OutboundResponse r = CallAndWait(client_, request);
  ASSERT_EQ(r.error, TransportError::kNone) << "error_text: " << r.error_text;
  EXPECT_EQ(r.Header("x-expect"), "(none)") << "no Expect: 100-continue on POST";
  EXPECT_EQ(r.body, std::to_string(request.body.size())) << "the whole body arrived";
  EXPECT_LT(r.elapsed.count(), 900000) << "no wait for a 100 Continue";
}

TEST_F(HttpClientTest, GetSendsNoBody) {
  const OutboundResponse r = CallAndWait(client_, Get(server_.Url("/echo")));
  ASSERT_EQ(r.error, TransportError::kNone) << "error_text: " << r.error_text;
  EXPECT_EQ(r.Header("x-method"), "GET") << "method";
  EXPECT_EQ(r.body, "") << "a GET carries no body";
}

TEST_F(HttpClientTest, DelayedAnswerArrives) {
  const OutboundResponse r = CallAndWait(client_, Get(server_.Url("/delay?ms=200")));
  ASSERT_EQ(r.error, TransportError::kNone) << "error_text: " << r.error_text;
  EXPECT_EQ(r.body, "late") << "body of /delay";
  EXPECT_GE(r.elapsed.count(), 200000) << "elapsed covers the server's 200 ms delay";
}

TEST_F(HttpClientTest, ConnectionClosedWithoutAnswerIsReset) {
  const OutboundResponse r = CallAndWait(client_, Get(server_.Url("/close")));
  EXPECT_EQ(r.error, TransportError::kReset)
      << "got " << TransportErrorName(r.error) << ": " << r.error_text;
  EXPECT_FALSE(r.error_text.empty()) << "curl's message is kept for the logs";
  EXPECT_EQ(r.status, 0) << "no status without a response";
}

TEST_F(HttpClientTest, PartialBodyIsReset) {
  const OutboundResponse r = CallAndWait(client_, Get(server_.Url("/partial")));
  EXPECT_EQ(r.error, TransportError::kReset)
      << "got " << TransportErrorName(r.error) << ": " << r.error_text;
  EXPECT_EQ(r.body, "") << "a partial body is not handed back";
}

TEST_F(HttpClientTest, NoAnswerIsTimeout) {
  OutboundRequest request = Get(server_.Url("/hang"));
  request.timeout = milliseconds(300);
  const OutboundResponse r = CallAndWait(client_, request);
  EXPECT_EQ(r.error, TransportError::kTimeout)
      << "got " << TransportErrorName(r.error) << ": " << r.error_text;
  EXPECT_GE(r.elapsed.count(), 290000) << "not before the 300 ms timeout";
  EXPECT_LT(r.elapsed.count(), 2000000) << "soon after the 300 ms timeout";
}

TEST_F(HttpClientTest, ClosedPortIsConnect) {
  const OutboundResponse r =
      CallAndWait(client_, Get("http://127.0.0.1:" + std::to_string(ClosedPort()) + "/"));
  EXPECT_EQ(r.error, TransportError::kConnect)
      << "got " << TransportErrorName(r.error) << ": " << r.error_text;
}

TEST_F(HttpClientTest, ResponseOverOneMebibyteIsOther) {
  const OutboundResponse r = CallAndWait(client_, Get(server_.Url("/big")));
  EXPECT_EQ(r.error, TransportError::kOther)
      << "got " << TransportErrorName(r.error) << ": " << r.error_text;
  EXPECT_EQ(r.error_text, "response too large") << "error_text";
  EXPECT_EQ(r.body, "") << "the truncated body is not handed back";
}

TEST_F(HttpClientTest, OnlyTheFinalResponsesHeadersAreKept) {
  const OutboundResponse r = CallAndWait(client_, Get(server_.Url("/interim")));
  ASSERT_EQ(r.error, TransportError::kNone) << "error_text: " << r.error_text;
  EXPECT_EQ(r.status, 200) << "the final status, not the 100";
  EXPECT_EQ(r.Header("x-final"), "1") << "the final response's header";
  EXPECT_EQ(r.Header("x-interim"), "") << "the 100 Continue's header is dropped";
  EXPECT_EQ(r.body, "ok") << "body of the final response";
}

TEST_F(HttpClientTest, RedirectsAreNotFollowed) {
  const OutboundResponse r = CallAndWait(client_, Get(server_.Url("/redirect")));
  ASSERT_EQ(r.error, TransportError::kNone) << "error_text: " << r.error_text;
  EXPECT_EQ(r.status, 302) << "the redirect itself is the answer";
  EXPECT_EQ(r.Header("location"), "/ok") << "Location kept";
  EXPECT_EQ(server_.requests(), 1) << "no second request to /ok";
}

TEST_F(HttpClientTest, UnsupportedMethodIsOther) {
  OutboundRequest request = Get(server_.Url("/ok"));
  request.method = "PUT";
  const OutboundResponse r = CallAndWait(client_, request);
  EXPECT_EQ(r.error, TransportError::kOther) << "PUT is refused";
  EXPECT_EQ(server_.requests(), 0) << "nothing was sent";
}

TEST(HttpClientAddressTest, OnlyPublicAddressesArePublic) {
  for (const char* ip : {"0.0.0.0",
                         "0.1.2.3",
                         "127.0.0.1",
                         "127.255.0.9",
                         "10.0.0.1",
                         "172.16.0.1",
                         "172.31.255.255",
                         "192.168.1.1",
                         "169.254.169.254",
                         "100.64.0.1",
                         "100.127.255.255",
                         "224.0.0.1",
                         "255.255.255.255",
                         "::",
                         "::1",
                         "fe80::1",
                         "fc00::1",
                         "fd12:3456::1",
                         "fec0::1",
                         "ff02::1",
                         "::ffff:127.0.0.1",
                         "::ffff:10.1.2.3",
                         "::127.0.0.1",
                         "64:ff9b::169.254.169.254",
                         "2002:c0a8:0101::1",
                         "not an ip",
                         ""}) {
    EXPECT_FALSE(IsPublicAddress(ip)) << ip;
  }
  for (const char* ip :
       {"8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.1", "100.63.255.255", "100.128.0.1",
        "169.253.0.1", "192.169.0.1", "11.0.0.1", "2606:4700:4700::1111", "2001:db8::1",
        "::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "2002:0808:0808::1"}) {
    EXPECT_TRUE(IsPublicAddress(ip)) << ip;
  }
}

TEST_F(HttpClientTest, PrivateAddressIsRefusedWithoutConnecting) {
  for (const std::string& url :
       {server_.Url("/ok"), "http://localhost:" + std::to_string(server_.port()) + "/ok"}) {
    OutboundRequest request = Get(url);
    request.allow_private = false;
    const OutboundResponse r = CallAndWait(client_, request);
    EXPECT_EQ(r.error, TransportError::kOther)
        << url << ": got " << TransportErrorName(r.error) << ": " << r.error_text;
    EXPECT_EQ(r.error_text, kRefusedPrivate) << url;
  }
  EXPECT_EQ(server_.connections(), 0) << "no connection was opened, by address or by name";
  EXPECT_EQ(server_.requests(), 0) << "nothing was sent";

  OutboundRequest allowed = Get(server_.Url("/ok"));
  allowed.allow_private = true;
  const OutboundResponse r = CallAndWait(client_, allowed);
  ASSERT_EQ(r.error, TransportError::kNone) << "error_text: " << r.error_text;
  EXPECT_EQ(r.status, 200) << "allowed, the same call goes through";
}

TEST_F(HttpClientTest, KeptConnectionToAPrivateAddressIsNotReusedWhenRefused) {
  const OutboundResponse first = CallAndWait(client_, Get(server_.Url("/ok")));
  ASSERT_EQ(first.error, TransportError::kNone) << "error_text: " << first.error_text;
  OutboundRequest refused = Get(server_.Url("/ok"));
  refused.allow_private = false;
  const OutboundResponse r = CallAndWait(client_, refused);
  EXPECT_EQ(r.error, TransportError::kOther)
      << "got " << TransportErrorName(r.error) << ": " << r.error_text;
  EXPECT_EQ(r.error_text, kRefusedPrivate);
  EXPECT_EQ(server_.requests(), 1) << "the kept connection carried no second request";
}

TEST_F(HttpClientTest, ConnectionIsKeptAliveAndReused) {
  for (int i = 0; i < 3; ++i) {
    const OutboundResponse r = CallAndWait(client_, Get(server_.Url("/ok")));
    ASSERT_EQ(r.error, TransportError::kNone) << "call " << i << ": " << r.error_text;
  }
  EXPECT_EQ(server_.connections(), 1) << "three calls in a row share one connection";
}

TEST_F(HttpClientTest, TwoHundredConcurrentCallsOnOneThread) {
  constexpr int kCalls = 200;
  std::mutex mutex;
  std::condition_variable all_done;
  std::vector<int> runs(kCalls, 0);
  std::vector<long> statuses(kCalls, 0);
  std::vector<std::thread::id> threads;
  int finished = 0;
  const auto start = Clock::now();
  for (int i = 0; i < kCalls; ++i) {
    client_.Submit(Get(server_.Url("/delay?ms=100")), [&, i](OutboundResponse r) {
      std::lock_guard<std::mutex> lock(mutex);
      ++runs[i];
      statuses[i] = r.status;
      threads.push_back(std::this_thread::get_id());
      ++finished;
      all_done.notify_all();
    });
  }
  const auto submitted = Clock::now() - start;
  EXPECT_LT(submitted, milliseconds(500)) << "Submit() returns at once, it does not wait";
  {
    std::unique_lock<std::mutex> lock(mutex);
    EXPECT_TRUE(
        all_done.wait_for(lock, std::chrono::seconds(5), [&] { return finished >= kCalls; }))
        << "only " << finished << " of " << kCalls << " callbacks within 5 s";
  }
  const auto took = Clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(5)) << "200 calls of 100 ms each ran concurrently";
  EXPECT_EQ(client_.in_flight(), 0U) << "nothing left in flight";
  client_.Stop();  // no callback may outlive the locals it writes to
  std::lock_guard<std::mutex> lock(mutex);
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_EQ(runs[i], 1) << "callback of call " << i << " ran exactly once";
    EXPECT_EQ(statuses[i], 200) << "status of call " << i;
  }
  ASSERT_FALSE(threads.empty()) << "some callback ran";
  EXPECT_TRUE(std::all_of(threads.begin(), threads.end(), [&](std::thread::id id) {
    return id == threads.front();
  })) << "every callback ran on the client's one thread";
  EXPECT_NE(threads.front(), std::this_thread::get_id()) << "not on the submitting thread";
}

TEST_F(HttpClientTest, StopAbortsCallsInFlight) {
  constexpr int kCalls = 5;
  std::mutex mutex;
  std::vector<OutboundResponse> got;
  for (int i = 0; i < kCalls; ++i) {
    client_.Submit(Get(server_.Url("/hang")), [&](OutboundResponse r) {
      std::lock_guard<std::mutex> lock(mutex);
      got.push_back(std::move(r));
    });
  }
  const auto deadline = Clock::now() + std::chrono::seconds(3);
  while (server_.requests() < kCalls && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(server_.requests(), kCalls) << "all calls reached the server";
  EXPECT_EQ(client_.in_flight(), static_cast<size_t>(kCalls)) << "all calls in flight";

  const auto start = Clock::now();
  client_.Stop();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(1)) << "Stop() does not wait for calls";
  {
    std::lock_guard<std::mutex> lock(mutex);
    ASSERT_EQ(got.size(), static_cast<size_t>(kCalls)) << "every callback ran during Stop()";
    for (const OutboundResponse& r : got) {
      EXPECT_EQ(r.error, TransportError::kOther) << "aborted: " << TransportErrorName(r.error);
      EXPECT_EQ(r.error_text, "stopping") << "error_text of an aborted call";
    }
  }
  EXPECT_EQ(client_.in_flight(), 0U) << "nothing left in flight";

  bool ran = false;
  client_.Submit(Get(server_.Url("/ok")), [&](OutboundResponse r) {
    ran = true;
    EXPECT_EQ(r.error_text, "stopping") << "a call after Stop() is refused";
  });
  EXPECT_TRUE(ran) << "a call after Stop() is answered at once";
}

TEST(HttpClientStopTest, StopBeforeStartAnswersQueuedCalls) {
  HttpClient client;
  bool ran = false;
  client.Submit(Get("http://127.0.0.1:1/"), [&](OutboundResponse r) {
    ran = true;
    EXPECT_EQ(r.error, TransportError::kOther) << "never started";
    EXPECT_EQ(r.error_text, "stopping") << "error_text";
  });
  EXPECT_FALSE(ran) << "queued until Start()";
  client.Stop();
  EXPECT_TRUE(ran) << "Stop() answered the queued call";
}

}  // namespace
}  // namespace effects
}  // namespace orderflow
