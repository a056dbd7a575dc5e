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

// Whether this run puts nginx (deploy/nginx/orderflow.conf, started by scripts/nginx.sh) in
// front of every server the tests start: ORDERFLOW_TEST_VIA_PROXY=1, set by scripts/test.sh for
// its third pass.
bool ViaProxy();

// What clients of a ServerProcess talk to: as the run says (ViaProxy()), or always one of the
// two. A test about the server's own HTTP handling (framing, sockets) asks for kDirect: it then
// talks to the server itself in every pass, the nginx one included.
enum class Front { kAsTheRunSays, kDirect, kNginx };

// One orderflow server process, with its own nginx in front when its Front says so.
class ServerProcess {
 public:
  explicit ServerProcess(std::map<std::string, std::string> env = {},
                         Front front = Front::kAsTheRunSays);
  ~ServerProcess();  // SIGTERM, then SIGKILL if it lingers

  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts the binary on a free port and waits until /health answers 200; behind nginx, then
  // starts nginx (or points the running one at the new port) and waits for 200 through it.
  void Start();
  // Starts the binary (with `args`) and returns at once, for tests of the start-up itself.
  void Launch(const std::vector<std::string>& args = {});
  // SIGKILL, no warning, then reaps it.
  void Kill9();
  // SIGTERM; returns the exit status once it ended (or -1 after `timeout`).
  int Terminate(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Sends SIGTERM without waiting; Wait() then reaps it.
  void SignalTerm();
  // Sends `signal_number` without waiting; false when the server is not running.
  bool Signal(int signal_number);
  int Wait(std::chrono::milliseconds timeout);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // The port clients use: nginx's when the server is behind it, else the server's own.
  uint16_t port() const { return proxy_port_ != 0 ? proxy_port_ : port_; }
  uint16_t direct_port() const { return port_; }
  bool behind_proxy() const { return proxy_port_ != 0; }
  const std::string& proxy_dir() const { return proxy_dir_; }  // nginx's logs are there
  const std::string& log_path() const { return log_path_; }
  std::string Log() const;  // everything the server printed so far

  HttpResponse Send(const HttpRequest& request) const;
  HttpResponse Get(const std::string& path, std::vector<std::string> headers = {}) const;
  HttpResponse Post(const std::string& path, const std::string& body,
                    std::vector<std::string> headers = {}) const;

 private:
  void StartProxy();

  std::map<std::string, std::string> env_;
  bool via_proxy_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string log_path_;
  uint16_t proxy_port_ = 0;
  std::string proxy_dir_;
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
// Whether the test database is a Citus coordinator (make test-citus, scripts/test_citus.sh).
bool OnCitus();
// How many of the server's connections (application_name orderflow) wait for a lock. On Citus
// the rows and their lock waits are on the workers: citus_lock_waits lists them by global
// process id (node id * 10^10 + pid) of the coordinator's backend.
long ServerLockWaiters();
// Runs a statement for its effect.
void Execute(const std::string& sql, const std::vector<std::string>& params = {});

// Clears injected faults, sets charges back to the ledger, closes the payments circuit,
// removes every webhook subscription and restores the default retry policies and webhook
// schedule, so a drill in one test cannot leak into another.
void ResetDrills();

// Retries of `step` wait `delay_ms` (base and maximum delay): 60000 parks a workflow on a
// transient fault until someone resumes it, 0 makes it due at once. ResetDrills() restores.
void SetRetryDelay(const std::string& step, int delay_ms);

// What the database holds for one order id: the workflow and every effect its steps left.
struct OrderRecord {
  std::string status;  // "" when there is no workflow (never created, or pruned)
  std::string cancel_reason;
  long charges = 0;            // payments rows of kind charge
  long refunds = 0;            // payments rows of kind refund
  long reservations = 0;       // reservations rows
  long open_reservations = 0;  // ... not released
  long confirmed_events = 0;   // outbox order.confirmed
  long cancelled_events = 0;   // outbox order.cancelled
};
OrderRecord ReadOrder(const std::string& order_id);

// The ledger rules every order obeys whatever raced on it: a completed order has exactly one
// charge, no refund, its reservation and one order.confirmed event; a failed or cancelled one
// has as many refunds as charges (at most one each), no open reservation, and an
// order.cancelled event exactly when it had been confirmed; an unfinished one has at most one
// charge and nothing undone yet; without a workflow (pruned) only the ledger's limits hold.
::testing::AssertionResult LedgerIsConsistent(const std::string& order_id,
                                              const OrderRecord& record);

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
