// HttpServer: the Pistache endpoint and router. It owns what every route shares: request ids,
// the header and body size limits, JSON 404/405/413/431/500 answers, the per-request log line, and
// the graceful stop (stop accepting, let in-flight requests finish, then shut down).
#ifndef ORDERFLOW_HTTP_SERVER_H_
#define ORDERFLOW_HTTP_SERVER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "api.h"
#include "config.h"
#include "metrics.h"

namespace Pistache {
namespace Http {
class Endpoint;
class ResponseWriter;
}  // namespace Http
namespace Rest {
class Router;
class Request;
}  // namespace Rest
}  // namespace Pistache

namespace orderflow {

// Largest request body accepted; larger ones get a JSON 413 (DESIGN.md §3).
constexpr size_t kMaxBodyBytes = 1 << 20;

// Largest request header section accepted (each field counted as "name: value\r\n"); larger
// ones get a JSON 431.
constexpr size_t kMaxHeaderBytes = 16 << 10;

class HttpServer {
 public:
  HttpServer(const Config& config, Api* api, Metrics* metrics);
  ~HttpServer();

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds PORT and starts serving on HTTP_THREADS threads. Throws on bind failure.
  void Start();

  // The port actually bound (PORT=0 picks a free one).
  uint16_t port() const;

  // Graceful stop: refuses new connections at once, waits up to `timeout` for the requests in
  // flight to be answered, then stops the threads. Returns the number of requests that were
  // still unanswered when the wait ended (0 on a clean stop).
  int Stop(std::chrono::milliseconds timeout);

 private:
  using Route = std::function<Reply(const RequestContext&, const Pistache::Rest::Request&)>;

  // Declares the routes (AddRoutes), then hands them to Pistache's router with JSON 405s for
  // the methods a path lacks and a JSON 404 for unknown paths (RegisterRoutes).
  void AddRoutes();
  void Handle(const char* method, const std::string& path, Route route);
  void RegisterRoutes();
  // Answers one request with `route`; the code every route shares. `metric` is the route's id
  // in the metrics.
  void Serve(int metric, const Route& route, const Pistache::Rest::Request& request,
             Pistache::Http::ResponseWriter response);
  void CloseListener();

  const Config config_;
  Api* const api_;
  Metrics* const metrics_;
  std::unique_ptr<Pistache::Http::Endpoint> endpoint_;
  std::unique_ptr<Pistache::Rest::Router> router_;
  std::map<std::string, std::map<std::string, Route>> routes_;  // path → method → route
  std::atomic<int> in_flight_{0};
  int listen_fd_ = -1;
};

}  // namespace orderflow

#endif  // ORDERFLOW_HTTP_SERVER_H_
