#include "edge_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "harness.h"

namespace orderflow_test {
namespace {

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

int MillisecondsUntil(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

}  // namespace

std::string RawAnswer::Header(const std::string& lower_name) const {
  const auto found = headers.find(lower_name);
  return found == headers.end() ? "" : found->second;
}

RawClient::RawClient(uint16_t port) : fd_(ConnectRaw(port)) {}

RawClient::~RawClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawClient::Send(const std::string& bytes) {
  return SendSome(bytes, std::chrono::seconds(10)) == bytes.size();
}

size_t RawClient::SendSome(const std::string& bytes, std::chrono::milliseconds timeout) {
  if (fd_ < 0) return 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t sent = 0;
  while (sent < bytes.size()) {
    pollfd wait{fd_, POLLOUT, 0};
    if (::poll(&wait, 1, MillisecondsUntil(deadline)) <= 0) break;
    const ssize_t n =
        ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  return sent;
}

bool RawClient::Fill(std::chrono::steady_clock::time_point deadline) {
  if (fd_ < 0 || ended_) return false;
  pollfd wait{fd_, POLLIN, 0};
  if (::poll(&wait, 1, MillisecondsUntil(deadline)) <= 0) return false;
  char chunk[16384];
  const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
  if (n <= 0) {
    ended_ = true;
    return false;
  }
  buffer_.append(chunk, static_cast<size_t>(n));
  return true;
}

std::vector<RawAnswer> RawClient::Read(size_t n, std::chrono::milliseconds timeout,
                                       const std::vector<bool>& head) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<RawAnswer> responses;
  while (responses.size() < n) {
    const size_t end = buffer_.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (!Fill(deadline)) break;
      continue;
    }
    RawAnswer response;
    const std::string status_line = buffer_.substr(0, buffer_.find("\r\n"));
    if (status_line.size() < 12) break;
    response.status = std::atoi(status_line.c_str() + 9);
    size_t line_start = status_line.size() + 2;
    while (line_start < end) {
      const size_t line_end = buffer_.find("\r\n", line_start);
      const std::string line = buffer_.substr(line_start, line_end - line_start);
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        response.headers[Lower(line.substr(0, colon))] = value;
      }
      line_start = line_end + 2;
    }
    const bool is_head = responses.size() < head.size() && head[responses.size()];
    const size_t length =
        is_head ? 0 : static_cast<size_t>(std::atol(response.Header("content-length").c_str()));
    while (buffer_.size() < end + 4 + length && Fill(deadline)) {
    }
    if (buffer_.size() < end + 4 + length) break;
    response.body = buffer_.substr(end + 4, length);
    buffer_.erase(0, end + 4 + length);
    if (response.status >= 100 && response.status < 200) continue;  // interim
    responses.push_back(std::move(response));
  }
  return responses;
}

std::string RawClient::ReadBytes(size_t n, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (buffer_.size() < n && Fill(deadline)) {
  }
  const std::string bytes = buffer_.substr(0, n);
  buffer_.erase(0, bytes.size());
  return bytes;
}

bool RawClient::WaitClosed(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!ended_ && std::chrono::steady_clock::now() < deadline) {
    Fill(deadline);
    buffer_.clear();
  }
  return ended_;
}

void RawClient::ShutdownWrite() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void RawClient::Reset() {
  if (fd_ < 0) return;
  linger option{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &option, sizeof(option));
  ::close(fd_);
  fd_ = -1;
}

RawAnswer RawExchange(uint16_t port, const std::string& bytes) {
  RawClient client(port);
  if (!client.Send(bytes)) return RawAnswer();
  std::vector<RawAnswer> answers = client.Read(1);
  return answers.empty() ? RawAnswer() : std::move(answers[0]);
}

}  // namespace orderflow_test
