#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <pqxx/pqxx>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "gtest/gtest.h"

#ifndef ORDERFLOW_SERVER_PATH
#error "ORDERFLOW_SERVER_PATH must name the server binary"
#endif

namespace orderflow_test {
namespace {

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_ALL); }
  ~CurlGlobal() { curl_global_cleanup(); }
};
const CurlGlobal curl_global;

size_t CollectBody(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

size_t CollectHeader(char* data, size_t size, size_t count, void* out) {
  const std::string line(data, size * count);
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t\r\n") + 1);
    (*static_cast<std::map<std::string, std::string>*>(out))[name] = value;
  }
  return size * count;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs scripts/<command> and returns what it printed on stdout; a failure fails the test.
std::string RunScript(const std::string& command) {
  const std::string line = std::string(ORDERFLOW_SOURCE_DIR) + "/scripts/" + command;
  FILE* const pipe = popen(line.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "cannot run " << line;
    return "";
  }
  std::string out;
  char chunk[256];
  size_t n = 0;
  while ((n = fread(chunk, 1, sizeof(chunk), pipe)) > 0) out.append(chunk, n);
  const int status = pclose(pipe);
  EXPECT_EQ(status, 0) << line << ": " << out;
  return out;
}

}  // namespace

std::string TestDatabaseUrl() {
  const char* const url = std::getenv("ORDERFLOW_TEST_DATABASE_URL");
  if (url == nullptr || *url == '\0') {
    std::fprintf(stderr,
                 "ORDERFLOW_TEST_DATABASE_URL is not set: the end-to-end tests need a real "
                 "PostgreSQL (run them with `make test`).\n");
    std::abort();
  }
  return url;
}

std::string Unique(const std::string& prefix) {
  static const std::string run = [] {
    std::random_device device;
    std::ostringstream out;
    out << std::hex << device() << device();
    return out.str();
  }();
  static std::atomic<int> counter{0};
  return prefix + "-" + run + "-" + std::to_string(++counter);
}

rapidjson::Document ParseJson(const std::string& text) {
  rapidjson::Document document;
  document.Parse(text.c_str());
  EXPECT_FALSE(document.HasParseError()) << text.substr(0, 300);
  return document;
}

std::string ProcessBody(const std::string& order_id, const std::string& amount,
                        const std::string& item) {
  return R"({"orderId":")" + order_id + R"(","amount":)" + amount + R"(,"item":")" + item + R"("})";
}

std::string HttpResponse::Header(const std::string& lower_name) const {
  const auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

HttpResponse SendHttp(uint16_t port, const HttpRequest& request) {
  HttpResponse response;
  CURL* const curl = curl_easy_init();
  if (curl == nullptr) throw std::runtime_error("curl_easy_init failed");
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + request.path;
  curl_slist* headers = nullptr;
  bool has_content_type = false;
  for (const std::string& header : request.headers) {
    headers = curl_slist_append(headers, header.c_str());
    has_content_type = has_content_type || header.rfind("Content-Type:", 0) == 0;
  }
  if (!has_content_type) headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip

  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, request.timeout_ms);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, CollectBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, CollectHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response.headers);
  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (request.method != "GET" || !request.body.empty()) {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
    }
  }
  const CURLcode code = curl_easy_perform(curl);
  if (code == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  } else {
    response.status = 0;
    response.error = curl_easy_strerror(code);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return response;
}

ServerProcess* SharedServerTest::server_ = nullptr;

void SharedServerTest::SetUpTestSuite() {
  server_ = new ServerProcess({{"DB_POOL_SIZE", "24"}, {"HTTP_THREADS", "24"}});
  server_->Start();
}

void SharedServerTest::TearDownTestSuite() {
  delete server_;
  server_ = nullptr;
}

bool ViaProxy() {
  const char* const value = std::getenv("ORDERFLOW_TEST_VIA_PROXY");
  return value != nullptr && std::string(value) == "1";
}

ServerProcess::ServerProcess(std::map<std::string, std::string> env, Front front)
    : env_(std::move(env)),
      via_proxy_(front == Front::kNginx || (front == Front::kAsTheRunSays && ViaProxy())) {}

ServerProcess::~ServerProcess() {
  if (pid_ > 0 && Terminate(std::chrono::seconds(10)) == -1) Kill9();
  if (!proxy_dir_.empty()) {
    RunScript("nginx.sh stop '" + proxy_dir_ + "'");
    std::error_code ignored;
    std::filesystem::remove_all(proxy_dir_, ignored);
  }
}

void ServerProcess::StartProxy() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  const std::string server_port = std::to_string(port_);
  if (proxy_dir_.empty()) {
    // Under the run's work directory (scripts/test.sh stops every nginx there on exit).
    const char* const work = std::getenv("ORDERFLOW_TEST_WORK_DIR");
    std::string pattern =
        std::string(work != nullptr && *work != '\0' ? work : "/tmp") + "/orderflow-nginx-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    proxy_dir_ = pattern;
    const std::string out = RunScript("nginx.sh start '" + proxy_dir_ + "' " + server_port);
    proxy_port_ = static_cast<uint16_t>(std::atoi(out.c_str()));
    ASSERT_NE(proxy_port_, 0) << "nginx did not start: " << out;
  } else {
    // A restarted server has a new port: the same nginx, on the same port, now sends there.
    RunScript("nginx.sh reload '" + proxy_dir_ + "' " + server_port);
  }
  while (Get("/health").status != 200) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "never healthy through nginx:\n"
                                                          << ReadFile(proxy_dir_ + "/error.log");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void ServerProcess::Launch(const std::vector<std::string>& args) {
  ASSERT_LT(pid_, 0) << "server already running";
  char path[] = "/tmp/orderflow-e2e-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  log_path_ = path;

  // The server runs as the least-privileged role when the run provides one; the schema is
  // applied by the owner either way.
  const char* const api_url = std::getenv("ORDERFLOW_TEST_API_DATABASE_URL");
  std::map<std::string, std::string> env = {
      {"DATABASE_URL", api_url != nullptr && *api_url != '\0' ? api_url : TestDatabaseUrl()},
      {"MIGRATION_DATABASE_URL", TestDatabaseUrl()},
      {"PORT", "0"},
      {"LOG_LEVEL", "info"}};
  for (const auto& [name, value] : env_) env[name] = value;

  std::vector<std::string> argv_text = {ORDERFLOW_SERVER_PATH};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_text) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
    execv(ORDERFLOW_SERVER_PATH, argv.data());
    _exit(127);
  }
  close(fd);
  pid_ = pid;
}

void ServerProcess::Start() {
  const uint16_t proxy_port = proxy_port_;
  proxy_port_ = 0;  // until nginx points at the new server, /health is asked directly
  ASSERT_NO_FATAL_FAILURE(Launch());

  // The server logs {"event":"listening","port":N} once it accepts connections.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  port_ = 0;
  while (port_ == 0) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL() << "server exited during start-up:\n" << Log();
    }
    const std::string log = Log();
    const size_t at = log.find("\"event\":\"listening\"");
    if (at != std::string::npos) {
      const size_t key = log.find("\"port\":", at);
      if (key != std::string::npos) port_ = static_cast<uint16_t>(std::atoi(log.c_str() + key + 7));
    }
    if (port_ == 0) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "server did not start:\n" << Log();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  while (Get("/health").status != 200) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "server never healthy:\n" << Log();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  proxy_port_ = proxy_port;
  if (via_proxy_) StartProxy();
}

void ServerProcess::Kill9() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

int ServerProcess::Terminate(std::chrono::milliseconds timeout) {
  SignalTerm();
  return Wait(timeout);
}

void ServerProcess::SignalTerm() { Signal(SIGTERM); }

bool ServerProcess::Signal(int signal_number) { return pid_ > 0 && kill(pid_, signal_number) == 0; }

int ServerProcess::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

std::string ServerProcess::Log() const { return ReadFile(log_path_); }

HttpResponse ServerProcess::Send(const HttpRequest& request) const {
  return SendHttp(port_, request);
}

HttpResponse ServerProcess::Get(const std::string& path, std::vector<std::string> headers) const {
  HttpRequest request;
  request.path = path;
  request.headers = std::move(headers);
  return Send(request);
}

HttpResponse ServerProcess::Post(const std::string& path, const std::string& body,
                                 std::vector<std::string> headers) const {
  HttpRequest request;
  request.method = "POST";
  request.path = path;
  request.body = body;
  request.headers = std::move(headers);
  return Send(request);
}

void RunConcurrently(int n, const std::function<void(int)>& fn) {
  std::mutex mutex;
  std::condition_variable go;
  int ready = 0;
  bool released = false;
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      {
        std::unique_lock<std::mutex> lock(mutex);
        ++ready;
        go.notify_all();
        go.wait(lock, [&] { return released; });
      }
      fn(i);
    });
  }
  {
    std::unique_lock<std::mutex> lock(mutex);
    go.wait(lock, [&] { return ready == n; });
    released = true;
  }
  go.notify_all();
  for (std::thread& thread : threads) thread.join();
}

std::string QueryValue(const std::string& sql, const std::vector<std::string>& params) {
  pqxx::connection connection(TestDatabaseUrl());
  pqxx::nontransaction transaction(connection);
  const pqxx::result result =
      transaction.exec_params(sql, pqxx::prepare::make_dynamic_params(params));
  if (result.empty() || result[0][0].is_null()) return "";
  return result[0][0].c_str();
}

long QueryCount(const std::string& sql, const std::vector<std::string>& params) {
  return std::stol(QueryValue(sql, params));
}

bool OnCitus() {
  static const bool citus =
      QueryValue("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')::text") == "true";
  return citus;
}

long ServerLockWaiters() {
  if (!OnCitus()) {
    return QueryCount(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'orderflow'"
        " AND wait_event_type = 'Lock'");
  }
  return QueryCount(
      "SELECT count(*) FROM pg_stat_activity a WHERE a.application_name = 'orderflow'"
      " AND (a.wait_event_type = 'Lock' OR EXISTS (SELECT 1 FROM citus_lock_waits w"
      "      WHERE w.waiting_gpid % 10000000000 = a.pid))");
}

void Execute(const std::string& sql, const std::vector<std::string>& params) {
  pqxx::connection connection(TestDatabaseUrl());
  pqxx::nontransaction transaction(connection);
  transaction.exec_params(sql, pqxx::prepare::make_dynamic_params(params));
}

void ResetDrills() {
  Execute("UPDATE orderflow.faults SET remaining = 0");
  Execute("SELECT orderflow.set_provider('payments', NULL)");
  Execute("SELECT orderflow.reset_circuit('payments')");
  Execute("SELECT orderflow.remove_webhook(id) FROM orderflow.webhooks WHERE removed_at IS NULL");
  Execute(
      "UPDATE orderflow.retry_policies SET max_attempts = 5, base_delay_ms = 200, multiplier = 2,"
      " max_delay_ms = 10000, jitter = 0.2");
  Execute(
      "UPDATE orderflow.effect_policies SET schedule_ms = '{0, 5000, 300000, 1800000, 7200000, "
      "18000000, 36000000, 50400000, 72000000, 86400000}' WHERE kind = 'webhook'");
}

void SetRetryDelay(const std::string& step, int delay_ms) {
  Execute(
      "UPDATE orderflow.retry_policies SET base_delay_ms = $1::integer, max_delay_ms = "
      "$1::integer WHERE step = $2",
      {std::to_string(delay_ms), step});
}

OrderRecord ReadOrder(const std::string& order_id) {
  pqxx::connection connection(TestDatabaseUrl());
  pqxx::nontransaction transaction(connection);
  const pqxx::row row = transaction.exec_params1(
      "SELECT (SELECT status FROM orderflow.workflows WHERE order_id = $1),"
      " (SELECT cancel_reason FROM orderflow.workflows WHERE order_id = $1),"
      " (SELECT count(*) FROM orderflow.payments WHERE order_id = $1 AND kind = 'charge'),"
      " (SELECT count(*) FROM orderflow.payments WHERE order_id = $1 AND kind = 'refund'),"
      " (SELECT count(*) FROM orderflow.reservations WHERE order_id = $1),"
      " (SELECT count(*) FROM orderflow.reservations WHERE order_id = $1"
      "    AND released_at IS NULL),"
      " (SELECT count(*) FROM orderflow.outbox WHERE order_id = $1"
      "    AND event_type = 'order.confirmed'),"
      " (SELECT count(*) FROM orderflow.outbox WHERE order_id = $1"
      "    AND event_type = 'order.cancelled')",
      order_id);
  OrderRecord record;
  record.status = row[0].is_null() ? "" : row[0].c_str();
  record.cancel_reason = row[1].is_null() ? "" : row[1].c_str();
  record.charges = row[2].as<long>();
  record.refunds = row[3].as<long>();
  record.reservations = row[4].as<long>();
  record.open_reservations = row[5].as<long>();
  record.confirmed_events = row[6].as<long>();
  record.cancelled_events = row[7].as<long>();
  return record;
}

::testing::AssertionResult LedgerIsConsistent(const std::string& order_id, const OrderRecord& r) {
  const auto counts = [&] {
    std::ostringstream out;
    out << order_id << " ended '" << r.status << "' with " << r.charges << " charge(s), "
        << r.refunds << " refund(s), " << r.reservations << " reservation(s) ("
        << r.open_reservations << " open), " << r.confirmed_events << " order.confirmed, "
        << r.cancelled_events << " order.cancelled";
    return out.str();
  };
  bool ok = r.charges <= 1 && r.refunds <= 1 && r.reservations <= 1 && r.confirmed_events <= 1 &&
            r.cancelled_events <= 1;
  if (r.status == "completed") {
    ok = ok && r.charges == 1 && r.refunds == 0 && r.open_reservations == 1 &&
         r.confirmed_events == 1 && r.cancelled_events == 0;
  } else if (r.status == "failed" || r.status == "cancelled") {
    ok = ok && r.refunds == r.charges && r.open_reservations == 0 &&
         r.cancelled_events == r.confirmed_events;
  } else if (!r.status.empty()) {
    ok = ok && r.refunds == 0 && r.cancelled_events == 0;
  }
  if (ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << counts();
}

bool Eventually(const std::function<bool()>& fn, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (fn()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

namespace {

void RunPgScript(const std::string& command) {
  const char* const dir = std::getenv("ORDERFLOW_TEST_PG_DIR");
  const char* const port = std::getenv("ORDERFLOW_TEST_PG_PORT");
  if (dir == nullptr || port == nullptr) {
    std::fprintf(stderr, "ORDERFLOW_TEST_PG_DIR/PORT are not set (run with `make test`).\n");
    std::abort();
  }
  const std::string line = std::string(ORDERFLOW_SOURCE_DIR) + "/scripts/pg.sh " + command + " '" +
                           dir + "' " + port + " >/dev/null";
  ASSERT_EQ(std::system(line.c_str()), 0) << line;
}

}  // namespace

void StopDatabase() { RunPgScript("stop"); }

void StartDatabase() { RunPgScript("start"); }

int ConnectRaw(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace orderflow_test
