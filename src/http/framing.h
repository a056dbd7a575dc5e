// RequestFramer: our HTTP/1.1 request framing (RFC 9112), fed the bytes a connection reads and
// giving back whole requests, in order, however the bytes were split or batched (pipelining).
//
// Pistache 0.0.5 frames requests inside Http::Handler::onInput: one request per read, headers
// parsed eagerly into typed objects whose exceptions became 500s. This framer replaces that
// layer. It is strict where a lax reading would let two parties frame the same bytes
// differently (request smuggling): folded header lines, two different Content-Length values,
// a Content-Length that is not digits, Content-Length beside Transfer-Encoding, chunk sizes with
// a prefix or blanks are all 400. Header fields are kept as text; only the few the server reads
// (Host, Content-Length, Transfer-Encoding, Connection, Expect) are interpreted here, so a header
// the service never reads cannot fail a request.
#ifndef ORDERFLOW_HTTP_FRAMING_H_
#define ORDERFLOW_HTTP_FRAMING_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace orderflow {
namespace http {

// Largest request head accepted: the request line, every header field (repeats included) and
// chunked trailers, with their line ends. Larger ones get a 431 (414 when the request line
// alone is larger).
constexpr size_t kMaxHeadBytes = 16 << 10;

// Largest request body accepted; a larger announced or received body gets a 413.
constexpr size_t kMaxBodyBytes = 1 << 20;

struct FramedRequest {
  std::string method;     // as sent (methods are case-sensitive)
  std::string target;     // the request target, as sent
  int minor_version = 1;  // HTTP/1.<minor_version>
  // Every header field in order; names lower-cased, values without surrounding blanks.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;        // decoded (chunked bodies are de-chunked)
  bool keep_alive = true;  // false: close the connection after answering this request
  bool has_body = false;   // Content-Length > 0 or a chunked body was announced

  // The first field named `lower_name`, or null.
  const std::string* Header(const char* lower_name) const;
  // The target without its query.
  std::string Path() const;
  // The target's query, after the first '?' (without it); empty when there is none.
  std::string Query() const;
};

// Why a request could not be framed. The connection cannot be read further after it.
struct FramingError {
  int status = 400;
  std::string code;     // stable code for the JSON body
  std::string message;  // sentence for the client
};

class RequestFramer {
 public:
  enum class Result {
    kNeedMore,  // no whole request buffered yet
    kRequest,   // *request holds the next request
    kContinue,  // the head of a request that sent "Expect: 100-continue" is read, its body not
    kError,     // *error says why; nothing more can be read from this connection
  };

  RequestFramer() = default;

  // Appends bytes read from the connection.
  void Feed(const char* data, size_t size);

  // Frames the next request from the buffered bytes. After kContinue, call again once more bytes
  // were fed; after kError, every call returns kError.
  Result Next(FramedRequest* request, FramingError* error);

  // Bytes buffered and not yet handed out as requests.
  size_t buffered() const { return buffer_.size() - position_; }
  // True when a request has started arriving (bytes beyond blank lines) and is not complete.
  bool started() const { return buffered() > 0; }
  // The head read so far of the request being framed (method and target), for logs of errors.
  const FramedRequest& partial() const { return current_; }

 private:
  enum class State { kHead, kBody, kChunkSize, kChunkData, kTrailers, kFailed };

  Result Fail(int status, const char* code, std::string message, FramingError* error);
  // `head` points at the buffered head, at least kMaxHeadBytes long.
  Result FailHeadTooLarge(const char* head, FramingError* error);
  Result ReadHead(FramingError* error);
  Result ReadChunked(FramingError* error);
  void Compact();

  std::string buffer_;
  size_t position_ = 0;  // first byte of buffer_ not consumed
  size_t scanned_ = 0;   // bytes after position_ already searched for the end of the head
  State state_ = State::kHead;
  FramedRequest current_;
  uint64_t content_length_ = 0;
  uint64_t chunk_left_ = 0;
  size_t trailer_bytes_ = 0;
  size_t head_bytes_ = 0;
  bool continue_pending_ = false;
  FramingError failure_;
};

}  // namespace http
}  // namespace orderflow

#endif  // ORDERFLOW_HTTP_FRAMING_H_
