// Connection over a socketpair: answers written in request order whatever order they finish in,
// requests after a POST held back until it is answered, the half-closed peer still answered,
// the in-flight count back to zero, the buffer budget; WorkerPool's queue bound and reaper;
// the response bytes.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "http/connection.h"
#include "http/response.h"
#include "http/worker_pool.h"

namespace orderflow {
namespace http {
namespace {

class RecordingOwner : public ConnectionOwner {
 public:
  struct Seen {
    std::shared_ptr<Connection> connection;
    uint64_t sequence;
    std::string target;
    int error_status;  // 0 for a request
  };
  void OnRequest(const std::shared_ptr<Connection>& connection, uint64_t sequence,
                 FramedRequest request) override {
    std::lock_guard<std::mutex> lock(mutex);
    seen.push_back({connection, sequence, request.target, 0});
  }
  void OnFramingError(const std::shared_ptr<Connection>& connection, uint64_t sequence,
                      const FramingError& error, const FramedRequest&) override {
    std::lock_guard<std::mutex> lock(mutex);
    seen.push_back({connection, sequence, "", error.status});
  }
  std::mutex mutex;
  std::vector<Seen> seen;
};

std::string Response(const std::string& body) {
  WireResponse response;
  response.content_type = "application/json";
  response.body = body;
  return Serialize(response);
}

// Everything the peer can read within `ms`, and whether it saw the end.
std::string ReadAll(int fd, int ms, bool* ended) {
  std::string out;
  *ended = false;
  pollfd wait{fd, POLLIN, 0};
  while (::poll(&wait, 1, ms) > 0) {
    char buffer[4096];
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      *ended = true;
      break;
    }
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

class ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    peer_ = fds[1];
    connection_ = std::make_shared<Connection>(fds[0], 1, &shared_, &owner_);
  }
  void TearDown() override {
    owner_.seen.clear();
    connection_.reset();
    ::close(peer_);
    EXPECT_EQ(shared_.in_flight.load(), 0);
    EXPECT_EQ(shared_.buffered_bytes.load(), 0U);
  }
  void Input(const std::string& bytes) { connection_->OnInput(bytes.data(), bytes.size()); }

  ConnectionShared shared_;
  RecordingOwner owner_;
  std::shared_ptr<Connection> connection_;
  int peer_ = -1;
};

TEST_F(ConnectionTest, AnswersAreWrittenInRequestOrderWhateverOrderTheyFinishIn) {
  Input(
      "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c HTTP/1.1\r\n"
      "Host: h\r\n\r\n");
  ASSERT_EQ(owner_.seen.size(), 3U) << "safe requests all start at once";
  EXPECT_EQ(shared_.in_flight.load(), 3);
  connection_->Answer(owner_.seen[2].sequence, Response("c"), false);
  connection_->Answer(owner_.seen[1].sequence, Response("b"), false);
  bool ended = false;
  EXPECT_EQ(ReadAll(peer_, 50, &ended), "") << "nothing before the first answer";
  connection_->Answer(owner_.seen[0].sequence, Response("a"), false);
  EXPECT_EQ(ReadAll(peer_, 50, &ended), Response("a") + Response("b") + Response("c"));
  EXPECT_FALSE(ended);
  EXPECT_EQ(shared_.in_flight.load(), 0);
}

TEST_F(ConnectionTest, ARequestAfterAPostStartsOnlyOnceThePostIsAnswered) {
  Input(
      "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}GET /g HTTP/1.1\r\nHost: "
      "h\r\n\r\n");
  ASSERT_EQ(owner_.seen.size(), 1U);
  EXPECT_EQ(owner_.seen[0].target, "/p");
  connection_->Answer(owner_.seen[0].sequence, Response("p"), false);
  ASSERT_EQ(owner_.seen.size(), 2U);
  EXPECT_EQ(owner_.seen[1].target, "/g");
  connection_->Answer(owner_.seen[1].sequence, Response("g"), false);
  bool ended = false;
  EXPECT_EQ(ReadAll(peer_, 50, &ended), Response("p") + Response("g"));
}

TEST_F(ConnectionTest, AHalfClosedPeerIsStillAnsweredThenTheSocketCloses) {
  Input("GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(owner_.seen.size(), 1U);
  connection_->OnPeerClosed();  // Pistache saw recv() == 0 and closes its own descriptor
  connection_->Answer(owner_.seen[0].sequence, Response("a"), false);
  bool ended = false;
  EXPECT_EQ(ReadAll(peer_, 200, &ended), Response("a"));
  EXPECT_TRUE(ended) << "our descriptor is closed once the answer is written";
}

TEST_F(ConnectionTest, CloseAfterEndsTheStreamAndLaterInputIsDropped) {
  Input(
      "GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(owner_.seen.size(), 1U) << "nothing is framed after Connection: close";
  connection_->Answer(owner_.seen[0].sequence, Response("a"), true);
  Input("GET /c HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(owner_.seen.size(), 1U);
  bool ended = false;
  EXPECT_EQ(ReadAll(peer_, 200, &ended), Response("a"));
  EXPECT_TRUE(ended) << "shutdown(SHUT_WR) after the last answer";
}

TEST_F(ConnectionTest, AFramingErrorIsTheLastRequestAndExpectContinueIsAnswered) {
  Input("POST /p HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  bool ended = false;
  EXPECT_EQ(ReadAll(peer_, 50, &ended), "HTTP/1.1 100 Continue\r\n\r\n");
  Input("{}GET /x HTTP/1.1\r\nHost: a:b\r\n\r\nGET /y HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(owner_.seen.size(), 1U) << "the error waits for the POST before it";
  connection_->Answer(owner_.seen[0].sequence, Response("p"), false);
  ASSERT_EQ(owner_.seen.size(), 2U);
  EXPECT_EQ(owner_.seen[1].error_status, 400);
  connection_->Answer(owner_.seen[1].sequence, Response("e"), true);
  EXPECT_EQ(ReadAll(peer_, 200, &ended), Response("p") + Response("e"));
  EXPECT_TRUE(ended);
}

TEST_F(ConnectionTest, TheGlobalBufferBudgetRefusesWithA503) {
  shared_.buffer_budget = 16;  // less than this request head
  Input("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 500\r\n\r\n");
  ASSERT_EQ(owner_.seen.size(), 1U);
  EXPECT_EQ(owner_.seen[0].error_status, 503);
  connection_->Answer(owner_.seen[0].sequence, Response("busy"), true);
}

TEST(WorkerPoolTest, AFullQueueRefusesAndAJobQueuedTooLongIsReaped) {
  WorkerPool pool("test", 1, 2, std::chrono::milliseconds(100));
  std::atomic<bool> release{false};
  std::atomic<int> reaped{0};
  ASSERT_TRUE(pool.TrySubmit([&](std::chrono::steady_clock::duration) {
    while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the worker holds the first
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(pool.TrySubmit([&](std::chrono::steady_clock::duration waited) {
      if (waited >= std::chrono::milliseconds(100)) ++reaped;
    }));
  }
  EXPECT_FALSE(pool.TrySubmit([](std::chrono::steady_clock::duration) {})) << "queue of 2";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (reaped.load() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(reaped.load(), 2) << "both ran past their wait limit while the worker was busy";
  release = true;
  pool.Stop();
  EXPECT_FALSE(pool.TrySubmit([](std::chrono::steady_clock::duration) {})) << "stopped";
}

TEST(WireResponseTest, HeadKeepsTheLengthAndDropsTheBody) {
  WireResponse response;
  response.status = 404;
  response.content_type = "application/json";
  response.body = "{}";
  response.headers = {{"X-Request-Id", "r"}};
  EXPECT_EQ(Serialize(response),
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            "Connection: keep-alive\r\nX-Request-Id: r\r\n\r\n{}");
  response.head = true;
  response.keep_alive = false;
  EXPECT_EQ(Serialize(response),
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            "Connection: close\r\nX-Request-Id: r\r\n\r\n");
}

}  // namespace
}  // namespace http
}  // namespace orderflow
