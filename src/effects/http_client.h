// HttpClient: outbound HTTP on libcurl's multi interface. One background thread carries every
// call (hundreds at once); Submit never blocks and the callback runs once on that thread. Used
// for the payment provider's calls (effects/executor.h). Never logs headers or bodies: they
// carry the provider's secret key and customers' payment data.
#ifndef ORDERFLOW_EFFECTS_HTTP_CLIENT_H_
#define ORDERFLOW_EFFECTS_HTTP_CLIENT_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace orderflow {
namespace effects {

struct OutboundRequest {
  std::string method;  // "GET" or "POST"
  std::string url;     // absolute
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // POST: sent byte for byte
  std::chrono::milliseconds timeout{10000};         // the whole call
  std::chrono::milliseconds connect_timeout{2000};  // the TCP connect
};

enum class TransportError {
  kNone,
  kConnect,  // refused, unreachable, no such host: the request was surely not sent
  kTimeout,  // no (whole) answer in time: it may have been sent and executed
  kReset,    // the connection broke: it may have been sent and executed
  kOther,
};

const char* TransportErrorName(TransportError error);  // none, connect, timeout, reset, other

struct OutboundResponse {
  TransportError error = TransportError::kNone;
  std::string error_text;  // libcurl's message when error != kNone (for logs)
  long status = 0;         // HTTP status when error == kNone
  std::string body;        // at most 1 MiB (beyond: kOther)
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::chrono::microseconds elapsed{0};

  std::string Header(const std::string& lowercase_name) const;  // "" when absent
};

class HttpClient {
 public:
  using Callback = std::function<void(OutboundResponse)>;

  explicit HttpClient(int max_connections_per_host = 256);
  ~HttpClient();  // Stop()

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  void Start();
  // Any thread: queues the call. `done` runs exactly once on the client's thread (keep it
  // short); when the client is stopping or was never started, with kOther "stopping".
  void Submit(OutboundRequest request, Callback done);
  // Aborts the calls in flight (their callbacks run with kOther "stopping") and joins.
  void Stop();

  size_t in_flight() const { return in_flight_.load(); }

 private:
  struct Call;
  void Run();

  const int max_connections_per_host_;
  void* multi_ = nullptr;  // CURLM*
  std::mutex mutex_;
  std::deque<std::pair<OutboundRequest, Callback>> queue_;  // guarded by mutex_
  bool started_ = false;                                    // guarded by mutex_
  bool stopping_ = false;                                   // guarded by mutex_
  std::atomic<size_t> in_flight_{0};
  std::thread thread_;
};

}  // namespace effects
}  // namespace orderflow

#endif  // ORDERFLOW_EFFECTS_HTTP_CLIENT_H_
