// End-to-end test harness: starts the real orderflow binary against the real PostgreSQL named
// by ORDERFLOW_TEST_DATABASE_URL, talks to it over real HTTP (libcurl), and reads the database
// directly (libpqxx) to check what the server did. Nothing is mocked.
#ifndef ORDERFLOW_TESTS_E2E_HARNESS_H_
#define ORDERFLOW_TESTS_E2E_HARNESS_H_

#include <rapidjson/document.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace orderflow_test {

// The database the tests use. Aborts the test program when the variable is unset: an
// end-to-end run without a database must fail, not pass quietly.
std::string TestDatabaseUrl();

// A name unique to this test process, for order ids and keys that must not collide with
// earlier runs against the same database.
std::string Unique(const std::string& prefix);

// Parses a JSON response body; a body that is not JSON fails the current test.
rapidjson::Document ParseJson(const std::string& text);

// A POST /api/orders/process body; `amount` is written as given (a JSON number).
std::string ProcessBody(const std::string& order_id, const std::string& amount = "5.25",
                        const std::string& item = "widget");

struct HttpResponse {
  long status = 0;  // 0: no HTTP answer (connection refused, reset, timeout)
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string error;                           // libcurl's message when status is 0

  std::string Header(const std::string& lower_name) const;
};

struct HttpRequest {
  std::string method = "GET";
  std::string path;  // "/orders"
  std::string body;
  std::vector<std::string> headers;  // "Name: value"
  long timeout_ms = 30000;
};

// One orderflow server process.
class ServerProcess {
 public:
  explicit ServerProcess(std::map<std::string, std::string> env = {});
  ~ServerProcess();  // SIGTERM, then SIGKILL if it lingers

  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts the binary on a free port and waits until /health answers 200.
  void Start();
  // SIGKILL, no warning, then reaps it.
  void Kill9();
  // SIGTERM; returns the exit status once it ended (or -1 after `timeout`).
  int Terminate(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Sends SIGTERM without waiting; Wait() then reaps it.
  void SignalTerm();
  int Wait(std::chrono::milliseconds timeout);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  uint16_t port() const { return port_; }
  const std::string& log_path() const { return log_path_; }
  std::string Log() const;  // everything the server printed so far

  HttpResponse Send(const HttpRequest& request) const;
  HttpResponse Get(const std::string& path, std::vector<std::string> headers = {}) const;
  HttpResponse Post(const std::string& path, const std::string& body,
                    std::vector<std::string> headers = {}) const;

 private:
  std::map<std::string, std::string> env_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string log_path_;
};

// Sends `request` to 127.0.0.1:`port`.
HttpResponse SendHttp(uint16_t port, const HttpRequest& request);

// A test suite sharing one server, started once for the suite with 24 HTTP threads and 24
// pooled connections, so that the 50-client races really race inside the database.
class SharedServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  static ServerProcess* server_;
};

// Runs fn(i) for i in [0, n) on n threads released at the same moment.
void RunConcurrently(int n, const std::function<void(int)>& fn);

// A single value from the database: the first column of the first row, as text ("" for null).
std::string QueryValue(const std::string& sql, const std::vector<std::string>& params = {});
long QueryCount(const std::string& sql, const std::vector<std::string>& params = {});
// Runs a statement for its effect.
void Execute(const std::string& sql, const std::vector<std::string>& params = {});

// Clears injected faults and restores the default retry policies (db/migrations/002), so a
// drill in one test cannot leak into another.
void ResetDrills();

// Polls `fn` every 50 ms until it returns true or `timeout` passes; returns its last answer.
bool Eventually(const std::function<bool()>& fn, std::chrono::milliseconds timeout);

// Stops / starts the test's PostgreSQL cluster (ORDERFLOW_TEST_PG_DIR and ORDERFLOW_TEST_PG_PORT,
// set by scripts/test.sh). Stopping is a fast shutdown: sessions are terminated.
void StopDatabase();
void StartDatabase();

// A raw TCP connection to 127.0.0.1:`port`, for clients curl cannot imitate (slow writers,
// half-sent requests). Returns the descriptor, or -1.
int ConnectRaw(uint16_t port);

}  // namespace orderflow_test

#endif  // ORDERFLOW_TESTS_E2E_HARNESS_H_
