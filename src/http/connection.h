// Connection: one client connection's framing, answer order and writes; ConnectionMonitor: the
// thread that finishes writes a full socket buffer interrupted and enforces the timeouts.
//
// Why answers are not written through Pistache's transport: Tcp::Transport queues every write by
// the socket's descriptor number and performs it later on the reactor thread. When the client
// disconnects meanwhile and a new connection is accepted on the same number, the queued answer
// goes to the new client (issue 9 item 0). A Connection instead writes to a descriptor of its own:
// at the first input it dup()s the peer's socket. That number stays ours until we close it, so
// every byte written to it reaches this connection's socket or nobody, whatever Pistache does with
// its descriptor. It also keeps a half-closed client's socket open after Pistache, seeing recv()
// return 0, closed its own descriptor: the answer still reaches the client.
//
// Answers can be completed out of order (by different workers); a Connection writes them in the
// order the requests arrived. Pistache's reactor still reads the socket and calls OnInput.
#ifndef ORDERFLOW_HTTP_CONNECTION_H_
#define ORDERFLOW_HTTP_CONNECTION_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "http/framing.h"

namespace orderflow {
namespace http {

class Connection;
class ConnectionMonitor;

// Requests in flight on one connection before it stops framing further pipelined ones.
constexpr size_t kMaxPipelined = 32;

// The timeouts the monitor enforces.
struct ConnectionTimeouts {
  std::chrono::milliseconds read{30000};   // a started request must be whole by then (408)
  std::chrono::milliseconds idle{60000};   // a keep-alive connection with nothing to do
  std::chrono::milliseconds linger{2000};  // after our last answer, for the client to close
};

// What connections share: the server's accounting and the monitor.
struct ConnectionShared {
  std::atomic<int> in_flight{0};          // requests framed and not yet answered or dropped
  std::atomic<size_t> buffered_bytes{0};  // request bytes buffered by every connection
  size_t buffer_budget = 64 << 20;        // above it, a connection needing more gets a 503
  ConnectionMonitor* monitor = nullptr;
  ConnectionTimeouts timeouts;
};

// Receives the requests connections frame. Each request (and each framing error) is numbered;
// the owner answers it exactly once with Connection::Answer, now or later, from any thread.
class ConnectionOwner {
 public:
  virtual ~ConnectionOwner() = default;
  virtual void OnRequest(const std::shared_ptr<Connection>& connection, uint64_t sequence,
                         FramedRequest request) = 0;
  // `partial` holds what was read of the request's head (maybe nothing).
  virtual void OnFramingError(const std::shared_ptr<Connection>& connection, uint64_t sequence,
                              const FramingError& error, const FramedRequest& partial) = 0;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // Takes ownership of `fd` (our duplicate of the client's socket).
  Connection(int fd, uint64_t id, ConnectionShared* shared, ConnectionOwner* owner);
  ~Connection();

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  uint64_t id() const { return id_; }

  // The client's address, for logs ("" unless the owner set it). Set once, before the first
  // input, by whoever creates the connection.
  void set_remote(std::string remote) { remote_ = std::move(remote); }
  const std::string& remote() const { return remote_; }

  // Reactor thread: bytes read from the client.
  void OnInput(const char* data, size_t size);
  // Reactor thread: Pistache saw the client's end (or an error) and closes its descriptor.
  void OnPeerClosed();

  // Any thread: the complete HTTP response to request `sequence`. `close_after`: the
  // connection ends after it (no later request is read).
  void Answer(uint64_t sequence, std::string response, bool close_after);

  // Monitor thread.
  void OnWritable();
  void Tick(std::chrono::steady_clock::time_point now);

 private:
  struct Slot {
    uint64_t sequence = 0;
    bool ready = false;
    bool close_after = false;
    bool safe = true;  // GET, HEAD, OPTIONS (or a framing error)
    std::string response;
  };
  struct Event {
    uint64_t sequence = 0;
    bool failed = false;
    bool safe = true;
    FramedRequest request;
    FramingError error;
  };

  // The following run with mutex_ held.
  void FrameLocked();
  void FailLocked(FramingError error);
  // Moves the requests that may start now from waiting_ to *events.
  void TakeLocked(std::vector<Event>* events);
  void FlushLocked();
  void WriteLocked();
  void MaybeCloseLocked();
  void DropInputLocked();
  void AccountLocked();

  void Dispatch(std::vector<Event>* events);

  const uint64_t id_;
  std::string remote_;
  ConnectionShared* const shared_;
  ConnectionOwner* const owner_;

  std::mutex mutex_;
  int fd_;  // -1 once closed
  RequestFramer framer_;
  size_t accounted_ = 0;         // framer bytes counted in shared_->buffered_bytes
  std::deque<Slot> slots_;       // requests framed and not yet written, in arrival order
  std::deque<Event> waiting_;    // framed requests not yet handed to the owner
  int running_ = 0;              // handed to the owner and not yet answered
  bool running_unsafe_ = false;  // one of them is not safe (then it is the only one)
  uint64_t next_sequence_ = 0;
  std::string out_;  // bytes to write, from out_offset_
  size_t out_offset_ = 0;
  bool reading_ = true;       // false after the last request: later input is dropped
  bool ending_ = false;       // an answer with close_after was written; later ones are dropped
  bool peer_closed_ = false;  // Pistache closed its descriptor
  bool write_shut_ = false;   // shutdown(SHUT_WR) done
  bool broken_ = false;       // a write failed: answers are dropped
  bool watching_ = false;     // registered with the monitor for writability
  std::chrono::steady_clock::time_point last_activity_;
  std::chrono::steady_clock::time_point request_started_{};  // first byte of a pending request
  std::chrono::steady_clock::time_point ending_since_{};
};

class ConnectionMonitor {
 public:
  ConnectionMonitor();
  ~ConnectionMonitor();  // Stop()

  ConnectionMonitor(const ConnectionMonitor&) = delete;
  ConnectionMonitor& operator=(const ConnectionMonitor&) = delete;

  void Start();
  void Stop();

  void Register(const std::shared_ptr<Connection>& connection);
  void Unregister(uint64_t id);
  // Calls connection->OnWritable() once `fd` can be written.
  bool WatchWritable(uint64_t id, int fd, bool already_watching);
  // Before `fd` is closed.
  void Unwatch(int fd);

 private:
  void Run();

  int epoll_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::unordered_map<uint64_t, std::weak_ptr<Connection>> connections_;  // guarded by mutex_
};

}  // namespace http
}  // namespace orderflow

#endif  // ORDERFLOW_HTTP_CONNECTION_H_
