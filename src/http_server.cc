#include "http_server.h"

#include <dirent.h>
#include <netinet/in.h>
#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/router.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "log.h"
#include "request_id.h"
#include "url.h"

namespace orderflow {
namespace {

namespace Http = Pistache::Http;
namespace Rest = Pistache::Rest;

// Requests whose body is larger than this never reach a route: Pistache refuses them itself
// (with a plain-text 413). Between kMaxBodyBytes and this, our JSON 413 answers.
constexpr size_t kMaxRequestBytes = 8 * kMaxBodyBytes;

// A response header with a name known only at run time. Pistache writes only typed headers
// (not raw ones) into responses, so each of ours is one of these.
class NamedHeader : public Http::Header::Header {
 public:
  NamedHeader(std::string name, std::string value)
      : name_(std::move(name)), value_(std::move(value)) {}
  const char* name() const override { return name_.c_str(); }
  void write(std::ostream& stream) const override { stream << value_; }
#ifdef SAFE_HEADER_CAST
  uint64_t hash() const override { return Http::Header::detail::hash(name_.c_str()); }
#endif

 private:
  const std::string name_;
  const std::string value_;
};

const std::vector<std::pair<const char*, Http::Method>>& AllMethods() {
  static const std::vector<std::pair<const char*, Http::Method>> methods = {
      {"GET", Http::Method::Get},         {"HEAD", Http::Method::Head},
      {"POST", Http::Method::Post},       {"PUT", Http::Method::Put},
      {"PATCH", Http::Method::Patch},     {"DELETE", Http::Method::Delete},
      {"OPTIONS", Http::Method::Options}, {"TRACE", Http::Method::Trace},
      {"CONNECT", Http::Method::Connect},
  };
  return methods;
}

// A request header's value without the optional whitespace around it (RFC 9110 §5.5), which
// Pistache keeps at the end: "Idempotency-Key: k  " is the key "k".
std::optional<std::string> HeaderValue(const Http::Request& request, const char* name) {
  const auto raw = request.headers().tryGetRaw(name);
  if (!raw) return std::nullopt;
  std::string value = raw->value();
  value.erase(value.find_last_not_of(" \t") + 1);
  value.erase(0, value.find_first_not_of(" \t"));
  return value;
}

// The media type of a reply, parsed once per distinct content type rather than per request
// (callgrind showed MediaType::fromString at ~2.6% of a read's instructions).
const Http::Mime::MediaType& MediaTypeOf(const std::string& content_type) {
  static const Http::Mime::MediaType json = Http::Mime::MediaType::fromString(kJsonContentType);
  static const Http::Mime::MediaType prometheus =
      Http::Mime::MediaType::fromString(kPrometheusContentType);
  if (content_type == kJsonContentType) return json;
  if (content_type == kPrometheusContentType) return prometheus;
  thread_local Http::Mime::MediaType other;
  other = Http::Mime::MediaType::fromString(content_type);
  return other;
}

bool WantsClose(const Http::Request& request) {
  const auto connection = HeaderValue(request, "Connection");
  if (request.version() == Http::Version::Http10) {
    return !connection || strcasecmp(connection->c_str(), "keep-alive") != 0;
  }
  return connection && strcasecmp(connection->c_str(), "close") == 0;
}

// The size of the request's header fields, each counted as "name: value\r\n". Pistache keeps
// the first field of each name (repeats are dropped, so not counted: like the rest of the
// request they are bounded by kMaxRequestBytes) and parses cookies apart from the headers.
size_t HeaderBytes(const Http::Request& request) {
  constexpr size_t kFraming = 4;  // ": " and CRLF
  const auto& raw = request.headers().rawList();
  size_t bytes = 0;
  for (const auto& [name, field] : raw) bytes += name.size() + field.value().size() + kFraming;
  for (const auto& typed : request.headers().list()) {
    if (raw.count(typed->name()) != 0) continue;  // counted above
    std::ostringstream value;
    typed->write(value);
    bytes += std::strlen(typed->name()) + value.str().size() + kFraming;
  }
  for (const auto& cookie : request.cookies()) {
    bytes += cookie.name.size() + cookie.value.size() + 2;  // "name=value; "
  }
  return bytes;
}

// A path parameter, percent-decoded.
std::optional<std::string> PathParam(const Rest::Request& request, const char* name) {
  if (!request.hasParam(name)) return std::nullopt;
  return PercentDecode(request.param(name).as<std::string>());
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

HttpServer::HttpServer(const Config& config, Api* api, Metrics* metrics)
    : config_(config),
      api_(api),
      metrics_(metrics),
      endpoint_(std::make_unique<Http::Endpoint>(
          Pistache::Address(config.bind_address, Pistache::Port(config.port)))),
      router_(std::make_unique<Rest::Router>()) {
  auto options = Http::Endpoint::options()
                     .threads(config_.http_threads)
                     .flags(Pistache::Tcp::Options::ReuseAddr)
                     .backlog(1024)
                     .maxRequestSize(kMaxRequestBytes);
  endpoint_->init(options);
  AddRoutes();
  RegisterRoutes();
  endpoint_->setHandler(router_->handler());
}

HttpServer::~HttpServer() = default;

void HttpServer::AddRoutes() {
  Handle("GET", "/health", [this](const RequestContext& context, const Rest::Request&) {
    return api_->Health(context);
  });
  Handle("GET", "/metrics", [this](const RequestContext& context, const Rest::Request&) {
    return api_->Metrics(context);
  });
  Handle("POST", "/orders", [this](const RequestContext& context, const Rest::Request& request) {
    const std::optional<std::string> key = HeaderValue(request, "Idempotency-Key");
    return api_->CreateOrder(context, key ? &*key : nullptr, request.body());
  });
  Handle("GET", "/orders/:id", [this](const RequestContext& context, const Rest::Request& request) {
    const std::optional<std::string> id = PathParam(request, ":id");
    if (!id) return Reply::Error(400, "invalid_request", "order id is not valid percent-encoding");
    return api_->GetOrder(context, *id);
  });
  Handle("POST", "/api/orders/process",
         [this](const RequestContext& context, const Rest::Request& request) {
           return api_->ProcessOrder(context, request.body());
         });
  Handle("GET", "/api/orders/:orderId",
         [this](const RequestContext& context, const Rest::Request& request) {
           const std::optional<std::string> id = PathParam(request, ":orderId");
           if (!id)
             return Reply::Error(400, "invalid_request", "orderId is not valid percent-encoding");
           return api_->GetWorkflow(context, *id);
         });
  Handle("POST", "/api/orders/:orderId/cancel",
         [this](const RequestContext& context, const Rest::Request& request) {
           const std::optional<std::string> id = PathParam(request, ":orderId");
           if (!id)
             return Reply::Error(400, "invalid_request", "orderId is not valid percent-encoding");
           return api_->CancelOrder(context, *id, request.body());
         });
}

void HttpServer::Handle(const char* method, const std::string& path, Route route) {
  routes_[path][method] = std::move(route);
}

void HttpServer::RegisterRoutes() {
  // Pistache's own 404 and 405 answers are plain text; ours are JSON. Registering a 405 route
  // for every method a path lacks keeps Pistache's from ever being used.
  const int not_allowed_metric = metrics_->AddRoute("method_not_allowed");
  for (const auto& [path, by_method] : routes_) {
    std::string allow;
    for (const auto& [method, route] : by_method) allow += (allow.empty() ? "" : ", ") + method;
    const Route not_allowed = [allow](const RequestContext&, const Rest::Request&) {
      Reply reply =
          Reply::Error(405, "method_not_allowed", "method not allowed; allowed: " + allow);
      reply.headers.emplace_back("Allow", allow);
      return reply;
    };
    for (const auto& [name, method] : AllMethods()) {
      const auto found = by_method.find(name);
      const bool allowed = found != by_method.end();
      const Route& route = allowed ? found->second : not_allowed;
      const int metric =
          allowed ? metrics_->AddRoute(std::string(name) + " " + path) : not_allowed_metric;
      router_->addRoute(
          method, path,
          [this, metric, route](const Rest::Request request, Http::ResponseWriter response) {
            Serve(metric, route, request, std::move(response));
            return Rest::Route::Result::Ok;
          });
    }
  }
  const int unmatched_metric = metrics_->AddRoute("unmatched");
  const Route not_found = [](const RequestContext&, const Rest::Request&) {
    return Reply::Error(404, "not_found", "no such route");
  };
  router_->addNotFoundHandler([this, unmatched_metric, not_found](const Rest::Request request,
                                                                  Http::ResponseWriter response) {
    Serve(unmatched_metric, not_found, request, std::move(response));
    return Rest::Route::Result::Ok;
  });
}

void HttpServer::Serve(int metric, const Route& route, const Rest::Request& request,
                       Http::ResponseWriter response) {
  // Every request, whatever its route, goes through here: request id, size limits, the reply,
  // X-Request-Id, keep-alive, the log line, and the in-flight count for graceful stops.
  const auto started = std::chrono::steady_clock::now();
  ++in_flight_;
  const std::optional<std::string> given = HeaderValue(request, "X-Request-Id");
  const RequestContext context{RequestIdFor(given ? &*given : nullptr)};
  Reply reply;
  try {
    if (HeaderBytes(request) > kMaxHeaderBytes) {
      reply = Reply::Error(431, "headers_too_large", "request headers are larger than 16 KiB");
    } else if (request.body().size() > kMaxBodyBytes) {
      reply = Reply::Error(413, "payload_too_large", "request body is larger than 1 MiB");
    } else {
      reply = route(context, request);
    }
  } catch (const std::exception& e) {
    reply = Reply::Internal(context.request_id, e.what());
  }

  response.headers().add(std::make_shared<NamedHeader>("X-Request-Id", context.request_id));
  for (const auto& [name, value] : reply.headers) {
    response.headers().add(std::make_shared<NamedHeader>(name, value));
  }
  response.headers().remove<Http::Header::Connection>();
  response.headers().add<Http::Header::Connection>(
      WantsClose(request) ? Http::ConnectionControl::Close : Http::ConnectionControl::KeepAlive);
  response.send(static_cast<Http::Code>(reply.status), reply.body, MediaTypeOf(reply.content_type))
      .then([this](ssize_t) { --in_flight_; }, [this](std::exception_ptr&) { --in_flight_; });

  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  metrics_->ObserveRequest(metric, reply.status, ms / 1000.0);
  LogLine line(reply.status >= 500 ? LogLevel::kError : LogLevel::kInfo, "request");
  line.Str("requestId", context.request_id)
      .Str("method", Http::methodString(request.method()))
      .Str("path", request.resource())
      .Int("status", reply.status)
      .Num("ms", ms);
  if (!reply.log_detail.empty()) line.Str("detail", reply.log_detail);
}

void HttpServer::Start() {
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
  CloseListener();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const int unanswered = in_flight_.load();
  endpoint_->shutdown();
  return unanswered;
}

}  // namespace orderflow
