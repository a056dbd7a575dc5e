// AdminServer: the operators' console (README "Console"), a second Pistache endpoint on
// ADMIN_PORT, bound to ADMIN_BIND (loopback unless told otherwise). It serves the console's page
// (console/, embedded at build time: console_assets.h) and its JSON endpoints, each of which
// calls one SQL function as the console's login (ADMIN_DATABASE_URL, a member of
// orderflow_operator) on a pool of its own.
//
// Every request passes, in this order:
//   1. the Host check: only 127.0.0.1:<port>, localhost:<port>, [::1]:<port> and ADMIN_HOSTS
//      (a page on another site that rebinds its name to 127.0.0.1 sends its own name): else 421;
//   2. the token: `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time. The page and
//      its scripts and styles (code, no data) are served without it, because a browser's
//      navigation and <script src> cannot send it: GET / answers 401 with the page, which then
//      shows its login form; every /api/ endpoint answers 401 JSON without it;
//   3. POSTs must say Content-Type: application/json (a cross-site form cannot; nor can it set
//      the Authorization header);
// and every answer carries a strict Content-Security-Policy, X-Frame-Options: DENY, nosniff,
// Referrer-Policy: no-referrer and Cache-Control: no-store.
#ifndef ORDERFLOW_ADMIN_ADMIN_SERVER_H_
#define ORDERFLOW_ADMIN_ADMIN_SERVER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "db_pool.h"
#include "http/connection.h"
#include "http/worker_pool.h"
#include "reply.h"
#include "status.h"

namespace Pistache {
namespace Http {
class Endpoint;
}  // namespace Http
}  // namespace Pistache

namespace orderflow {
namespace admin {

// The console's Content-Security-Policy: scripts, styles and connections to this origin only,
// no inline code, no frames.
extern const char* const kContentSecurityPolicy;

// Runs one SQL call (DbPool::Run in the server, a fake in tests).
using SqlRunner =
    std::function<Status(SqlCall, const std::vector<SqlValue>&, std::vector<SqlValue>*)>;

struct AdminSettings {
  std::string token;
  uint16_t port = 0;               // the port bound, for the Host check
  std::vector<std::string> hosts;  // ADMIN_HOSTS, lower-case
};

// One request, as the routes see it. The pointers are null when the header is absent.
struct AdminRequest {
  std::string method;
  std::string path;   // without the query, not decoded
  std::string query;  // after '?'
  std::string body;
  const std::string* host = nullptr;
  const std::string* authorization = nullptr;
  const std::string* content_type = nullptr;
  std::string remote;  // the client's address, recorded with an action as "console <remote>"
};

// True when `authorization` is "Bearer <token>" (scheme case-insensitive). Constant time in the
// token's contents: both sides are hashed (SHA-256) and the digests compared with CRYPTO_memcmp.
bool TokenMatches(const std::string* authorization, const std::string& token);

// True when `host` names this console: loopback with `port`, or one of `hosts` (with or without
// ":<port>"), case-insensitive.
bool HostAllowed(const std::string* host, uint16_t port, const std::vector<std::string>& hosts);

// Adds the headers every console answer carries.
void AddSecurityHeaders(Reply* reply);

// Answers one request (security headers included).
Reply HandleAdminRequest(const AdminSettings& settings, const SqlRunner& run,
                         const AdminRequest& request, const std::string& request_id);

class AdminServer : public http::ConnectionOwner {
 public:
  // `pool` is the console's own (ADMIN_DATABASE_URL, DbPoolOptions::console).
  AdminServer(const Config& config, DbPool* pool);
  ~AdminServer() override;

  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds ADMIN_BIND:ADMIN_PORT and serves. Throws on bind failure.
  void Start();
  // Refuses new requests, waits up to `timeout` for those in flight, stops the threads.
  void Stop(std::chrono::milliseconds timeout);

  uint16_t port() const;

  std::shared_ptr<http::Connection> NewConnection(int fd, std::string remote);

  void OnRequest(const std::shared_ptr<http::Connection>& connection, uint64_t sequence,
                 http::FramedRequest request) override;
  void OnFramingError(const std::shared_ptr<http::Connection>& connection, uint64_t sequence,
                      const http::FramingError& error, const http::FramedRequest& partial) override;

 private:
  void Finish(const std::shared_ptr<http::Connection>& connection, uint64_t sequence,
              const std::string& method, const std::string& path, bool head,
              std::chrono::steady_clock::time_point started, const std::string& request_id,
              Reply reply);

  const Config config_;
  DbPool* const pool_;
  AdminSettings settings_;
  std::atomic<uint16_t> bound_port_{0};
  http::ConnectionShared shared_;
  http::ConnectionMonitor monitor_;
  http::WorkerPool workers_;
  std::unique_ptr<Pistache::Http::Endpoint> endpoint_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> next_connection_id_{1};
};

}  // namespace admin
}  // namespace orderflow

#endif  // ORDERFLOW_ADMIN_ADMIN_SERVER_H_
