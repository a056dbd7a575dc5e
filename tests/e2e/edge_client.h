// RawClient: an HTTP/1.1 client over a raw socket, for what libcurl will not send (pipelined
// requests, malformed framing, half-closed or reset connections) and for reading exactly what
// the server wrote, response after response, on one connection.
#ifndef ORDERFLOW_TESTS_E2E_EDGE_CLIENT_H_
#define ORDERFLOW_TESTS_E2E_EDGE_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace orderflow_test {

struct RawAnswer {
  int status = 0;                              // 0: no complete answer
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  std::string Header(const std::string& lower_name) const;
};

class RawClient {
 public:
  explicit RawClient(uint16_t port);
  ~RawClient();  // close()

  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }  // for poll() over many clients
  // Writes every byte (false if the connection failed or 10 s passed).
  bool Send(const std::string& bytes);
  // Writes what the server accepts within `timeout`; returns the bytes written.
  size_t SendSome(const std::string& bytes, std::chrono::milliseconds timeout);
  // Reads up to `n` responses (1xx interim ones skipped) within `timeout`. head[i]: the i-th
  // answers a HEAD (no body whatever its Content-Length).
  std::vector<RawAnswer> Read(size_t n,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10),
                              const std::vector<bool>& head = {});
  // Reads exactly `n` raw bytes (fewer on timeout or end).
  std::string ReadBytes(size_t n, std::chrono::milliseconds timeout);
  // True once the server ended the connection (end of stream or reset) within `timeout`;
  // anything it still sends is read and dropped.
  bool WaitClosed(std::chrono::milliseconds timeout);
  void ShutdownWrite();
  // Closes with a reset (SO_LINGER 0).
  void Reset();

 private:
  // Reads more into buffer_; false on timeout, end or error.
  bool Fill(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string buffer_;
  bool ended_ = false;
};

// One request on a fresh connection, its answer (status 0 if none within 10 s).
RawAnswer RawExchange(uint16_t port, const std::string& bytes);

}  // namespace orderflow_test

#endif  // ORDERFLOW_TESTS_E2E_EDGE_CLIENT_H_
