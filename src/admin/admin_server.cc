#include "admin/admin_server.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/peer.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>

#include "admin/console_assets.h"
#include "http/response.h"
#include "log.h"
#include "request_id.h"
#include "url.h"
#include "utf8.h"

namespace orderflow {
namespace admin {

const char* const kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

namespace {

namespace Http = Pistache::Http;
namespace Tcp = Pistache::Tcp;

constexpr const char* kConnectionData = "orderflow.admin.connection";
constexpr size_t kLoggedPathBytes = 200;
constexpr size_t kMaxReasonBytes = 500;
constexpr int kDefaultListLimit = 50;
constexpr int kMaxListLimit = 500;
constexpr int kWorkers = 2;  // one per pooled connection (the pool has 2)
constexpr size_t kQueue = 64;
constexpr auto kPistacheTimeout = std::chrono::hours(24 * 365);

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return text;
}

Reply Unauthorized() {
  Reply reply =
      Reply::Error(401, "unauthorized", "this endpoint needs Authorization: Bearer <ADMIN_TOKEN>");
  reply.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"orderflow console\"");
  return reply;
}

Reply Page(int status, const Asset& asset) {
  Reply reply =
      Reply::Text(status, std::string(asset.text, asset.size), ContentTypeFor(asset.path));
  if (status == 401) {
    reply.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"orderflow console\"");
  }
  return reply;
}

// The first row's first field of a call that returns one jsonb value, as the answer.
Reply JsonCall(const SqlRunner& run, SqlCall call, const std::vector<SqlValue>& params,
               const std::string& request_id) {
  std::vector<SqlValue> row;
  const Status status = run(call, params, &row);
  if (!status.ok()) return Reply::FromStatus(status, request_id);
  if (row.empty() || !row[0]) return Reply::Error(404, "not_found", "no such order");
  return Reply::Json(200, std::move(*row[0]));
}

// Splits "/api/orders/<id>/cancel" into its segments ("api", "orders", "<id>", "cancel").
std::vector<std::string> Segments(const std::string& path) {
  std::vector<std::string> segments;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    segments.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return segments;
}

bool IsJson(const std::string* content_type) {
  if (content_type == nullptr) return false;
  const std::string value = Lower(content_type->substr(0, content_type->find(';')));
  const size_t begin = value.find_first_not_of(" \t");
  if (begin == std::string::npos) return false;
  const size_t end = value.find_last_not_of(" \t");
  return value.compare(begin, end - begin + 1, "application/json") == 0;
}

// GET /api/workflows?status=&step=&prefix=&after=&limit=
Reply ListWorkflows(const SqlRunner& run, const AdminRequest& request,
                    const std::string& request_id) {
  const auto pairs = ParseQuery(request.query);
  if (!pairs) {
    return Reply::Error(400, "invalid_request", "the query string is not valid percent-encoding");
  }
  SqlValue status, step, prefix, after;
  int limit = kDefaultListLimit;
  for (const auto& [name, value] : *pairs) {
    SqlValue* field = nullptr;
    if (name == "status") {
      field = &status;
    } else if (name == "step") {
      field = &step;
    } else if (name == "prefix") {
      field = &prefix;
    } else if (name == "after") {
      field = &after;
    } else if (name == "limit") {
      char* end = nullptr;
      errno = 0;
      const long parsed = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || errno != 0 || *end != '\0' || parsed < 1 || parsed > kMaxListLimit) {
        return Reply::Error(400, "invalid_request",
                            "limit must be an integer from 1 to " + std::to_string(kMaxListLimit));
      }
      limit = static_cast<int>(parsed);
      continue;
    } else {
      return Reply::Error(400, "invalid_request",
                          "unknown query parameter; known: status, step, prefix, after, limit");
    }
    if (!value.empty()) *field = value;
  }
  return JsonCall(run, SqlCall::kConsoleWorkflows,
                  {status, step, prefix, after, std::to_string(limit)}, request_id);
}

// POST /api/orders/<id>/<cancel|resume|retry>
Reply OrderAction(const SqlRunner& run, const AdminRequest& request, const std::string& order_id,
                  const std::string& verb, const std::string& request_id) {
  SqlValue reason;
  if (verb == "cancel") {
    rapidjson::Document body;
    body.Parse(request.body.data(), request.body.size());
    if (body.HasParseError() || !body.IsObject() || !body.HasMember("reason") ||
        !body["reason"].IsString()) {
      return Reply::Error(400, "invalid_request",
                          "the body must be a JSON object with a \"reason\" string");
    }
    std::string text(body["reason"].GetString(), body["reason"].GetStringLength());
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
      return Reply::Error(400, "invalid_request", "say why the order is cancelled (reason)");
    }
    if (text.size() > kMaxReasonBytes || text.find('\0') != std::string::npos ||
        WellFormedUtf8(text) != text) {
      return Reply::Error(400, "invalid_request",
                          "reason must be UTF-8 text of at most 500 bytes, without NUL");
    }
    reason = std::move(text);
  }
  const char* const action = verb == "cancel"   ? "cancel"
                             : verb == "resume" ? "resume_now"
                                                : "retry";
  return JsonCall(run, SqlCall::kConsoleAction,
                  {order_id, std::string(action), reason, "console " + request.remote}, request_id);
}

Reply Route(const AdminSettings& settings, const SqlRunner& run, const AdminRequest& request,
            const std::string& request_id) {
  if (!HostAllowed(request.host, settings.port, settings.hosts)) {
    return Reply::Error(421, "misdirected_request",
                        "this console answers only to its own host names (ADMIN_HOSTS)");
  }
  const bool authorized = TokenMatches(request.authorization, settings.token);
  const bool read = request.method == "GET" || request.method == "HEAD";
  const std::vector<std::string> segments = Segments(request.path);

  if (segments.empty() || segments[0] != "api") {
    const Asset* const asset = FindAsset(request.path);
    if (asset == nullptr) return Reply::Error(404, "not_found", "no such page");
    if (!read) {
      Reply reply =
          Reply::Error(405, "method_not_allowed", "method not allowed; allowed: GET, HEAD");
      reply.headers.emplace_back("Allow", "GET, HEAD");
      return reply;
    }
    // The page is its own login form: 401 tells a script (and a person with curl) that the
    // token is missing, while the browser still shows the page, which asks for it.
    const bool is_page = request.path == "/" || request.path == "/index.html";
    return Page(is_page && !authorized ? 401 : 200, *asset);
  }

  if (!authorized) return Unauthorized();

  auto method_not_allowed = [](const char* allow) {
    Reply reply = Reply::Error(405, "method_not_allowed",
                               std::string("method not allowed; allowed: ") + allow);
    reply.headers.emplace_back("Allow", allow);
    return reply;
  };
  const size_t n = segments.size();
  const bool post = request.method == "POST";
  if (post && !IsJson(request.content_type)) {
    return Reply::Error(415, "unsupported_media_type", "send Content-Type: application/json");
  }

  if (n == 2 && segments[1] == "overview") {
    if (!read) return method_not_allowed("GET, HEAD");
    return JsonCall(run, SqlCall::kConsoleOverview, {}, request_id);
  }
  if (n == 2 && segments[1] == "workflows") {
    if (!read) return method_not_allowed("GET, HEAD");
    return ListWorkflows(run, request, request_id);
  }
  if ((n == 3 || n == 4) && segments[1] == "orders") {
    const std::optional<std::string> order_id = PercentDecode(segments[2]);
    if (!order_id || order_id->empty()) {
      return Reply::Error(400, "invalid_request", "the order id is not valid percent-encoding");
    }
    if (n == 3) {
      if (!read) return method_not_allowed("GET, HEAD");
      return JsonCall(run, SqlCall::kConsoleOrder, {*order_id}, request_id);
    }
    const std::string& verb = segments[3];
    if (verb == "cancel" || verb == "resume" || verb == "retry") {
      if (!post) return method_not_allowed("POST");
      return OrderAction(run, request, *order_id, verb, request_id);
    }
  }
  if (n == 4 && segments[1] == "dead-letters" && segments[3] == "redrive") {
    if (!post) return method_not_allowed("POST");
    const std::string& id = segments[2];
    if (id.empty() || id.size() > 18 || id.find_first_not_of("0123456789") != std::string::npos) {
      return Reply::Error(400, "invalid_request", "a dead letter's id is a positive integer");
    }
    return JsonCall(run, SqlCall::kConsoleRedrive, {id, "console " + request.remote}, request_id);
  }
  return Reply::Error(404, "not_found", "no such endpoint");
}

// Takes over Pistache's framing as the API's edge does (http_server.cc says why).
class AdminHandler : public Http::Handler {
 public:
  HTTP_PROTOTYPE(AdminHandler)

  explicit AdminHandler(AdminServer* server) : server_(server) {}

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
        LogLine(LogLevel::kError, "admin_connection_refused").Str("error", std::strerror(errno));
        ::shutdown(peer->fd(), SHUT_RDWR);
        return;
      }
      connection = server_->NewConnection(fd, peer->address().host());
      peer->putData(kConnectionData, connection);
    }
    connection->OnInput(buffer, length);
  }

  AdminServer* server_;
};

}  // namespace

bool TokenMatches(const std::string* authorization, const std::string& token) {
  if (authorization == nullptr || token.empty()) return false;
  const std::string& value = *authorization;
  if (value.size() < 7 || Lower(value.substr(0, 7)) != "bearer ") return false;
  const size_t start = value.find_first_not_of(' ', 7);
  const std::string given = start == std::string::npos ? "" : value.substr(start);
  unsigned char given_digest[SHA256_DIGEST_LENGTH];
  unsigned char token_digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(given.data()), given.size(), given_digest);
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), token_digest);
  return CRYPTO_memcmp(given_digest, token_digest, SHA256_DIGEST_LENGTH) == 0;
}

bool HostAllowed(const std::string* host, uint16_t port, const std::vector<std::string>& hosts) {
  if (host == nullptr || host->empty()) return false;
  const std::string name = Lower(*host);
  const std::string suffix = ":" + std::to_string(port);
  for (const char* loopback : {"127.0.0.1", "localhost", "[::1]"}) {
    if (name == loopback + suffix) return true;
  }
  for (const std::string& allowed : hosts) {
    if (name == allowed || name == allowed + suffix) return true;
  }
  return false;
}

void AddSecurityHeaders(Reply* reply) {
  reply->headers.emplace_back("Content-Security-Policy", kContentSecurityPolicy);
  reply->headers.emplace_back("X-Frame-Options", "DENY");
  reply->headers.emplace_back("X-Content-Type-Options", "nosniff");
  reply->headers.emplace_back("Referrer-Policy", "no-referrer");
  reply->headers.emplace_back("Cache-Control", "no-store");
  reply->headers.emplace_back("Cross-Origin-Resource-Policy", "same-origin");
}

Reply HandleAdminRequest(const AdminSettings& settings, const SqlRunner& run,
                         const AdminRequest& request, const std::string& request_id) {
  Reply reply = Route(settings, run, request, request_id);
  AddSecurityHeaders(&reply);
  return reply;
}

AdminServer::AdminServer(const Config& config, DbPool* pool)
    : config_(config),
      pool_(pool),
      workers_("admin", kWorkers, kQueue, std::chrono::milliseconds(config.db_acquire_timeout_ms)),
      endpoint_(std::make_unique<Http::Endpoint>(
          Pistache::Address(config.admin_bind, Pistache::Port(config.admin_port)))) {
  settings_.token = config.admin_token;
  settings_.hosts = config.admin_hosts;
  shared_.monitor = &monitor_;
  auto options = Http::Endpoint::options()
                     .threads(1)
                     .flags(Tcp::Options::ReuseAddr)
                     .maxRequestSize(Pistache::Const::DefaultMaxRequestSize)
                     .headerTimeout(kPistacheTimeout)
                     .bodyTimeout(kPistacheTimeout)
                     .keepaliveTimeout(kPistacheTimeout);
  endpoint_->init(options);
  endpoint_->setHandler(Http::make_handler<AdminHandler>(this));
}

AdminServer::~AdminServer() = default;

std::shared_ptr<http::Connection> AdminServer::NewConnection(int fd, std::string remote) {
  auto connection =
      std::make_shared<http::Connection>(fd, next_connection_id_.fetch_add(1), &shared_, this);
  connection->set_remote(std::move(remote));
  monitor_.Register(connection);
  return connection;
}

void AdminServer::OnRequest(const std::shared_ptr<http::Connection>& connection, uint64_t sequence,
                            http::FramedRequest request) {
  const auto started = std::chrono::steady_clock::now();
  const std::string request_id = RequestIdFor(request.Header("x-request-id"));
  std::string path = request.Path();
  if (path.size() > kLoggedPathBytes) path = path.substr(0, kLoggedPathBytes) + "…";
  if (stopping_.load()) {
    Reply reply = Reply::Error(503, "shutting_down", "the server is stopping");
    AddSecurityHeaders(&reply);
    Finish(connection, sequence, request.method, path, request.method == "HEAD", started,
           request_id, std::move(reply));
    return;
  }
  auto held = std::make_shared<http::FramedRequest>(std::move(request));
  const bool queued = workers_.TrySubmit([this, connection, sequence, held, started, request_id,
                                          path](std::chrono::steady_clock::duration) {
    AdminRequest admin;
    admin.method = held->method;
    admin.path = held->Path();
    admin.query = held->Query();
    admin.body = held->body;
    admin.host = held->Header("host");
    admin.authorization = held->Header("authorization");
    admin.content_type = held->Header("content-type");
    admin.remote = connection->remote();
    AdminSettings settings = settings_;
    settings.port = bound_port_.load();
    const SqlRunner run = [this](SqlCall call, const std::vector<SqlValue>& params,
                                 std::vector<SqlValue>* row) {
      return pool_->Run(call, params, row);
    };
    Finish(connection, sequence, held->method, path, held->method == "HEAD", started, request_id,
           HandleAdminRequest(settings, run, admin, request_id));
  });
  if (!queued) {
    Reply reply = Reply::Error(503, "overloaded", "the console has too many requests waiting");
    AddSecurityHeaders(&reply);
    Finish(connection, sequence, held->method, path, held->method == "HEAD", started, request_id,
           std::move(reply));
  }
}

void AdminServer::OnFramingError(const std::shared_ptr<http::Connection>& connection,
                                 uint64_t sequence, const http::FramingError& error,
                                 const http::FramedRequest& partial) {
  Reply reply = Reply::Error(error.status, error.code.c_str(), error.message);
  AddSecurityHeaders(&reply);
  Finish(connection, sequence, partial.method, partial.Path(), false,
         std::chrono::steady_clock::now(), RequestIdFor(nullptr), std::move(reply));
}

void AdminServer::Finish(const std::shared_ptr<http::Connection>& connection, uint64_t sequence,
                         const std::string& method, const std::string& path, bool head,
                         std::chrono::steady_clock::time_point started,
                         const std::string& request_id, Reply reply) {
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  {
    // Never the token, the body or the query: the path and who asked.
    LogLine line(reply.status >= 500 ? LogLevel::kError : LogLevel::kInfo, "admin_request");
    line.Str("requestId", request_id)
        .Str("method", method)
        .Str("path", path)
        .Int("status", reply.status)
        .Num("ms", ms)
        .Str("remote", connection->remote());
    if (!reply.log_detail.empty()) line.Str("detail", reply.log_detail);
  }
  http::WireResponse wire;
  wire.status = reply.status;
  wire.content_type = reply.content_type;
  wire.body = std::move(reply.body);
  wire.head = head;
  wire.keep_alive = !stopping_.load();
  wire.headers.emplace_back("X-Request-Id", request_id);
  for (auto& header : reply.headers) wire.headers.push_back(std::move(header));
  connection->Answer(sequence, http::Serialize(wire), !wire.keep_alive);
}

void AdminServer::Start() {
  monitor_.Start();
  endpoint_->serveThreaded();
  bound_port_ = static_cast<uint16_t>(endpoint_->getPort());
}

uint16_t AdminServer::port() const { return bound_port_.load(); }

void AdminServer::Stop(std::chrono::milliseconds timeout) {
  stopping_ = true;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (shared_.in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (shared_.in_flight.load() == 0) workers_.Stop();
  endpoint_->shutdown();
  monitor_.Stop();
}

}  // namespace admin
}  // namespace orderflow
