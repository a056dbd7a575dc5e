#include "retry.h"

#include <random>

#include "db/sqlstate.h"

namespace orderflow {

std::chrono::milliseconds RetryDelay(const RetryPolicy& policy, int retry, double unit) {
  const double full = static_cast<double>(policy.base_delay.count()) * (1 << (retry - 1));
  return std::chrono::milliseconds(static_cast<int64_t>(full * (0.5 + 0.5 * unit)));
}

Status RetryTransient(const std::function<Status()>& call, const RetryPolicy& policy,
                      const std::function<void(const Status&)>& on_retry,
                      const std::function<void(std::chrono::milliseconds)>& sleep) {
  thread_local std::mt19937 engine{std::random_device{}()};
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int retry = 1;; ++retry) {
    Status status = call();
    if (status.ok() || retry > policy.max_retries ||
        ClassifySqlState(status.sqlstate()) != ErrorKind::kTransient) {
      return status;
    }
    on_retry(status);
    sleep(RetryDelay(policy, retry, unit(engine)));
  }
}

}  // namespace orderflow
