#include "effects/http_client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <stdexcept>

#include "log.h"

namespace orderflow {
namespace effects {

namespace {

std::once_flag g_curl_init;

void InitCurlOnce() {
  std::call_once(g_curl_init, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("curl_global_init failed");
    }
  });
}

CURLM* NewMulti(int max_connections_per_host) {
  InitCurlOnce();
  CURLM* const multi = curl_multi_init();
  if (multi == nullptr) throw std::runtime_error("curl_multi_init failed");
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                    static_cast<long>(std::max(1, max_connections_per_host)));
  return multi;
}

TransportError MapCurlCode(CURLcode code) {
  switch (code) {
    case CURLE_OK:
      return TransportError::kNone;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return TransportError::kConnect;
    case CURLE_OPERATION_TIMEDOUT:
      return TransportError::kTimeout;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
      return TransportError::kReset;
    default:
      return TransportError::kOther;
  }
}

bool IsPublicIpv4(const uint8_t a[4]) {
  if (a[0] == 0 || a[0] == 10 || a[0] == 127) return false;  // unspecified, private, loopback
  if (a[0] == 100 && (a[1] & 0xc0) == 64) return false;      // CGNAT 100.64/10
  if (a[0] == 169 && a[1] == 254) return false;              // link-local
  if (a[0] == 172 && (a[1] & 0xf0) == 16) return false;      // private 172.16/12
  if (a[0] == 192 && a[1] == 168) return false;              // private
  if (a[0] >= 224) return false;  // multicast 224/4, reserved 240/4, broadcast
  return true;
}

bool IsPublicIpv6(const uint8_t a[16]) {
  static const uint8_t kZero[12] = {};
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static const uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::equal(a, a + 12, kZero)) {
    // ::, ::1, and the deprecated IPv4-compatible ::a.b.c.d.
    return IsPublicIpv4(a + 12);
  }
  if (std::equal(a, a + 12, kMapped) || std::equal(a, a + 12, kNat64)) return IsPublicIpv4(a + 12);
  if (a[0] == 0x20 && a[1] == 0x02) return IsPublicIpv4(a + 2);  // 6to4 2002::/16
  if ((a[0] & 0xfe) == 0xfc) return false;                       // unique-local fc00::/7
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return false;       // link-local fe80::/10
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) return false;       // site-local fec0::/10
  if (a[0] == 0xff) return false;                                // multicast
  return true;
}

bool IsPublicSockaddr(const sockaddr* address) {
  if (address->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    return IsPublicIpv4(reinterpret_cast<const uint8_t*>(&in->sin_addr));
  }
  if (address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    return IsPublicIpv6(reinterpret_cast<const uint8_t*>(&in6->sin6_addr));
  }
  return false;  // a Unix socket or anything else is not a public address
}

std::string Trim(const char* begin, const char* end) {
  while (begin < end && (*begin == ' ' || *begin == '\t')) ++begin;
  while (end > begin && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n')) {
    --end;
  }
  return std::string(begin, end);
}

}  // namespace

bool IsPublicAddress(const std::string& ip) {
  uint8_t bytes[16];
  if (inet_pton(AF_INET, ip.c_str(), bytes) == 1) return IsPublicIpv4(bytes);
  if (inet_pton(AF_INET6, ip.c_str(), bytes) == 1) return IsPublicIpv6(bytes);
  return false;
}

const char* TransportErrorName(TransportError e) {
  switch (e) {
    case TransportError::kNone:
      return "none";
    case TransportError::kConnect:
      return "connect";
    case TransportError::kTimeout:
      return "timeout";
    case TransportError::kReset:
      return "reset";
    case TransportError::kOther:
      return "other";
  }
  return "other";
}

std::string OutboundResponse::Header(const std::string& lowercase_name) const {
  for (const auto& header : headers) {
    if (header.first == lowercase_name) return header.second;
  }
  return "";
}

// One call, from Submit() to its callback. Owned by the queue, then by active_.
struct HttpClient::Call {
  Call(OutboundRequest r, Callback d)
      : request(std::move(r)), done(std::move(d)), submitted(std::chrono::steady_clock::now()) {
    error_buffer[0] = '\0';
  }
  ~Call() {
    if (easy != nullptr) curl_easy_cleanup(easy);  // removed from the multi handle before
    if (header_list != nullptr) curl_slist_free_all(header_list);
  }

  const OutboundRequest request;  // stable: curl reads url and body from it in place
  Callback done;
  const std::chrono::steady_clock::time_point submitted;
  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  OutboundResponse response;
  bool too_large = false;
  bool refused_private = false;  // a socket or a reused connection had a non-public address
  char error_buffer[CURL_ERROR_SIZE];

  void Fail(TransportError error, std::string text) {
    response.error = error;
    response.error_text = std::move(text);
    response.status = 0;
    response.body.clear();
    response.headers.clear();
  }

  static size_t OnBody(char* data, size_t size, size_t count, void* user) {
    Call* const call = static_cast<Call*>(user);
    const size_t n = size * count;
    if (call->response.body.size() + n > kMaxResponseBody) {
      call->too_large = true;
      return 0;  // curl aborts the transfer with CURLE_WRITE_ERROR
    }
    call->response.body.append(data, n);
    return n;
  }

  // allow_private false: before each connect, with the address DNS gave. Refusing here means
  // nothing is connected, let alone sent.
  static curl_socket_t OnOpenSocket(void* user, curlsocktype purpose, curl_sockaddr* address) {
    Call* const call = static_cast<Call*>(user);
    if (purpose != CURLSOCKTYPE_IPCXN || !IsPublicSockaddr(&address->addr)) {
      call->refused_private = true;
      return CURL_SOCKET_BAD;  // curl ends the call with CURLE_COULDNT_CONNECT
    }
    return socket(address->family, address->socktype, address->protocol);
  }

  // allow_private false: before the request is sent, on a new or a reused connection (a kept
  // connection to the same host and port may have been opened by a call that allowed private
  // addresses, and opened no socket for this one).
  static int OnPrereq(void* user, char* primary_ip, char* /*local_ip*/, int /*primary_port*/,
                      int /*local_port*/) {
    Call* const call = static_cast<Call*>(user);
    if (IsPublicAddress(primary_ip)) return CURL_PREREQFUNC_OK;
    call->refused_private = true;
    return CURL_PREREQFUNC_ABORT;  // CURLE_ABORTED_BY_CALLBACK
  }

  // One header line at a time, the status lines of 1xx and final responses among them.
  static size_t OnHeader(char* data, size_t size, size_t count, void* user) {
    Call* const call = static_cast<Call*>(user);
    const size_t n = size * count;
    const char* const begin = data;
    const char* const end = data + n;
    auto& headers = call->response.headers;
    if (n >= 5 && std::equal(data, data + 5, "HTTP/")) {
      headers.clear();  // a new response begins: keep only the last one's headers
    } else if (n > 0 && (data[0] == ' ' || data[0] == '\t')) {
      if (!headers.empty()) {  // obsolete line folding: continues the previous value
        headers.back().second += ' ';
        headers.back().second += Trim(begin, end);
      }
    } else {
      const char* const colon = std::find(begin, end, ':');
      if (colon != end) {
        std::string name(begin, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        headers.emplace_back(std::move(name), Trim(colon + 1, end));
      }
    }
    return n;
  }
};

HttpClient::HttpClient(int max_connections_per_host) : multi_(NewMulti(max_connections_per_host)) {}

HttpClient::~HttpClient() {
  Stop();
  curl_multi_cleanup(static_cast<CURLM*>(multi_));
}

void HttpClient::Start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (started_ || stopping_) return;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void HttpClient::Submit(OutboundRequest request, Callback done) {
  auto call = std::make_unique<Call>(std::move(request), std::move(done));
  ++in_flight_;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopping_) {
      queue_.push_back(std::move(call));
    }
  }
  if (call != nullptr) {  // stopping: answered here and now
    call->Fail(TransportError::kOther, "stopping");
    Complete(std::move(call));
    return;
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

void HttpClient::Stop() {
  std::vector<std::unique_ptr<Call>> never_started;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    if (!started_) never_started.swap(queue_);
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
  if (thread_.joinable()) thread_.join();
  for (auto& call : never_started) {
    call->Fail(TransportError::kOther, "stopping");
    Complete(std::move(call));
  }
}

size_t HttpClient::in_flight() const { return in_flight_.load(); }

void HttpClient::Run() {
  CURLM* const multi = static_cast<CURLM*>(multi_);
  std::vector<std::unique_ptr<Call>> incoming;
  while (true) {
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      incoming.swap(queue_);
      stopping = stopping_;
    }
    if (stopping) break;
    for (auto& call : incoming) Begin(std::move(call));
    incoming.clear();

    int running = 0;
    curl_multi_perform(multi, &running);
    int left = 0;
    while (CURLMsg* const msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      const CURLcode code = msg->data.result;  // msg is invalid once the handle is removed
      CURL* const easy = msg->easy_handle;
      Call* call = nullptr;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, &call);
      curl_multi_remove_handle(multi, easy);
      auto it = active_.find(call);
      if (it == active_.end()) continue;  // cannot happen: every added handle is in active_
      std::unique_ptr<Call> owned = std::move(it->second);
      active_.erase(it);
      Finish(std::move(owned), code);
    }
    // Sleeps until a socket is ready, a curl timer is due, or Submit()/Stop() wakes it.
    curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
  }
  for (auto& call : incoming) {
    call->Fail(TransportError::kOther, "stopping");
    Complete(std::move(call));
  }
  for (auto& entry : active_) {
    curl_multi_remove_handle(multi, entry.second->easy);
    entry.second->Fail(TransportError::kOther, "stopping");
    Complete(std::move(entry.second));
  }
  active_.clear();
}

void HttpClient::Begin(std::unique_ptr<Call> call) {
  const OutboundRequest& request = call->request;
  const bool post = request.method == "POST";
  if (!post && request.method != "GET") {
    call->Fail(TransportError::kOther, "unsupported method");
    Complete(std::move(call));
    return;
  }
  CURL* const easy = curl_easy_init();
  if (easy == nullptr) {
    call->Fail(TransportError::kOther, "curl_easy_init failed");
    Complete(std::move(call));
    return;
  }
  call->easy = easy;

  for (const auto& header : request.headers) {
    // "Name:" would make curl drop the header; "Name;" sends it with an empty value.
    const std::string line =
        header.second.empty() ? header.first + ";" : header.first + ": " + header.second;
    curl_slist* const list = curl_slist_append(call->header_list, line.c_str());
    if (list == nullptr) {
      call->Fail(TransportError::kOther, "out of memory");
      Complete(std::move(call));
      return;
    }
    call->header_list = list;
  }
  if (post) {
    curl_slist* const list = curl_slist_append(call->header_list, "Expect:");  // no 100-continue
    if (list == nullptr) {
      call->Fail(TransportError::kOther, "out of memory");
      Complete(std::move(call));
      return;
    }
    call->header_list = list;
  }

  curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(easy, CURLOPT_PRIVATE, call.get());
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, call->error_buffer);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(request.connect_timeout.count()));
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, call->header_list);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Call::OnBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, call.get());
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &Call::OnHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, call.get());
  if (!request.allow_private) {
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &Call::OnOpenSocket);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, call.get());
    curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, &Call::OnPrereq);
    curl_easy_setopt(easy, CURLOPT_PREREQDATA, call.get());
  }
  if (post) {
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.data());
  } else {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  }

  const CURLMcode added = curl_multi_add_handle(static_cast<CURLM*>(multi_), easy);
  if (added != CURLM_OK) {
    call->Fail(TransportError::kOther, curl_multi_strerror(added));
    Complete(std::move(call));
    return;
  }
  Call* const key = call.get();
  active_.emplace(key, std::move(call));
}

void HttpClient::Finish(std::unique_ptr<Call> call, int curl_code) {
  const CURLcode code = static_cast<CURLcode>(curl_code);
  if (call->too_large) {
    call->Fail(TransportError::kOther, "response too large");
  } else if (call->refused_private &&
             (code == CURLE_COULDNT_CONNECT || code == CURLE_ABORTED_BY_CALLBACK)) {
    call->Fail(TransportError::kOther, kRefusedPrivate);
  } else if (code != CURLE_OK) {
    call->Fail(MapCurlCode(code), call->error_buffer[0] != '\0' ? std::string(call->error_buffer)
                                                                : curl_easy_strerror(code));
  } else {
    long status = 0;
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
    call->response.status = status;
  }
  Complete(std::move(call));
}

void HttpClient::Complete(std::unique_ptr<Call> call) {
  OutboundResponse response = std::move(call->response);
  response.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - call->submitted);
  Callback done = std::move(call->done);
  call.reset();  // frees the easy handle before user code runs
  --in_flight_;
  if (!done) return;
  try {
    done(std::move(response));
  } catch (const std::exception& e) {
    LogLine(LogLevel::kError, "http_client_callback_threw").Str("what", e.what());
  } catch (...) {
    LogLine(LogLevel::kError, "http_client_callback_threw");
  }
}

}  // namespace effects
}  // namespace orderflow
