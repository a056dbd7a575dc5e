// Retrying transient database errors (DESIGN.md §5: 40001 and 40P01 are retried by the front
// up to 3 times, with exponential backoff and jitter, then answered 503). Safe because every
// orderflow function is idempotent.
#ifndef ORDERFLOW_RETRY_H_
#define ORDERFLOW_RETRY_H_

#include <chrono>
#include <functional>
#include <string>

#include "status.h"

namespace orderflow {

struct RetryPolicy {
  int max_retries = 3;
  std::chrono::milliseconds base_delay{10};  // delay before retry n: base * 2^(n-1) * [0.5, 1)
};

// Calls `call` until it succeeds, fails with a SQLSTATE that is not ErrorKind::kTransient
// (db/sqlstate.h), or has been retried max_retries times. `on_retry` sees each retried failure;
// `sleep` waits between tries (tests pass their own).
Status RetryTransient(const std::function<Status()>& call, const RetryPolicy& policy,
                      const std::function<void(const Status&)>& on_retry,
                      const std::function<void(std::chrono::milliseconds)>& sleep);

// The delay before retry `retry` (1-based) with jitter fraction `unit` in [0, 1).
std::chrono::milliseconds RetryDelay(const RetryPolicy& policy, int retry, double unit);

}  // namespace orderflow

#endif  // ORDERFLOW_RETRY_H_
