// ProviderSimulator: our own payment provider simulator (tests/sim/stripe_sim.py, a subset of
// Stripe's API with its idempotency semantics and fault knobs), started on loopback for a test.
// What it counts — charges and refunds per order — is how the tests prove "exactly once" at
// the provider: counted there, not inferred from our own tables.
#ifndef ORDERFLOW_TESTS_E2E_SIMULATOR_H_
#define ORDERFLOW_TESTS_E2E_SIMULATOR_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace orderflow_test {

struct ProviderCounts {
  long charges = 0;  // PaymentIntents that succeeded
  long refunds = 0;  // refunds created
};

class ProviderSimulator {
 public:
  ProviderSimulator() = default;
  ~ProviderSimulator();  // Stop()

  ProviderSimulator(const ProviderSimulator&) = delete;
  ProviderSimulator& operator=(const ProviderSimulator&) = delete;

  // Starts it on a free port and waits until it answers.
  void Start();
  void Stop();

  uint16_t port() const { return port_; }
  std::string BaseUrl() const;  // http://127.0.0.1:<port>

  // POST /_sim/faults with `json` (see tests/sim/README.md); "{}" clears every fault.
  void SetFaults(const std::string& json);
  // Charges and refunds the simulator counted for one order, and in total.
  ProviderCounts CountsFor(const std::string& order_id) const;
  ProviderCounts Totals() const;
  std::string CountsJson() const;
  // Every /v1 request the simulator received (replays, 4xx and injected errors included).
  long Requests() const;
  // When each /v1 request about the order arrived (the simulator's t_ms), in arrival order.
  std::vector<double> RequestTimes(const std::string& order_id) const;

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string dir_;
};

}  // namespace orderflow_test

#endif  // ORDERFLOW_TESTS_E2E_SIMULATOR_H_
