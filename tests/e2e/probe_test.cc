// End-to-end: the wrong-client probe (issue 9, item 0). 32 clients on fresh connections each ask
// for their own workflows; half of them close right after sending (FIN, or RST by SO_LINGER 0),
// the others check that the answer names the order they asked for, ask once more on the same
// connection and check again. Pistache 0.0.5 queues a pending write by descriptor number: if a
// client goes away while its answer is pending and a new connection gets the same descriptor,
// that answer is written to the newcomer — another customer's order. Any answer naming another
// order, or bytes after the second answer, is a mismatch.
//
// Bounded: ORDERFLOW_PROBE_SECONDS (default 10) and ORDERFLOW_PROBE_MAX_REQUESTS (default
// 200000 requests in all), whichever comes first.
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "harness.h"
#include "raw_http.h"

namespace orderflow_test {
namespace {

constexpr int kClients = 32;
constexpr int kOrders = 64;

long EnvOr(const char* name, long fallback) {
  const char* const value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::atol(value) : fallback;
}

struct ProbeCounts {
  std::atomic<long> sent{0};        // requests written, aborted ones included
  std::atomic<long> aborted{0};     // connections closed right after the request (FIN or RST)
  std::atomic<long> checked{0};     // answers read and compared with the order asked for
  std::atomic<long> mismatches{0};  // answers naming another order, or stray bytes after them
  std::atomic<long> refused{0};     // nginx's 429: this client address holds too many connections
  std::atomic<long> unanswered{0};  // no complete 200 answer (timeout, closed, other status)
  std::atomic<long> connect_failures{0};
  std::string first_mismatch;  // written once, by the first thread that counts one
  std::string first_unanswered;
  std::atomic<bool> noted_mismatch{false};
  std::atomic<bool> noted_unanswered{false};
};

std::string Request(const std::string& order_id) {
  return "GET /api/orders/" + order_id + " HTTP/1.1\r\nHost: probe\r\n\r\n";
}

// Reads one answer and compares it with the order asked for; false when the connection is done.
bool CheckAnswer(int fd, std::string* buffer, const std::string& asked, ProbeCounts* counts) {
  const RawResponse response = ReadResponse(fd, buffer, false, std::chrono::seconds(10));
  // The aborted requests still run (nginx finishes them for the server's sake) and their client
  // connections count until then, so nginx's per-address limit refuses some newcomers: an
  // answer of its own to this very connection, not one meant for someone else.
  if (response.status == 429 && response.body.find("too_many_connections") != std::string::npos) {
    ++counts->refused;
    return false;
  }
  if (response.status != 200) {
    ++counts->unanswered;
    if (!counts->noted_unanswered.exchange(true)) {
      counts->first_unanswered = "asked " + asked + ": status " + std::to_string(response.status) +
                                 " " + response.error + " " + response.body.substr(0, 200);
    }
    return false;
  }
  ++counts->checked;
  rapidjson::Document body;
  body.Parse(response.body.c_str());
  const bool names_it = !body.HasParseError() && body.IsObject() && body.HasMember("orderId") &&
                        body["orderId"].IsString() && asked == body["orderId"].GetString();
  if (!names_it) {
    ++counts->mismatches;
    if (!counts->noted_mismatch.exchange(true)) {
      counts->first_mismatch = "asked " + asked + ", got " + response.body.substr(0, 200);
    }
    return false;
  }
  return true;
}

// Runs the probe against `server` (its port(), nginx or its own) and prints the figures.
void RunProbe(const ServerProcess& server, const std::string& label, ProbeCounts* counts) {
  const std::string prefix = Unique("probe");
  std::vector<std::string> ids;
  for (int i = 0; i < kOrders; ++i) {
    ids.push_back(prefix + "-" + std::to_string(i));
    const HttpResponse created = server.Post("/api/orders/process", ProcessBody(ids.back()));
    ASSERT_EQ(created.status, 200) << created.body;
  }
  const long seconds = EnvOr("ORDERFLOW_PROBE_SECONDS", 10);
  const long max_requests = EnvOr("ORDERFLOW_PROBE_MAX_REQUESTS", 200000);
  const auto started = std::chrono::steady_clock::now();
  const auto deadline = started + std::chrono::seconds(seconds);
  const uint16_t port = server.port();

  RunConcurrently(kClients, [&](int client) {
    // Client c owns orders c and c + 32; odd clients abort, even ones check.
    const std::string& first = ids[client];
    const std::string& second = ids[client + kClients];
    const bool aborts = client % 2 == 1;
    for (long round = 0; std::chrono::steady_clock::now() < deadline; ++round) {
      if (counts->sent.load() >= max_requests) break;
      const int fd = ConnectRaw(port);
      if (fd < 0) {
        ++counts->connect_failures;
        continue;
      }
      const std::string& asked = round % 2 == 0 ? first : second;
      ++counts->sent;
      if (!SendAll(fd, Request(asked))) {
        close(fd);
        continue;
      }
      if (aborts) {
        // At most about two aborts per checked answer: a flood of aborts would only starve the
        // checking clients (behind nginx the aborted requests still run, and their client
        // connections count against the per-address limit until they end).
        while (counts->aborted.load() > 2 * counts->checked.load() + 2 * kClients &&
               std::chrono::steady_clock::now() < deadline) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        ++counts->aborted;
        if (round % 4 == 1) {
          CloseWithReset(fd);
        } else {
          close(fd);
        }
        continue;
      }
      std::string buffer;
      if (CheckAnswer(fd, &buffer, asked, counts)) {
        const std::string& again = &asked == &first ? second : first;
        ++counts->sent;
        if (SendAll(fd, Request(again)) && CheckAnswer(fd, &buffer, again, counts)) {
          // Nothing may follow the second answer: a stray answer meant for someone else.
          char extra = 0;
          if (!buffer.empty() || recv(fd, &extra, 1, MSG_DONTWAIT) > 0) {
            ++counts->mismatches;
            if (!counts->noted_mismatch.exchange(true)) {
              counts->first_mismatch = "bytes after the second answer for " + again;
            }
          }
        }
      }
      close(fd);
    }
  });
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const long checked = counts->checked.load();
  const long mismatches = counts->mismatches.load();
  char summary[512];
  std::snprintf(
      summary, sizeof(summary),
      "wrong-client probe %s: %ld checked answers, %ld mismatches (%.3f %%), %ld unanswered, "
      "%ld refused (429), %ld aborted connections, %ld requests, %ld connect failures, %.1f s\n",
      label.c_str(), checked, mismatches, checked > 0 ? 100.0 * mismatches / checked : 0.0,
      counts->unanswered.load(), counts->refused.load(), counts->aborted.load(),
      counts->sent.load(), counts->connect_failures.load(), elapsed);
  std::fputs(summary, stdout);
  if (!counts->first_mismatch.empty()) {
    std::printf("  first mismatch: %s\n", counts->first_mismatch.c_str());
  }
  if (!counts->first_unanswered.empty()) {
    std::printf("  first unanswered: %s\n", counts->first_unanswered.c_str());
  }
  // scripts/test.sh prints the figures of every probe of its run, passed or not.
  const char* const work = std::getenv("ORDERFLOW_TEST_WORK_DIR");
  if (work != nullptr && *work != '\0') {
    std::ofstream(std::string(work) + "/probe-figures.txt", std::ios::app) << summary;
  }
  std::fflush(stdout);
}

// Starts a server behind `front`, probes it, and expects every answer to have reached the
// client that asked for it.
void ProbeExpectingNoMisdelivery(Front front, const std::string& label) {
  ServerProcess server({}, front);
  ASSERT_NO_FATAL_FAILURE(server.Start());
  ProbeCounts counts;
  ASSERT_NO_FATAL_FAILURE(RunProbe(server, label, &counts));
  EXPECT_GE(counts.checked.load(), 200) << "the probe checked enough answers to mean something";
  EXPECT_GE(counts.aborted.load(), 200) << "clients really went away mid-request";
  EXPECT_EQ(counts.mismatches.load(), 0)
      << "an answer reached the wrong client: " << counts.first_mismatch;
  EXPECT_EQ(counts.unanswered.load(), 0)
      << "a client that waited got no answer: " << counts.first_unanswered;
  EXPECT_EQ(server.Get("/health").status, 200) << "the server survived the probe";
}

// The server's own port. Fails while Pistache 0.0.5 answers from its reactor threads; make test
// runs and reports it without failing on it (scripts/test.sh, direct_probe_decides).
TEST(WrongClientProbeTest, DirectToTheServer) {
  ProbeExpectingNoMisdelivery(Front::kDirect, "direct");
}

// Through deploy/nginx/orderflow.conf: a client's abort never closes a connection to the
// server, so the server never sees a descriptor reused while an answer is pending.
TEST(WrongClientProbeTest, ThroughNginx) {
  ProbeExpectingNoMisdelivery(Front::kNginx, "through nginx");
}

}  // namespace
}  // namespace orderflow_test
