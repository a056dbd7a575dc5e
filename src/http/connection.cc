#include "http/connection.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>

namespace orderflow {
namespace http {
namespace {

constexpr const char* kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

// Pipelined bytes a connection may hold while kMaxPipelined requests are in flight.
constexpr size_t kMaxPipelinedBytes = kMaxHeadBytes + kMaxBodyBytes;

}  // namespace

Connection::Connection(int fd, uint64_t id, ConnectionShared* shared, ConnectionOwner* owner)
    : id_(id),
      shared_(shared),
      owner_(owner),
      fd_(fd),
      last_activity_(std::chrono::steady_clock::now()) {}

Connection::~Connection() {
  if (fd_ >= 0) {
    if (watching_ && shared_->monitor != nullptr) shared_->monitor->Unwatch(fd_);
    ::close(fd_);
  }
  shared_->buffered_bytes.fetch_sub(accounted_);
  // Requests that never got an answer slot written (the server is gone) are not in flight.
  shared_->in_flight.fetch_sub(static_cast<int>(slots_.size()));
}

void Connection::OnInput(const char* data, size_t size) {
  std::vector<Event> events;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    last_activity_ = now;
    if (!reading_) return;  // after the last request: read and dropped
    if (shared_->buffered_bytes.load() + size > shared_->buffer_budget) {
      FailLocked({503, "overloaded", "the server is buffering too many requests, retry later"});
    } else {
      framer_.Feed(data, size);
      FrameLocked();
      if (reading_ && slots_.size() >= kMaxPipelined && framer_.buffered() > kMaxPipelinedBytes) {
        FailLocked({503, "overloaded", "too many pipelined requests"});
      }
    }
    if (!framer_.started()) {
      request_started_ = {};
    } else if (request_started_ == std::chrono::steady_clock::time_point{}) {
      request_started_ = now;
    }
    AccountLocked();
    WriteLocked();  // a 100 Continue
    TakeLocked(&events);
  }
  Dispatch(&events);
}

void Connection::OnPeerClosed() {
  std::lock_guard<std::mutex> lock(mutex_);
  peer_closed_ = true;
  DropInputLocked();
  MaybeCloseLocked();
}

void Connection::Answer(uint64_t sequence, std::string response, bool close_after) {
  std::vector<Event> events;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (Slot& slot : slots_) {
      if (slot.sequence != sequence) continue;
      --running_;
      if (!slot.safe) running_unsafe_ = false;
      slot.ready = true;
      slot.close_after = close_after;
      slot.response = std::move(response);
      break;
    }
    FlushLocked();
    // Answers made room for pipelined requests already buffered.
    if (reading_ && slots_.size() < kMaxPipelined && framer_.buffered() > 0) {
      FrameLocked();
      AccountLocked();
    }
    TakeLocked(&events);
    MaybeCloseLocked();
  }
  Dispatch(&events);
}

void Connection::OnWritable() {
  std::lock_guard<std::mutex> lock(mutex_);
  watching_ = false;
  WriteLocked();
  MaybeCloseLocked();
}

void Connection::Tick(std::chrono::steady_clock::time_point now) {
  std::vector<Event> events;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (fd_ < 0 || peer_closed_) return;
    const ConnectionTimeouts& timeouts = shared_->timeouts;
    if (write_shut_) {
      // The client had its last answer and its time to close; make Pistache see the end.
      if (now - ending_since_ > timeouts.linger) ::shutdown(fd_, SHUT_RDWR);
    } else if (reading_ && slots_.empty() && framer_.started() &&
               now - request_started_ > timeouts.read) {
      FailLocked({408, "request_timeout", "the request was not received in time"});
      TakeLocked(&events);
    } else if (reading_ && slots_.empty() && !framer_.started() && out_offset_ == out_.size() &&
               now - last_activity_ > timeouts.idle) {
      ::shutdown(fd_, SHUT_RDWR);
    }
  }
  Dispatch(&events);
}

void Connection::FrameLocked() {
  while (reading_ && slots_.size() < kMaxPipelined) {
    Event event;
    const RequestFramer::Result result = framer_.Next(&event.request, &event.error);
    if (result == RequestFramer::Result::kNeedMore) return;
    if (result == RequestFramer::Result::kContinue) {
      // Only when nothing is being answered: a 100 must not cut into an earlier response.
      if (slots_.empty() && out_offset_ == out_.size()) out_ += kContinue;
      continue;
    }
    if (result == RequestFramer::Result::kError) {
      FailLocked(event.error);
      return;
    }
    event.sequence = next_sequence_++;
    event.safe = event.request.method == "GET" || event.request.method == "HEAD" ||
                 event.request.method == "OPTIONS";
    {
      Slot slot;
      slot.sequence = event.sequence;
      slot.safe = event.safe;
      slots_.push_back(std::move(slot));
    }
    shared_->in_flight.fetch_add(1);
    if (!event.request.keep_alive) reading_ = false;
    waiting_.push_back(std::move(event));
  }
}

void Connection::FailLocked(FramingError error) {
  Event event;
  event.sequence = next_sequence_++;
  event.failed = true;
  event.safe = true;  // answered at once, without the database
  event.error = std::move(error);
  event.request = framer_.partial();
  {
    Slot slot;
    slot.sequence = event.sequence;
    slots_.push_back(std::move(slot));
  }
  shared_->in_flight.fetch_add(1);
  DropInputLocked();
  waiting_.push_back(std::move(event));
}

void Connection::TakeLocked(std::vector<Event>* events) {
  // Pipelined requests run in parallel only while all of them are safe (RFC 9112 §9.3.2): a
  // POST waits for every earlier request, and every later one waits for it.
  while (!waiting_.empty() && !running_unsafe_) {
    const bool safe = waiting_.front().safe;
    if (!safe && running_ > 0) return;
    ++running_;
    running_unsafe_ = !safe;
    events->push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
}

void Connection::DropInputLocked() {
  reading_ = false;
  framer_ = RequestFramer();
  AccountLocked();
}

void Connection::AccountLocked() {
  const size_t now = framer_.buffered();
  if (now > accounted_) {
    shared_->buffered_bytes.fetch_add(now - accounted_);
  } else {
    shared_->buffered_bytes.fetch_sub(accounted_ - now);
  }
  accounted_ = now;
}

void Connection::FlushLocked() {
  while (!slots_.empty() && slots_.front().ready) {
    Slot& slot = slots_.front();
    if (!ending_ && !broken_ && fd_ >= 0) {
      out_ += slot.response;
      if (slot.close_after) {
        ending_ = true;
        DropInputLocked();
      }
    }
    slots_.pop_front();
    shared_->in_flight.fetch_sub(1);
  }
  last_activity_ = std::chrono::steady_clock::now();
  WriteLocked();
}

void Connection::WriteLocked() {
  if (fd_ < 0 || broken_) {
    out_.clear();
    out_offset_ = 0;
    return;
  }
  while (out_offset_ < out_.size()) {
    const ssize_t written = ::send(fd_, out_.data() + out_offset_, out_.size() - out_offset_,
                                   MSG_NOSIGNAL | MSG_DONTWAIT);
    if (written > 0) {
      out_offset_ += static_cast<size_t>(written);
      continue;
    }
    if (written < 0 && errno == EINTR) continue;
    if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (shared_->monitor != nullptr) {
        watching_ = shared_->monitor->WatchWritable(id_, fd_, watching_);
      }
      return;
    }
    // The client is gone: nothing more can be written. Make Pistache see the end too.
    broken_ = true;
    out_.clear();
    out_offset_ = 0;
    ::shutdown(fd_, SHUT_RDWR);
    DropInputLocked();
    return;
  }
  out_.clear();
  out_offset_ = 0;
  if (ending_ && !write_shut_) {
    ::shutdown(fd_, SHUT_WR);  // the client reads our last answer, then the end
    write_shut_ = true;
    ending_since_ = std::chrono::steady_clock::now();
  }
}

void Connection::MaybeCloseLocked() {
  if (fd_ < 0 || !peer_closed_ || !slots_.empty()) return;
  if (out_offset_ < out_.size() && !broken_) return;  // still writing to a half-closed client
  if (watching_ && shared_->monitor != nullptr) shared_->monitor->Unwatch(fd_);
  watching_ = false;
  ::close(fd_);
  fd_ = -1;
  if (shared_->monitor != nullptr) shared_->monitor->Unregister(id_);
}

void Connection::Dispatch(std::vector<Event>* events) {
  if (events->empty()) return;
  const std::shared_ptr<Connection> self = shared_from_this();
  for (Event& event : *events) {
    if (event.failed) {
      owner_->OnFramingError(self, event.sequence, event.error, event.request);
    } else {
      owner_->OnRequest(self, event.sequence, std::move(event.request));
    }
  }
  events->clear();
}

ConnectionMonitor::ConnectionMonitor() : epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)) {}

ConnectionMonitor::~ConnectionMonitor() {
  Stop();
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void ConnectionMonitor::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ConnectionMonitor::Stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void ConnectionMonitor::Register(const std::shared_ptr<Connection>& connection) {
  std::lock_guard<std::mutex> lock(mutex_);
  connections_[connection->id()] = connection;
}

void ConnectionMonitor::Unregister(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  connections_.erase(id);
}

bool ConnectionMonitor::WatchWritable(uint64_t id, int fd, bool already_watching) {
  epoll_event event{};
  event.events = EPOLLOUT | EPOLLONESHOT;
  event.data.u64 = id;
  if (::epoll_ctl(epoll_fd_, already_watching ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &event) == 0) {
    return true;
  }
  if (errno == EEXIST) return ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event) == 0;
  return false;
}

void ConnectionMonitor::Unwatch(int fd) { ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr); }

void ConnectionMonitor::Run() {
  constexpr int kTickMs = 200;
  auto next_tick = std::chrono::steady_clock::now();
  epoll_event events[64];
  while (!stopping_.load()) {
    const int ready = ::epoll_wait(epoll_fd_, events, 64, kTickMs);
    for (int i = 0; i < ready; ++i) {
      std::shared_ptr<Connection> connection;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        const auto found = connections_.find(events[i].data.u64);
        if (found != connections_.end()) connection = found->second.lock();
      }
      if (connection) connection->OnWritable();
    }
    const auto now = std::chrono::steady_clock::now();
    if (now < next_tick) continue;
    next_tick = now + std::chrono::milliseconds(kTickMs);
    std::vector<std::shared_ptr<Connection>> all;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      all.reserve(connections_.size());
      for (auto it = connections_.begin(); it != connections_.end();) {
        if (auto connection = it->second.lock()) {
          all.push_back(std::move(connection));
          ++it;
        } else {
          it = connections_.erase(it);
        }
      }
    }
    for (const auto& connection : all) connection->Tick(now);
  }
}

}  // namespace http
}  // namespace orderflow
