// orderflow server: applies the embedded schema, then serves the HTTP API until SIGTERM/SIGINT.
//
//   orderflow             serve (configuration from the environment, see config.h)
//   orderflow --migrate   apply the schema and exit
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "api.h"
#include "config.h"
#include "db_pool.h"
#include "http_server.h"
#include "janitor.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "validation.h"

namespace {

using orderflow::LogLevel;
using orderflow::LogLine;

// libpq reads these when a connection opens; DATABASE_URL settings take precedence.
void SetConnectionDefaults(const orderflow::Config& config) {
  const std::string options =
      "-c statement_timeout=" + std::to_string(config.statement_timeout_ms) +
      " -c lock_timeout=" + std::to_string(config.lock_timeout_ms);
  setenv("PGOPTIONS", options.c_str(), 0);
  setenv("PGCONNECT_TIMEOUT", "3", 0);
  setenv("PGAPPNAME", "orderflow", 0);
}

// Applies the schema, retrying for a while if the database is still starting.
bool Migrate(const orderflow::Config& config) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (true) {
    std::vector<std::string> applied;
    const orderflow::Status status =
        orderflow::ApplySchema(config.migration_database_url, &applied);
    if (status.ok()) {
      std::string list;
      for (const std::string& version : applied) list += (list.empty() ? "" : ",") + version;
      LogLine(LogLevel::kInfo, "schema_ready").Str("applied", list);
      return true;
    }
    const bool unreachable =
        status.sqlstate().compare(0, 2, "08") == 0 || status.sqlstate().compare(0, 3, "57P") == 0;
    if (!unreachable || std::chrono::steady_clock::now() > deadline) {
      LogLine(LogLevel::kError, "schema_failed").Str("error", status.ToString());
      return false;
    }
    LogLine(LogLevel::kWarn, "database_unreachable").Str("error", status.message());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool migrate_only = argc > 1 && std::strcmp(argv[1], "--migrate") == 0;

  orderflow::Config config;
  const std::string error =
      orderflow::LoadConfig([](const char* name) { return std::getenv(name); },
                            std::thread::hardware_concurrency(), &config);
  if (!error.empty()) {
    LogLine(LogLevel::kError, "bad_config").Str("error", error);
    return 2;
  }
  orderflow::SetLogLevel(config.log_level);
  SetConnectionDefaults(config);

  // Signals are taken by sigwait below; block them before any thread starts so that none of
  // Pistache's or libpq's threads is interrupted by them. A peer closing early must not kill us.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (!Migrate(config)) return 1;
  if (migrate_only) return 0;

  orderflow::DbPool pool({config.database_url, config.db_pool_size,
                          std::chrono::milliseconds(config.db_acquire_timeout_ms),
                          config.db_prepare});
  // /health and /metrics run on a connection of their own, so they answer while every pooled
  // connection is busy with requests.
  orderflow::DbPool ops_pool({config.database_url, 1,
                              std::chrono::milliseconds(config.db_acquire_timeout_ms),
                              config.db_prepare});
  const orderflow::RequestValidator validator;
  orderflow::Metrics metrics;
  orderflow::Api api(&pool, &validator, &metrics);
  orderflow::Api ops_api(&ops_pool, &validator, &metrics, &pool);
  orderflow::HttpServer server(config, &api, &ops_api, &metrics);
  try {
    server.Start();
  } catch (const std::exception& e) {
    LogLine(LogLevel::kError, "listen_failed").Str("error", e.what()).Int("port", config.port);
    return 1;
  }
  orderflow::Janitor janitor(
      [&api](orderflow::SqlCall call, const std::vector<orderflow::SqlValue>& params,
             std::vector<orderflow::SqlValue>* row) { return api.Call(call, params, row); },
      &metrics, std::chrono::milliseconds(config.janitor_interval_ms), config.janitor_batch);
  if (config.janitor_interval_ms > 0) janitor.Start();
  LogLine(LogLevel::kInfo, "listening")
      .Int("port", server.port())
      .Int("httpThreads", config.http_threads)
      .Int("dbPoolSize", config.db_pool_size)
      .Int("janitorIntervalMs", config.janitor_interval_ms);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  LogLine(LogLevel::kInfo, "stopping").Str("signal", strsignal(signal_number));
  const int unanswered = server.Stop(std::chrono::milliseconds(config.shutdown_timeout_ms));
  janitor.Stop();
  LogLine(LogLevel::kInfo, "stopped").Int("unanswered", unanswered);
  return 0;
}
