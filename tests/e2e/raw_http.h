// HTTP/1.1 over a raw socket, for the clients libcurl cannot imitate: pipelined requests,
// half-closed or aborted connections, malformed framing, and answers read byte for byte.
#ifndef ORDERFLOW_TESTS_E2E_RAW_HTTP_H_
#define ORDERFLOW_TESTS_E2E_RAW_HTTP_H_

#include <chrono>
#include <map>
#include <string>

namespace orderflow_test {

// Writes every byte of `bytes` to `fd`; false when the peer is gone.
bool SendAll(int fd, const std::string& bytes);

struct RawResponse {
  long status = 0;                             // 0: no complete answer (see error)
  std::map<std::string, std::string> headers;  // names lower-cased; the last of repeated ones
  std::string body;
  std::string error;  // why there is no answer: "timeout", "closed", "reset", "malformed"

  std::string Header(const std::string& lower_name) const;
};

// Reads one answer from `fd`, framed by Content-Length (no body for HEAD or 1xx/204/304).
// `buffer` holds bytes already read and keeps those that follow the answer.
RawResponse ReadResponse(int fd, std::string* buffer, bool head = false,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));

// True when the peer closed the connection (EOF or reset) within `timeout`, with no more bytes.
bool PeerCloses(int fd, std::chrono::milliseconds timeout);

// Closes `fd` with a reset (SO_LINGER 0) instead of a FIN.
void CloseWithReset(int fd);

// Connects, sends `request`, reads one answer and closes.
RawResponse Exchange(uint16_t port, const std::string& request);

}  // namespace orderflow_test

#endif  // ORDERFLOW_TESTS_E2E_RAW_HTTP_H_
