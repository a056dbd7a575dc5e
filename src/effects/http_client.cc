#include "effects/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>

namespace orderflow {
namespace effects {
namespace {

constexpr size_t kMaxBody = 1 << 20;

std::once_flag curl_init;

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

TransportError Classify(CURLcode code) {
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

}  // namespace

const char* TransportErrorName(TransportError error) {
  switch (error) {
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
  return std::string();
}

struct HttpClient::Call {
  OutboundRequest request;
  Callback done;
  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  OutboundResponse response;
  bool too_large = false;
  std::chrono::steady_clock::time_point started;

  ~Call() {
    if (header_list != nullptr) curl_slist_free_all(header_list);
    if (easy != nullptr) curl_easy_cleanup(easy);
  }

  static size_t OnBody(char* data, size_t size, size_t count, void* self) {
    Call* const call = static_cast<Call*>(self);
    const size_t bytes = size * count;
    if (call->response.body.size() + bytes > kMaxBody) {
      call->too_large = true;
      return 0;  // aborts the transfer
    }
    call->response.body.append(data, bytes);
    return bytes;
  }

  static size_t OnHeader(char* data, size_t size, size_t count, void* self) {
    Call* const call = static_cast<Call*>(self);
    const size_t bytes = size * count;
    std::string line(data, bytes);
    if (line.rfind("HTTP/", 0) == 0) {
      call->response.headers.clear();  // a new response (after 100 Continue): keep the last
      return bytes;
    }
    const size_t colon = line.find(':');
    if (colon == std::string::npos) return bytes;
    std::string value = line.substr(colon + 1);
    const size_t first = value.find_first_not_of(" \t");
    const size_t last = value.find_last_not_of(" \t\r\n");
    value = first == std::string::npos ? std::string() : value.substr(first, last - first + 1);
    call->response.headers.emplace_back(Lower(line.substr(0, colon)), std::move(value));
    return bytes;
  }
};

HttpClient::HttpClient(int max_connections_per_host)
    : max_connections_per_host_(max_connections_per_host) {
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  multi_ = curl_multi_init();
  curl_multi_setopt(static_cast<CURLM*>(multi_), CURLMOPT_MAX_HOST_CONNECTIONS,
                    static_cast<long>(max_connections_per_host_));
}

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
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (started_ && !stopping_) {
      ++in_flight_;
      queue_.emplace_back(std::move(request), std::move(done));
      curl_multi_wakeup(static_cast<CURLM*>(multi_));
      return;
    }
  }
  OutboundResponse refused;
  refused.error = TransportError::kOther;
  refused.error_text = "stopping";
  done(std::move(refused));
}

void HttpClient::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    if (started_) curl_multi_wakeup(static_cast<CURLM*>(multi_));
  }
  if (thread_.joinable()) thread_.join();
}

void HttpClient::Run() {
  CURLM* const multi = static_cast<CURLM*>(multi_);
  std::vector<std::unique_ptr<Call>> calls;
  auto finish = [&](Call* call, OutboundResponse response) {
    curl_multi_remove_handle(multi, call->easy);
    response.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - call->started);
    Callback done = std::move(call->done);
    calls.erase(std::find_if(calls.begin(), calls.end(),
                             [call](const std::unique_ptr<Call>& c) { return c.get() == call; }));
    --in_flight_;
    done(std::move(response));
  };
  while (true) {
    std::deque<std::pair<OutboundRequest, Callback>> fresh;
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fresh.swap(queue_);
      stopping = stopping_;
    }
    for (auto& entry : fresh) {
      auto call = std::make_unique<Call>();
      call->request = std::move(entry.first);
      call->done = std::move(entry.second);
      call->started = std::chrono::steady_clock::now();
      CURL* const easy = curl_easy_init();
      call->easy = easy;
      curl_easy_setopt(easy, CURLOPT_URL, call->request.url.c_str());
      curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(easy, CURLOPT_PRIVATE, call.get());
      curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(call->request.timeout.count()));
      curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                       static_cast<long>(call->request.connect_timeout.count()));
      curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
      curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
      curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
      curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Call::OnBody);
      curl_easy_setopt(easy, CURLOPT_WRITEDATA, call.get());
      curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &Call::OnHeader);
      curl_easy_setopt(easy, CURLOPT_HEADERDATA, call.get());
      for (const auto& header : call->request.headers) {
        call->header_list =
            curl_slist_append(call->header_list, (header.first + ": " + header.second).c_str());
      }
      if (call->request.method == "POST") {
        call->header_list = curl_slist_append(call->header_list, "Expect:");
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, call->request.body.data());
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(call->request.body.size()));
      } else {
        curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
      }
      curl_easy_setopt(easy, CURLOPT_HTTPHEADER, call->header_list);
      curl_multi_add_handle(multi, easy);
      calls.push_back(std::move(call));
    }
    if (stopping) {
      while (!calls.empty()) {
        OutboundResponse aborted;
        aborted.error = TransportError::kOther;
        aborted.error_text = "stopping";
        finish(calls.front().get(), std::move(aborted));
      }
      std::deque<std::pair<OutboundRequest, Callback>> left;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        left.swap(queue_);
      }
      for (auto& entry : left) {
        OutboundResponse aborted;
        aborted.error = TransportError::kOther;
        aborted.error_text = "stopping";
        --in_flight_;
        entry.second(std::move(aborted));
      }
      return;
    }
    int running = 0;
    curl_multi_perform(multi, &running);
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &queued)) {
      if (message->msg != CURLMSG_DONE) continue;
      Call* call = nullptr;
      curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&call));
      OutboundResponse response = std::move(call->response);
      const CURLcode code = message->data.result;
      if (call->too_large) {
        response.error = TransportError::kOther;
        response.error_text = "response too large";
      } else if (code != CURLE_OK) {
        response.error = Classify(code);
        response.error_text = curl_easy_strerror(code);
      } else {
        curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &response.status);
      }
      finish(call, std::move(response));
    }
    curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
  }
}

}  // namespace effects
}  // namespace orderflow
