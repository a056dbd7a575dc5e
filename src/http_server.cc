#include "http_server.h"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/peer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>
#include <utility>

#include "effects/executor.h"
#include "http/response.h"
#include "http/routes.h"
#include "log.h"
#include "request_id.h"
#include "url.h"

namespace orderflow {
namespace {

namespace Http = Pistache::Http;
namespace Tcp = Pistache::Tcp;

constexpr const char* kConnectionData = "orderflow.connection";

// Longest excerpt of a request path in the log.
constexpr size_t kLoggedPathBytes = 200;

// Queued jobs per worker before the request pool refuses work with a 503. A queued job also
// expires after DB_ACQUIRE_TIMEOUT_MS, so the bound is on memory and time both; 64 lets a burst
// of a few hundred requests (nginx forwards clients' aborted requests too) wait instead of 503.
constexpr size_t kQueuePerWorker = 64;
constexpr size_t kOpsQueue = 64;

// Pistache's own timers would close a connection behind our back (without telling the handler),
// so they are set out of reach; the connection monitor enforces ours (ConnectionTimeouts).
constexpr auto kPistacheTimeout = std::chrono::hours(24 * 365);

// Takes over Pistache's framing: Http::Handler::onInput (one request per read, eager header
// parsing, exceptions answered as 500 with e.what()) is replaced by our Connection. Pistache's
// base onConnection still runs (its idle-peer check needs the parser it creates).
class EdgeHandler : public Http::Handler {
 public:
  HTTP_PROTOTYPE(EdgeHandler)

  explicit EdgeHandler(HttpServer* server) : server_(server) {}

  // Never called: requests are framed by onInput below, never by Pistache's parser.
  void onRequest(const Http::Request&, Http::ResponseWriter) override {}

  void onDisconnection(const std::shared_ptr<Tcp::Peer>& peer) override {
    const auto connection =
        std::static_pointer_cast<http::Connection>(peer->tryGetData(kConnectionData));
    if (connection) connection->OnPeerClosed();
  }

 private:
  void onInput(const char* buffer, size_t length, const std::shared_ptr<Tcp::Peer>& peer) override {
    auto connection = std::static_pointer_cast<http::Connection>(peer->tryGetData(kConnectionData));
    if (!connection) {
      const int fd = ::fcntl(peer->fd(), F_DUPFD_CLOEXEC, 0);
      if (fd < 0) {
        // No descriptor of our own to answer on: end the connection (the transport sees it).
        LogLine(LogLevel::kError, "connection_refused").Str("error", std::strerror(errno));
        ::shutdown(peer->fd(), SHUT_RDWR);
        return;
      }
      connection = server_->NewConnection(fd);
      peer->putData(kConnectionData, connection);
    }
    connection->OnInput(buffer, length);
  }

  HttpServer* server_;
};

// A request header's value (first field of that name), or null.
const std::string* HeaderOf(const http::FramedRequest& request, const char* lower_name) {
  return request.Header(lower_name);
}

std::string LoggedPath(const std::string& target) {
  const std::string path = target.substr(0, target.find('?'));
  if (path.size() <= kLoggedPathBytes) return path;
  return path.substr(0, kLoggedPathBytes) + "…(" + std::to_string(path.size()) + " bytes)";
}

Reply Overloaded(const char* code, const std::string& message) {
  Reply reply = Reply::Error(503, code, message);
  reply.headers.emplace_back("Retry-After", kRetryAfterSeconds);
  return reply;
}

// The socket listening on `port` in this process, found among our open descriptors.
int FindListeningSocket(uint16_t port) {
  DIR* const dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int found = -1;
  while (const dirent* entry = readdir(dir)) {
    const int fd = std::atoi(entry->d_name);
    if (fd <= 2) continue;
    int listening = 0;
    socklen_t length = sizeof(listening);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) != 0 || !listening) continue;
    sockaddr_storage address{};
    socklen_t address_length = sizeof(address);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &address_length) != 0) continue;
    uint16_t bound = 0;
    if (address.ss_family == AF_INET) {
      bound = ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
    } else if (address.ss_family == AF_INET6) {
      bound = ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
    }
    if (bound == port) {
      found = fd;
      break;
    }
  }
  closedir(dir);
  return found;
}

}  // namespace

// What the answer to one request needs besides the Reply.
struct HttpServer::Exchange {
  RequestContext context;
  std::string method;
  std::string path;  // excerpt, for the log
  bool head = false;
  bool keep_alive = true;
  int metric = -1;
  std::chrono::steady_clock::time_point started;
  std::string order_id;         // for the log: the order the request is about, "" if none
  std::string idempotency_key;  // for the log: POST /orders's key, "" if none
};

HttpServer::HttpServer(const Config& config, Api* api, Api* ops_api, Metrics* metrics)
    : config_(config),
      api_(api),
      ops_api_(ops_api),
      metrics_(metrics),
      workers_("request", config.db_pool_size,
               kQueuePerWorker * static_cast<size_t>(config.db_pool_size),
               std::chrono::milliseconds(config.db_acquire_timeout_ms)),
      ops_workers_("ops", 1, kOpsQueue, std::chrono::milliseconds(config.db_acquire_timeout_ms)),
      endpoint_(std::make_unique<Http::Endpoint>(
          Pistache::Address(config.bind_address, Pistache::Port(config.port)))) {
  for (const http::RouteDef& route : http::RouteTable()) {
    route_metrics_.push_back(metrics_->AddRoute(std::string(route.method) + " " + route.pattern));
  }
  not_allowed_metric_ = metrics_->AddRoute("method_not_allowed");
  unmatched_metric_ = metrics_->AddRoute("unmatched");
  unframed_metric_ = metrics_->AddRoute("unframed");
  shared_.monitor = &monitor_;

  auto options = Http::Endpoint::options()
                     .threads(config_.http_threads)
                     .flags(Tcp::Options::ReuseAddr)
                     .backlog(1024)
                     .maxRequestSize(Pistache::Const::DefaultMaxRequestSize)
                     .headerTimeout(kPistacheTimeout)
                     .bodyTimeout(kPistacheTimeout)
                     .keepaliveTimeout(kPistacheTimeout);
  endpoint_->init(options);
  endpoint_->setHandler(Http::make_handler<EdgeHandler>(this));
}

HttpServer::~HttpServer() = default;

std::shared_ptr<http::Connection> HttpServer::NewConnection(int fd) {
  auto connection =
      std::make_shared<http::Connection>(fd, next_connection_id_.fetch_add(1), &shared_, this);
  monitor_.Register(connection);
  return connection;
}

void HttpServer::OnRequest(const std::shared_ptr<http::Connection>& connection, uint64_t sequence,
                           http::FramedRequest request) {
  auto exchange = std::make_shared<Exchange>();
  exchange->started = std::chrono::steady_clock::now();
  exchange->context = RequestContext{RequestIdFor(HeaderOf(request, "x-request-id"))};
  exchange->method = request.method;
  exchange->path = LoggedPath(request.target);
  exchange->head = request.method == "HEAD";
  exchange->keep_alive = request.keep_alive;

  if (stopping_.load()) {
    exchange->keep_alive = false;
    exchange->metric = unmatched_metric_;
    Finish(connection, sequence, *exchange,
           Overloaded("shutting_down", "the server is stopping, retry on another connection"));
    return;
  }
  const http::RouteMatch match = http::MatchRoute(request.method, request.Path());
  if (match.route == nullptr) {
    if (match.path_known) {
      exchange->metric = not_allowed_metric_;
      Reply reply =
          Reply::Error(405, "method_not_allowed", "method not allowed; allowed: " + match.allow);
      reply.headers.emplace_back("Allow", match.allow);
      Finish(connection, sequence, *exchange, std::move(reply));
    } else {
      exchange->metric = unmatched_metric_;
      Finish(connection, sequence, *exchange, Reply::Error(404, "not_found", "no such route"));
    }
    return;
  }
  const http::RouteDef& route = *match.route;
  exchange->metric = route_metrics_[static_cast<size_t>(&route - http::RouteTable().data())];

  auto input = std::make_shared<http::RouteInput>();
  for (const std::string& raw : match.params) {
    std::optional<std::string> decoded = PercentDecode(raw);
    if (!decoded) {
      Finish(connection, sequence, *exchange,
             Reply::Error(400, "invalid_request", "the order id is not valid percent-encoding"));
      return;
    }
    input->params.push_back(std::move(*decoded));
  }
  // The strings the input points to live in `request`, which moves into the job with it.
  auto held = std::make_shared<http::FramedRequest>(std::move(request));
  input->idempotency_key = HeaderOf(*held, "idempotency-key");
  input->content_type = HeaderOf(*held, "content-type");
  input->has_body = held->has_body;
  input->query = held->Query();
  input->body = std::move(held->body);
  exchange->order_id = http::LoggedOrderId(route, *input);
  exchange->idempotency_key = http::LoggedKey(route, *input);

  const bool ops = route.lane == http::Lane::kOps;
  Api* const api = ops ? ops_api_ : api_;
  const auto wait_limit = std::chrono::milliseconds(config_.db_acquire_timeout_ms);
  const bool queued =
      (ops ? ops_workers_ : workers_)
          .TrySubmit([this, connection, sequence, exchange, input, held, api, &route,
                      wait_limit](std::chrono::steady_clock::duration waited) {
            Reply reply =
                waited > wait_limit
                    ? Overloaded("unavailable", "no database connection became free in time")
                    : http::RunRoute(*api, route, exchange->context, *input);
            if (!reply.effect.empty() && executor_ != nullptr) {
              // The workflow waits on a provider call leased to us: send it, report it, then
              // answer with the state after the report. This thread goes back to its queue.
              executor_->RunInline(exchange->context, std::move(reply),
                                   [this, connection, sequence, exchange](Reply after) {
                                     Finish(connection, sequence, *exchange, std::move(after));
                                   });
              return;
            }
            reply.effect.clear();
            Finish(connection, sequence, *exchange, std::move(reply));
          });
  if (!queued) {
    Finish(connection, sequence, *exchange,
           Overloaded("overloaded", "the server has too many requests waiting, retry later"));
  }
}

void HttpServer::OnFramingError(const std::shared_ptr<http::Connection>& connection,
                                uint64_t sequence, const http::FramingError& error,
                                const http::FramedRequest& partial) {
  Exchange exchange;
  exchange.started = std::chrono::steady_clock::now();
  exchange.context = RequestContext{RequestIdFor(HeaderOf(partial, "x-request-id"))};
  exchange.method = partial.method;
  exchange.path = LoggedPath(partial.target);
  exchange.keep_alive = false;  // the connection cannot be framed any further
  exchange.metric = unframed_metric_;
  Finish(connection, sequence, exchange,
         Reply::Error(error.status, error.code.c_str(), error.message));
}

void HttpServer::Finish(const std::shared_ptr<http::Connection>& connection, uint64_t sequence,
                        const Exchange& exchange, Reply reply) {
  // The log line and the metric come first: whoever reads the answer can find both.
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - exchange.started)
          .count();
  metrics_->ObserveRequest(exchange.metric, reply.status, ms / 1000.0);
  {
    LogLine line(reply.status >= 500 ? LogLevel::kError : LogLevel::kInfo, "request");
    line.Str("requestId", exchange.context.request_id)
        .Str("method", exchange.method)
        .Str("path", exchange.path)
        .Int("status", reply.status)
        .Num("ms", ms);
    if (!exchange.order_id.empty()) line.Str("orderId", exchange.order_id);
    if (!exchange.idempotency_key.empty()) line.Str("idempotencyKey", exchange.idempotency_key);
    if (!reply.log_detail.empty()) line.Str("detail", reply.log_detail);
  }

  http::WireResponse wire;
  wire.status = reply.status;
  wire.content_type = reply.content_type;
  wire.body = std::move(reply.body);
  wire.head = exchange.head;
  wire.keep_alive = exchange.keep_alive && !stopping_.load();
  wire.headers.emplace_back("X-Request-Id", exchange.context.request_id);
  for (auto& header : reply.headers) wire.headers.push_back(std::move(header));
  connection->Answer(sequence, http::Serialize(wire), !wire.keep_alive);
}

void HttpServer::Start() {
  monitor_.Start();
  endpoint_->serveThreaded();
  listen_fd_ = FindListeningSocket(port());
}

uint16_t HttpServer::port() const { return static_cast<uint16_t>(endpoint_->getPort()); }

void HttpServer::CloseListener() {
  // Pistache has no "stop accepting" call. Replacing the listening socket by a fresh unbound
  // one closes it (new connections are refused by the kernel) while the descriptor number stays
  // valid for Pistache to close later.
  if (listen_fd_ < 0) return;
  const int inert = ::socket(AF_INET, SOCK_STREAM, 0);
  if (inert >= 0) {
    ::dup2(inert, listen_fd_);
    ::close(inert);
  }
  listen_fd_ = -1;
}

int HttpServer::Stop(std::chrono::milliseconds timeout) {
  // Refuse new work: no new connections, and requests framed from now on get a 503.
  CloseListener();
  stopping_ = true;
  // Drain while the reactors still run: workers answer what is queued and running.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (shared_.in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const int unanswered = shared_.in_flight.load();
  if (unanswered == 0) {
    workers_.Stop();
    ops_workers_.Stop();
  }
  endpoint_->shutdown();
  monitor_.Stop();
  return unanswered;
}

}  // namespace orderflow
