#include "http/framing.h"

#include <strings.h>

#include <algorithm>
#include <cctype>

namespace orderflow {
namespace http {
namespace {

// The longest chunk-size line (size and extensions) accepted.
constexpr size_t kMaxChunkLine = 4096;

// tchar (RFC 9110 §5.6.2): the characters of a method or a field name.
bool IsTokenChar(unsigned char c) {
  if (std::isalnum(c)) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return IsTokenChar(static_cast<unsigned char>(c));
  });
}

// The bytes a field value may hold here: anything but NUL, CR and LF, the bytes that could
// split or cut a line. Other controls are the business of whoever reads the field (an
// Idempotency-Key with a control character gets its own 400).
bool IsFieldValueChar(unsigned char c) { return c != '\0' && c != '\r' && c != '\n'; }

std::string Trim(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Splits a list-valued field ("a, b,c") into trimmed elements; empty elements are dropped.
std::vector<std::string> ListElements(const std::string& value) {
  std::vector<std::string> elements;
  size_t start = 0;
  while (start <= value.size()) {
    const size_t comma = value.find(',', start);
    const size_t end = comma == std::string::npos ? value.size() : comma;
    std::string element = Trim(value.substr(start, end - start));
    if (!element.empty()) elements.push_back(std::move(element));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return elements;
}

// 1*DIGIT that fits in 63 bits.
bool ParseDecimal(const std::string& text, uint64_t* value) {
  if (text.empty() || text.size() > 18) return false;
  uint64_t result = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
    result = result * 10 + static_cast<uint64_t>(c - '0');
  }
  *value = result;
  return true;
}

// Host (RFC 9110 §7.2): uri-host [ ":" port ]; the host a reg-name, an IPv4 address or an
// IP-literal in brackets. Empty is allowed (an authority without a host).
bool IsValidHost(const std::string& host) {
  size_t port_start = std::string::npos;
  if (!host.empty() && host[0] == '[') {
    const size_t close = host.find(']');
    if (close == std::string::npos) return false;
    for (size_t i = 1; i < close; ++i) {
      const unsigned char c = static_cast<unsigned char>(host[i]);
      if (!std::isxdigit(c) && c != ':' && c != '.') return false;
    }
    if (close + 1 < host.size()) {
      if (host[close + 1] != ':') return false;
      port_start = close + 2;
    }
  } else {
    const size_t colon = host.find(':');
    const size_t end = colon == std::string::npos ? host.size() : colon;
    for (size_t i = 0; i < end; ++i) {
      const unsigned char c = static_cast<unsigned char>(host[i]);
      if (std::isalnum(c)) continue;
      if (std::string("-._~%!$&'()*+,;=").find(static_cast<char>(c)) == std::string::npos) {
        return false;
      }
    }
    if (colon != std::string::npos) port_start = colon + 1;
  }
  if (port_start == std::string::npos) return true;
  for (size_t i = port_start; i < host.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(host[i]))) return false;
  }
  return host.size() - port_start <= 5;
}

}  // namespace

const std::string* FramedRequest::Header(const char* lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return &value;
  }
  return nullptr;
}

std::string FramedRequest::Path() const { return target.substr(0, target.find('?')); }

std::string FramedRequest::Query() const {
  const size_t question = target.find('?');
  return question == std::string::npos ? std::string() : target.substr(question + 1);
}

void RequestFramer::Feed(const char* data, size_t size) {
  if (state_ == State::kFailed) return;
  buffer_.append(data, size);
}

RequestFramer::Result RequestFramer::Fail(int status, const char* code, std::string message,
                                          FramingError* error) {
  state_ = State::kFailed;
  failure_.status = status;
  failure_.code = code;
  failure_.message = std::move(message);
  // Nothing more is read from this connection: keep no bytes.
  buffer_.clear();
  buffer_.shrink_to_fit();
  position_ = 0;
  *error = failure_;
  return Result::kError;
}

RequestFramer::Result RequestFramer::FailHeadTooLarge(const char* head, FramingError* error) {
  // 414 when the request line alone passes the limit, else 431.
  if (std::find(head, head + kMaxHeadBytes, '\n') == head + kMaxHeadBytes) {
    return Fail(414, "uri_too_long", "request line is longer than 16 KiB", error);
  }
  return Fail(431, "headers_too_large", "request headers are larger than 16 KiB", error);
}

void RequestFramer::Compact() {
  if (position_ == 0) return;
  if (position_ >= buffer_.size()) {
    buffer_.clear();
    if (buffer_.capacity() > (64 << 10)) buffer_.shrink_to_fit();
  } else {
    buffer_.erase(0, position_);
  }
  position_ = 0;
}

RequestFramer::Result RequestFramer::Next(FramedRequest* request, FramingError* error) {
  if (state_ == State::kFailed) {
    *error = failure_;
    return Result::kError;
  }
  Result result = Result::kNeedMore;
  if (state_ == State::kHead) {
    result = ReadHead(error);
    if (result != Result::kRequest) return result;
    // The head is read: a request with a body goes on to read it.
    if (state_ == State::kHead) {
      *request = std::move(current_);
      current_ = FramedRequest();
      Compact();
      return Result::kRequest;
    }
    if (continue_pending_ && buffered() == 0) {
      continue_pending_ = false;
      return Result::kContinue;
    }
  }
  continue_pending_ = false;
  if (state_ == State::kBody) {
    if (buffered() < content_length_) return Result::kNeedMore;
    current_.body.assign(buffer_, position_, content_length_);
    position_ += content_length_;
  } else {
    result = ReadChunked(error);
    if (result != Result::kRequest) return result;
  }
  state_ = State::kHead;
  *request = std::move(current_);
  current_ = FramedRequest();
  Compact();
  return Result::kRequest;
}

RequestFramer::Result RequestFramer::ReadHead(FramingError* error) {
  // A client may send blank lines before a request (RFC 9112 §2.2).
  while (buffered() >= 2 && buffer_.compare(position_, 2, "\r\n") == 0) {
    position_ += 2;
    scanned_ = 0;
  }
  if (buffered() == 0) {
    Compact();
    return Result::kNeedMore;
  }

  // Find the blank line that ends the head; every LF must follow a CR.
  const char* const base = buffer_.data() + position_;
  const size_t size = buffered();
  size_t end = std::string::npos;  // offset of the "\r\n\r\n"
  for (size_t i = scanned_; i < size; ++i) {
    if (base[i] != '\n') continue;
    if (i == 0 || base[i - 1] != '\r') {
      return Fail(400, "bad_request", "a line of the request does not end with CRLF", error);
    }
    if (i >= 3 && base[i - 2] == '\n' && base[i - 3] == '\r') {
      end = i - 3;
      break;
    }
  }
  if (end == std::string::npos) {
    scanned_ = size;
    if (size > kMaxHeadBytes) return FailHeadTooLarge(base, error);
    return Result::kNeedMore;
  }
  scanned_ = 0;
  head_bytes_ = end + 4;
  if (head_bytes_ > kMaxHeadBytes) return FailHeadTooLarge(base, error);

  // Split the head into lines (each ended by CRLF; a CR elsewhere is an error).
  std::vector<std::string> lines;
  size_t line_start = 0;
  for (size_t i = 0; i < end + 2; ++i) {
    if (base[i] == '\r') {
      if (base[i + 1] != '\n') {
        return Fail(400, "bad_request", "a line of the request does not end with CRLF", error);
      }
      lines.emplace_back(base + line_start, i - line_start);
      line_start = i + 2;
      ++i;
    }
  }
  position_ += head_bytes_;

  // Request line: method SP request-target SP HTTP-version.
  FramedRequest& r = current_;
  r = FramedRequest();
  const std::string& line = lines[0];
  const size_t first_space = line.find(' ');
  const size_t last_space = line.rfind(' ');
  if (first_space == std::string::npos || first_space == last_space) {
    return Fail(400, "bad_request", "the request line is not \"method target version\"", error);
  }
  r.method = line.substr(0, first_space);
  r.target = line.substr(first_space + 1, last_space - first_space - 1);
  const std::string version = line.substr(last_space + 1);
  if (!IsToken(r.method)) return Fail(400, "bad_request", "the request method is not valid", error);
  if (r.target.empty() || std::any_of(r.target.begin(), r.target.end(), [](char c) {
        const unsigned char u = static_cast<unsigned char>(c);
        return u <= 0x20 || u >= 0x7f;
      })) {
    return Fail(400, "bad_request", "the request target is not valid", error);
  }
  if (r.target[0] != '/' && !(r.target == "*" && r.method == "OPTIONS")) {
    return Fail(400, "bad_request", "the request target must be a path", error);
  }
  if (version == "HTTP/1.1") {
    r.minor_version = 1;
  } else if (version == "HTTP/1.0") {
    r.minor_version = 0;
  } else if (version.size() == 8 && version.compare(0, 5, "HTTP/") == 0 &&
             std::isdigit(static_cast<unsigned char>(version[5])) && version[6] == '.' &&
             std::isdigit(static_cast<unsigned char>(version[7]))) {
    return Fail(505, "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are served", error);
  } else {
    return Fail(400, "bad_request", "the request line has no valid HTTP version", error);
  }

  // Header fields: name ":" OWS value OWS. No folding, no blank before the colon.
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string& field = lines[i];
    if (field[0] == ' ' || field[0] == '\t') {
      return Fail(400, "bad_request", "folded header lines are not accepted", error);
    }
    const size_t colon = field.find(':');
    if (colon == std::string::npos || !IsToken(field.substr(0, colon))) {
      return Fail(400, "bad_request", "a header field is not \"name: value\"", error);
    }
    if (!std::all_of(field.begin() + colon + 1, field.end(),
                     [](char c) { return IsFieldValueChar(static_cast<unsigned char>(c)); })) {
      return Fail(400, "bad_request", "a header value holds a NUL, CR or LF byte", error);
    }
    r.headers.emplace_back(Lower(field.substr(0, colon)), Trim(field.substr(colon + 1)));
  }

  // The fields that decide framing and the connection.
  bool has_length = false;
  bool chunked = false;
  int hosts = 0;
  bool close = false;
  bool keep_alive_token = false;
  bool expect_continue = false;
  for (const auto& [name, value] : r.headers) {
    if (name == "content-length") {
      const std::vector<std::string> values = ListElements(value);
      if (values.empty()) return Fail(400, "bad_request", "Content-Length is empty", error);
      for (const std::string& element : values) {
        uint64_t length = 0;
        if (!ParseDecimal(element, &length)) {
          return Fail(400, "bad_request", "Content-Length is not a decimal number", error);
        }
        if (has_length && length != content_length_) {
          return Fail(400, "bad_request", "Content-Length is given twice with different values",
                      error);
        }
        has_length = true;
        content_length_ = length;
      }
    } else if (name == "transfer-encoding") {
      for (const std::string& coding : ListElements(value)) {
        if (chunked || strcasecmp(coding.c_str(), "chunked") != 0) {
          return Fail(501, "not_implemented", "only the chunked transfer coding is accepted",
                      error);
        }
        chunked = true;
      }
      if (!chunked) return Fail(400, "bad_request", "Transfer-Encoding is empty", error);
    } else if (name == "host") {
      ++hosts;
      if (!IsValidHost(value)) return Fail(400, "bad_request", "Host is not valid", error);
    } else if (name == "connection") {
      for (const std::string& option : ListElements(value)) {
        if (strcasecmp(option.c_str(), "close") == 0) close = true;
        if (strcasecmp(option.c_str(), "keep-alive") == 0) keep_alive_token = true;
      }
    } else if (name == "expect") {
      if (strcasecmp(value.c_str(), "100-continue") != 0) {
        return Fail(417, "expectation_failed", "only \"Expect: 100-continue\" is understood",
                    error);
      }
      expect_continue = true;
    }
  }
  if (hosts > 1) return Fail(400, "bad_request", "Host is given more than once", error);
  if (hosts == 0 && r.minor_version == 1) {
    return Fail(400, "bad_request", "an HTTP/1.1 request must have a Host header", error);
  }
  if (chunked && has_length) {
    return Fail(400, "bad_request", "Content-Length and Transfer-Encoding together are ambiguous",
                error);
  }
  if (chunked && r.minor_version == 0) {
    return Fail(400, "bad_request", "HTTP/1.0 has no chunked transfer coding", error);
  }
  if (has_length && content_length_ > kMaxBodyBytes) {
    return Fail(413, "payload_too_large", "request body is larger than 1 MiB", error);
  }
  r.keep_alive = r.minor_version == 1 ? !close : (keep_alive_token && !close);
  r.has_body = chunked || (has_length && content_length_ > 0);
  continue_pending_ = expect_continue && r.has_body && r.minor_version == 1;
  if (chunked) {
    state_ = State::kChunkSize;
    trailer_bytes_ = 0;
  } else if (has_length && content_length_ > 0) {
    state_ = State::kBody;
  } else {
    state_ = State::kHead;
  }
  return Result::kRequest;
}

RequestFramer::Result RequestFramer::ReadChunked(FramingError* error) {
  FramedRequest& r = current_;
  while (true) {
    if (state_ == State::kChunkData) {
      const uint64_t take = std::min<uint64_t>(chunk_left_, buffered());
      r.body.append(buffer_, position_, take);
      position_ += take;
      chunk_left_ -= take;
      if (chunk_left_ > 0) {
        Compact();
        return Result::kNeedMore;
      }
      if (buffered() < 2) return Result::kNeedMore;
      if (buffer_.compare(position_, 2, "\r\n") != 0) {
        return Fail(400, "bad_request", "chunk data is not followed by CRLF", error);
      }
      position_ += 2;
      state_ = State::kChunkSize;
    }
    // A line: the chunk-size line, or a trailer field (or the blank line that ends them).
    const size_t crlf = buffer_.find("\r\n", position_);
    const size_t line_end = crlf == std::string::npos ? buffer_.size() : crlf;
    if (std::find(buffer_.begin() + position_, buffer_.begin() + line_end, '\n') !=
        buffer_.begin() + line_end) {
      return Fail(400, "bad_request", "a line of the request does not end with CRLF", error);
    }
    const size_t line_size = line_end - position_;
    if (state_ == State::kChunkSize) {
      if (crlf == std::string::npos) {
        if (line_size > kMaxChunkLine) {
          return Fail(400, "bad_request", "a chunk-size line is too long", error);
        }
        return Result::kNeedMore;
      }
      const std::string line = buffer_.substr(position_, line_size);
      size_t digits = 0;
      uint64_t size = 0;
      while (digits < line.size() && std::isxdigit(static_cast<unsigned char>(line[digits]))) {
        if (digits == 15) {
          return Fail(413, "payload_too_large", "request body is larger than 1 MiB", error);
        }
        const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(line[digits])));
        size = size * 16 + static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
        ++digits;
      }
      // After the size only chunk extensions may follow: BWS ";" ...
      const size_t rest = line.find_first_not_of(" \t", digits);
      const bool valid_rest = rest == std::string::npos ? digits == line.size() : line[rest] == ';';
      if (digits == 0 || !valid_rest || !std::all_of(line.begin(), line.end(), [](char c) {
            return IsFieldValueChar(static_cast<unsigned char>(c));
          })) {
        return Fail(400, "bad_request", "a chunk size is not a hexadecimal number", error);
      }
      if (r.body.size() + size > kMaxBodyBytes) {
        return Fail(413, "payload_too_large", "request body is larger than 1 MiB", error);
      }
      position_ = crlf + 2;
      if (size == 0) {
        state_ = State::kTrailers;
      } else {
        chunk_left_ = size;
        state_ = State::kChunkData;
        continue;
      }
    }
    // Trailers: read, counted toward the head limit, and dropped.
    while (true) {
      const size_t end = buffer_.find("\r\n", position_);
      const size_t stop = end == std::string::npos ? buffer_.size() : end;
      if (std::find(buffer_.begin() + position_, buffer_.begin() + stop, '\n') !=
          buffer_.begin() + stop) {
        return Fail(400, "bad_request", "a line of the request does not end with CRLF", error);
      }
      if (head_bytes_ + trailer_bytes_ + (stop - position_) > kMaxHeadBytes) {
        return Fail(431, "headers_too_large", "request headers are larger than 16 KiB", error);
      }
      if (end == std::string::npos) return Result::kNeedMore;
      if (end == position_) {
        position_ += 2;
        return Result::kRequest;
      }
      const std::string field = buffer_.substr(position_, end - position_);
      const size_t colon = field.find(':');
      if (field[0] == ' ' || field[0] == '\t' || colon == std::string::npos ||
          !IsToken(field.substr(0, colon))) {
        return Fail(400, "bad_request", "a trailer field is not \"name: value\"", error);
      }
      trailer_bytes_ += field.size() + 2;
      position_ = end + 2;
    }
  }
}

}  // namespace http
}  // namespace orderflow
