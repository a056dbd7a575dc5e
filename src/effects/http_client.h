// HttpClient: asynchronous outbound HTTP on libcurl's multi interface. One background thread
// carries every call (hundreds at once), so a caller never blocks and no call costs a thread.
// The payment-provider effects (charge, refund, lookups) go out through it.
//
//   HttpClient client;
//   client.Start();
//   client.Submit({"POST", url, headers, body}, [](OutboundResponse r) { /* hand off */ });
//
// Neither requests nor responses are ever logged here: their headers and bodies carry secrets.
#ifndef ORDERFLOW_EFFECTS_HTTP_CLIENT_H_
#define ORDERFLOW_EFFECTS_HTTP_CLIENT_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace orderflow {
namespace effects {

struct OutboundRequest {
  std::string method;                                        // "GET" or "POST"
  std::string url;                                           // absolute
  std::vector<std::pair<std::string, std::string>> headers;  // sent as given
  std::string body;                                 // sent byte-for-byte for POST; none for GET
  std::chrono::milliseconds timeout{10000};         // the whole call
  std::chrono::milliseconds connect_timeout{2000};  // the TCP (and TLS) connect
  // False: the call is refused (kOther, kRefusedPrivate) when the host's address, as resolved,
  // is not a public one (IsPublicAddress), so a name that resolves to an internal address
  // cannot reach it (SSRF). Checked on every socket before it connects and on a reused
  // connection's address before the request is sent.
  bool allow_private = true;
};

// The error text of a call refused because its address is not public (allow_private false).
constexpr const char* kRefusedPrivate = "refused: the address is private";

// False for the addresses a request from outside must not reach: unspecified (0.0.0.0/8, ::),
// loopback (127/8, ::1), private (10/8, 172.16/12, 192.168/16), CGNAT (100.64/10),
// link-local (169.254/16, fe80::/10), unique-local (fc00::/7) and site-local (fec0::/10),
// multicast, broadcast and reserved (224/4, 240/4, ff00::/8); IPv4 inside IPv6
// (::ffff:a.b.c.d, ::a.b.c.d, 64:ff9b::a.b.c.d, 2002:aabb:ccdd::) is judged as that IPv4.
// `ip` is numeric text (as libcurl gives it); false when it is not an address.
bool IsPublicAddress(const std::string& ip);

enum class TransportError {
  kNone,
  kConnect,  // refused, unreachable, DNS: the request was surely not sent
  kTimeout,  // the call's timeout (or connect timeout) passed: it may have been sent
  kReset,    // connection reset, empty reply, partial body: it may have been sent
  kOther,    // anything else, "response too large", "stopping"
};

// "none", "connect", "timeout", "reset", "other".
const char* TransportErrorName(TransportError e);

struct OutboundResponse {
  TransportError error = TransportError::kNone;
  std::string error_text;  // curl's message when error != kNone (for logs)
  long status = 0;         // HTTP status when error == kNone
  std::string body;        // at most kMaxResponseBody bytes; beyond is kOther "response too large"
  // The final response's headers (not those of a 1xx before it), names lowercased, in order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::microseconds elapsed{0};  // from Submit() to the callback

  // The first header named `lowercase_name`; "" if absent.
  std::string Header(const std::string& lowercase_name) const;
};

constexpr size_t kMaxResponseBody = 1 << 20;  // 1 MiB

class HttpClient {
 public:
  using Callback = std::function<void(OutboundResponse)>;

  // At most `max_connections_per_host` connections to one host at once (more calls wait inside
  // libcurl for one to free); idle connections are kept alive and reused.
  explicit HttpClient(int max_connections_per_host = 256);
  ~HttpClient();  // Stop()

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts the client's thread. Calls submitted before wait for it.
  void Start();

  // Any thread. Queues the call and returns at once; `done` runs exactly once, on the client's
  // thread (keep it short and do not throw: hand the work elsewhere). A method other than GET or
  // POST is answered kOther. Once Stop() has begun, `done` runs at once, on the caller's
  // thread, with kOther "stopping".
  void Submit(OutboundRequest request, Callback done);

  // Aborts the calls in flight or queued (their callbacks run with kOther "stopping"; on the
  // caller's thread if Start() never ran) and joins the thread. Idempotent; not to be called
  // from a callback. The client cannot be restarted.
  void Stop();

  // Calls submitted whose callbacks have not yet begun.
  size_t in_flight() const;

 private:
  struct Call;
  void Run();
  void Begin(std::unique_ptr<Call> call);
  void Finish(std::unique_ptr<Call> call, int curl_code);  // a CURLcode
  void Complete(std::unique_ptr<Call> call);               // runs the callback

  void* const multi_;  // CURLM*; curl_multi_wakeup() may be called from any thread
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Call>> queue_;  // guarded by mutex_
  bool started_ = false;                      // guarded by mutex_
  bool stopping_ = false;                     // guarded by mutex_
  std::atomic<size_t> in_flight_{0};
  std::unordered_map<Call*, std::unique_ptr<Call>> active_;  // the client's thread only
  std::thread thread_;
};

}  // namespace effects
}  // namespace orderflow

#endif  // ORDERFLOW_EFFECTS_HTTP_CLIENT_H_
