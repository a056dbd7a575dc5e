// Config: the server's settings, read from the environment (DESIGN.md §7).
#ifndef ORDERFLOW_CONFIG_H_
#define ORDERFLOW_CONFIG_H_

#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace orderflow {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

struct Config {
  int port = 3000;  // PORT
  std::string bind_address =
      "0.0.0.0";             // BIND_ADDRESS: IPv4 address to listen on (127.0.0.1 behind a proxy)
  std::string database_url;  // DATABASE_URL (required): the role requests run as
  std::string
      migration_database_url;  // MIGRATION_DATABASE_URL: the schema owner (default: DATABASE_URL)
  int db_pool_size = 0;        // DB_POOL_SIZE; 0 means "size to the machine"
  int http_threads = 0;        // HTTP_THREADS; 0 means "size to the machine"
  int janitor_interval_ms = 1000;    // JANITOR_INTERVAL_MS; 0 disables the janitor
  int janitor_batch = 16;            // JANITOR_BATCH
  int statement_timeout_ms = 5000;   // STATEMENT_TIMEOUT_MS
  int lock_timeout_ms = 2000;        // LOCK_TIMEOUT_MS
  int db_acquire_timeout_ms = 2000;  // DB_ACQUIRE_TIMEOUT_MS: longest wait for a pooled connection
  int shutdown_timeout_ms = 10000;   // SHUTDOWN_TIMEOUT_MS: longest wait for in-flight requests
  bool db_prepare = true;            // DB_PREPARE=0 for transaction-mode poolers that lack it
  LogLevel log_level = LogLevel::kInfo;  // LOG_LEVEL: debug, info, warn, error
  // STRIPE_API_KEY: the payment provider's secret key. Never logged, never sent to the database.
  // Without it the server sends no payment call (another server, or a restart with it, does);
  // it still sends webhook deliveries, which never carry the key.
  std::string provider_api_key;
  std::string server_id;        // SERVER_ID: who holds an effect's lease (default host:pid)
  int effects_in_flight = 512;  // EFFECTS_IN_FLIGHT: provider calls the janitor keeps going
  // The operators' console (src/admin/): off unless ADMIN_PORT is set.
  int admin_port = -1;                   // ADMIN_PORT (0 picks a free one; -1: no console)
  std::string admin_bind = "127.0.0.1";  // ADMIN_BIND: IPv4 address (loopback unless told)
  std::string admin_token;               // ADMIN_TOKEN: at least 32 characters; never logged
  std::string admin_database_url;        // ADMIN_DATABASE_URL: a member of orderflow_operator
  std::vector<std::string> admin_hosts;  // ADMIN_HOSTS: Host names accepted besides loopback
};

// The shortest ADMIN_TOKEN accepted.
constexpr size_t kMinAdminTokenLength = 32;

// Reads the configuration through `getenv`. Returns an empty string on success, else a sentence
// naming the variable that is wrong. Zero sizes are replaced by values sized to `cores`.
std::string LoadConfig(const std::function<const char*(const char*)>& getenv, unsigned cores,
                       Config* config);

}  // namespace orderflow

#endif  // ORDERFLOW_CONFIG_H_
