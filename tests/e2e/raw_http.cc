#include "raw_http.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "harness.h"

namespace orderflow_test {
namespace {

// Waits for `fd` to be readable until `deadline`; false on timeout.
bool WaitReadable(int fd, std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd entry{fd, POLLIN, 0};
  return poll(&entry, 1, static_cast<int>(left.count())) > 0;
}

// Appends what one recv() gives; "" on success, else why not.
std::string ReadMore(int fd, std::string* buffer, std::chrono::steady_clock::time_point deadline) {
  if (!WaitReadable(fd, deadline)) return "timeout";
  char chunk[16384];
  const ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
  if (n == 0) return "closed";
  if (n < 0) return errno == ECONNRESET ? "reset" : "error";
  buffer->append(chunk, static_cast<size_t>(n));
  return "";
}

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

}  // namespace

bool SendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

std::string RawResponse::Header(const std::string& lower_name) const {
  const auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

RawResponse ReadResponse(int fd, std::string* buffer, bool head,
                         std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  RawResponse response;
  size_t end = std::string::npos;
  while ((end = buffer->find("\r\n\r\n")) == std::string::npos) {
    response.error = ReadMore(fd, buffer, deadline);
    if (!response.error.empty()) return response;
  }
  const std::string head_text = buffer->substr(0, end + 2);
  if (head_text.rfind("HTTP/1.", 0) != 0 || head_text.size() < 12) {
    response.error = "malformed";
    return response;
  }
  const long status = std::atol(head_text.c_str() + 9);
  size_t line = head_text.find("\r\n") + 2;
  while (line < head_text.size()) {
    const size_t next = head_text.find("\r\n", line);
    const std::string header = head_text.substr(line, next - line);
    const size_t colon = header.find(':');
    if (colon != std::string::npos) {
      std::string value = header.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      value.erase(value.find_last_not_of(" \t") + 1);
      response.headers[Lower(header.substr(0, colon))] = value;
    }
    line = next + 2;
  }
  buffer->erase(0, end + 4);
  size_t length = 0;
  const bool bodiless = head || status < 200 || status == 204 || status == 304;
  if (!bodiless) {
    const std::string declared = response.Header("content-length");
    if (declared.empty()) {
      response.error = "malformed";  // neither we nor nginx answer without Content-Length
      return response;
    }
    length = std::strtoul(declared.c_str(), nullptr, 10);
  }
  while (buffer->size() < length) {
    response.error = ReadMore(fd, buffer, deadline);
    if (!response.error.empty()) return response;
  }
  response.body = buffer->substr(0, length);
  buffer->erase(0, length);
  response.status = status;
  response.error.clear();
  return response;
}

bool PeerCloses(int fd, std::chrono::milliseconds timeout) {
  std::string rest;
  const std::string why = ReadMore(fd, &rest, std::chrono::steady_clock::now() + timeout);
  return why == "closed" || why == "reset";
}

void CloseWithReset(int fd) {
  const linger abort_now{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_now, sizeof(abort_now));
  close(fd);
}

RawResponse Exchange(uint16_t port, const std::string& request) {
  RawResponse response;
  const int fd = ConnectRaw(port);
  if (fd < 0) {
    response.error = "connect";
    return response;
  }
  std::string buffer;
  if (SendAll(fd, request)) {
    response = ReadResponse(fd, &buffer, request.rfind("HEAD ", 0) == 0);
  } else {
    response.error = "send";
  }
  close(fd);
  return response;
}

}  // namespace orderflow_test
