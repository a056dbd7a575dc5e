// HttpServer: the HTTP edge. Pistache's endpoint accepts connections and its reactor threads read
// them; everything after the read is ours:
//   - framing (http/framing.h) in a handler that overrides Pistache's Http::Handler::onInput,
//   - the route table (http/routes.h): matching, 404/405, HEAD, Content-Type,
//   - the SQL call of every request on a worker pool sized to the database pool (bounded queue:
//     a full one answers 503 at once), /health and /metrics on a lane of their own,
//   - answers written in request order by the connection (http/connection.h), with
//     X-Request-Id, a log line and a metric for every one, framing errors included,
//   - the graceful stop: refuse new work, drain the workers while the reactors still run, then
//     shut Pistache down.
#ifndef ORDERFLOW_HTTP_SERVER_H_
#define ORDERFLOW_HTTP_SERVER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "api.h"
#include "config.h"
#include "http/connection.h"
#include "http/framing.h"
#include "http/worker_pool.h"
#include "metrics.h"

namespace Pistache {
namespace Http {
class Endpoint;
}  // namespace Http
}  // namespace Pistache

namespace orderflow {
namespace effects {
class EffectExecutor;
}  // namespace effects

class HttpServer : public http::ConnectionOwner {
 public:
  // `api` serves requests on the request pool; `ops_api` serves /health and /metrics on its
  // own connection.
  HttpServer(const Config& config, Api* api, Api* ops_api, Metrics* metrics);
  ~HttpServer() override;

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds PORT and starts serving on HTTP_THREADS reactor threads. Throws on bind failure.
  void Start();

  // Provider calls a route's reply carries are sent by `executor` before the answer is written
  // (no worker thread or pooled connection waits for them). Without one they are left to a
  // janitor that has one. Call before Start().
  void SetEffectExecutor(effects::EffectExecutor* executor) { executor_ = executor; }

  // The port actually bound (PORT=0 picks a free one).
  uint16_t port() const;

  // Graceful stop: refuses new connections and new requests at once, waits up to `timeout` for
  // the requests in flight to be answered, then stops the threads. Returns the number of
  // requests that were still unanswered when the wait ended (0 on a clean stop).
  int Stop(std::chrono::milliseconds timeout);

  // Creates the connection state of a new client socket (our duplicate `fd`); Pistache's
  // handler calls it at the first input.
  std::shared_ptr<http::Connection> NewConnection(int fd);

  void OnRequest(const std::shared_ptr<http::Connection>& connection, uint64_t sequence,
                 http::FramedRequest request) override;
  void OnFramingError(const std::shared_ptr<http::Connection>& connection, uint64_t sequence,
                      const http::FramingError& error, const http::FramedRequest& partial) override;

 private:
  struct Exchange;  // one request on its way to its answer (http_server.cc)

  void Finish(const std::shared_ptr<http::Connection>& connection, uint64_t sequence,
              const Exchange& exchange, Reply reply);
  void CloseListener();

  const Config config_;
  Api* const api_;
  Api* const ops_api_;
  Metrics* const metrics_;
  effects::EffectExecutor* executor_ = nullptr;
  std::vector<int> route_metrics_;  // metric id of each RouteTable() entry
  int not_allowed_metric_;
  int unmatched_metric_;
  int unframed_metric_;
  http::ConnectionShared shared_;
  http::ConnectionMonitor monitor_;
  http::WorkerPool workers_;
  http::WorkerPool ops_workers_;
  std::unique_ptr<Pistache::Http::Endpoint> endpoint_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> next_connection_id_{1};
  int listen_fd_ = -1;
};

}  // namespace orderflow

#endif  // ORDERFLOW_HTTP_SERVER_H_
