// WebhookReceiver: the consumer end of the webhook tests (tests/sim/webhook_sim.py), started on
// loopback for a test. It verifies every delivery's Standard Webhooks signature with the
// endpoint's secrets and counts deliveries per webhook-id, so the tests prove delivery where the
// consumer sees it, not from our own tables. Its state file outlives it: Stop() then Restart()
// is a receiver that was really down (connection refused) and still remembers what it got.
#ifndef ORDERFLOW_TESTS_E2E_WEBHOOK_RECEIVER_H_
#define ORDERFLOW_TESTS_E2E_WEBHOOK_RECEIVER_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace orderflow_test {

// What the receiver counted for one endpoint (GET /_sim/deliveries, tests/sim/README.md).
struct WebhookDeliveries {
  struct IdCount {
    long attempts = 0;             // deliveries of this webhook-id that verified
    long accepted = 0;             // of those, answered 2xx
    std::string type;              // the event's "type"
    std::string order_id;          // its data.orderId, "" when absent
    std::vector<long> timestamps;  // the webhook-timestamp of every verified attempt
  };

  long attempts = 0;        // verified deliveries (the sum over ids)
  long accepted = 0;        // verified and answered 2xx
  long bad_signatures = 0;  // refused with 400: bad or missing signature, stale timestamp, body
  std::map<std::string, IdCount> ids;  // by webhook-id
  std::vector<double> arrivals;        // unix seconds of every delivery, good or bad
  std::string json;                    // the receiver's answer as it was

  // Ids accepted more than once: the duplicates the consumer saw.
  long Duplicates() const;
};

class WebhookReceiver {
 public:
  WebhookReceiver() = default;
  ~WebhookReceiver();  // Stop(), and removes its directory

  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  // Starts it on a free port with a fresh state file in a new temporary directory, and waits
  // until it answers.
  void Start();
  // SIGTERM, and waits until it exited: from then on connections to port() are refused.
  void Stop();
  // SIGKILL, and waits. The state file holds every count up to the last delivery.
  void Kill();
  // Starts it again on the same port with the same state file: endpoints and counts are kept,
  // faults are not.
  void Restart();
  bool running() const { return pid_ > 0; }

  uint16_t port() const { return port_; }
  std::string BaseUrl() const;                     // http://127.0.0.1:<port>
  std::string Url(const std::string& name) const;  // http://127.0.0.1:<port>/hooks/<name>
  const std::string& dir() const { return dir_; }  // its log is dir()/log

  // Registers endpoint `name` with the secrets ("whsec_...") it accepts signatures of, or
  // replaces them (after a rotation).
  void AddEndpoint(const std::string& name, const std::vector<std::string>& secrets);
  // POST /_sim/faults with `json`, e.g.
  // {"endpoint":"a","status":429,"retryAfter":"2","times":3} or {"endpoint":"a","reset":true};
  // {"endpoint":"a"} clears.
  void SetFault(const std::string& json);
  void ClearFault(const std::string& name);
  // Forgets every count and fault; endpoints stay registered.
  void Reset();

  WebhookDeliveries Deliveries(const std::string& name) const;
  // Polls Deliveries(name) until `done` holds or `timeout` passed; returns the last one read.
  WebhookDeliveries WaitForDeliveries(const std::string& name,
                                      const std::function<bool(const WebhookDeliveries&)>& done,
                                      std::chrono::milliseconds timeout) const;

 private:
  void Launch(uint16_t port);

  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string dir_;
};

// The Standard Webhooks signature "v1,<base64>" of one delivery: HMAC-SHA256 over
// "<id>.<timestamp>.<body>" keyed with the base64 decoding of `secret` after "whsec_".
std::string SignWebhook(const std::string& secret, const std::string& id, long timestamp,
                        const std::string& body);

}  // namespace orderflow_test

#endif  // ORDERFLOW_TESTS_E2E_WEBHOOK_RECEIVER_H_
