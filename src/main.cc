// orderflow server: applies the embedded schema, then serves the HTTP API until SIGTERM/SIGINT.
//
//   orderflow             serve (configuration from the environment, see config.h)
//   orderflow --migrate   apply the schema and exit
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "admin/admin_server.h"
#include "api.h"
#include "config.h"
#include "db/sqlstate.h"
#include "db_pool.h"
#include "effects/executor.h"
#include "effects/http_client.h"
#include "http/worker_pool.h"
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

// Waits until `attempt` has run on its own thread or a stop signal arrives, whichever comes
// first. A connection attempt can block for PGCONNECT_TIMEOUT and a migration for as long as
// another server holds the schema lock; a stop signal must not wait for either. Returns the
// signal number, or 0 when `attempt` finished.
int RunUnlessStopped(const sigset_t& stop_signals, std::function<void()> attempt) {
  struct Shared {
    std::mutex mutex;
    bool done = false;
  };
  const auto shared = std::make_shared<Shared>();
  std::thread([shared, attempt = std::move(attempt)] {
    attempt();
    std::lock_guard<std::mutex> lock(shared->mutex);
    shared->done = true;
  }).detach();
  const timespec slice{0, 20 * 1000 * 1000};
  while (true) {
    {
      std::lock_guard<std::mutex> lock(shared->mutex);
      if (shared->done) return 0;
    }
    const int signal_number = sigtimedwait(&stop_signals, nullptr, &slice);
    if (signal_number > 0) return signal_number;
  }
}

// Applies the schema, waiting up to 30 s for a database that is unreachable or still starting.
// Returns 0 when the schema is ready, else the exit status: 1 when it failed or cannot work
// (a configuration error is not waited for), 1 also when a stop signal ended the wait.
int Migrate(const orderflow::Config& config, const sigset_t& stop_signals) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (true) {
    const auto applied = std::make_shared<std::vector<std::string>>();
    const auto status = std::make_shared<orderflow::Status>();
    // Copies: the attempt's thread may outlive this frame when a stop signal ends the wait.
    const int stopped = RunUnlessStopped(stop_signals, [config, applied, status] {
      *status = orderflow::ApplySchema(config.migration_database_url, applied.get());
      // The requests' own URL, when it is another: only its settings are judged here (it may
      // name a pooler that is still starting; the pool waits for that by itself).
      if (status->ok() && config.database_url != config.migration_database_url) {
        const orderflow::Status own = orderflow::CheckConnection(config.database_url);
        if (orderflow::ClassifySqlState(own.sqlstate()) == orderflow::ErrorKind::kConfiguration) {
          *status = own;
        }
      }
    });
    if (stopped != 0) {
      LogLine(LogLevel::kError, "stopped_before_ready").Str("signal", strsignal(stopped));
      return 1;
    }
    if (status->ok()) {
      std::string list;
      for (const std::string& version : *applied) list += (list.empty() ? "" : ",") + version;
      LogLine(LogLevel::kInfo, "schema_ready").Str("applied", list);
      return 0;
    }
    const orderflow::ErrorKind kind = orderflow::ClassifySqlState(status->sqlstate());
    if (kind == orderflow::ErrorKind::kConfiguration) {
      LogLine(LogLevel::kError, "bad_database_url")
          .Str("error", status->message())
          .Str("hint",
               "the connection settings are invalid; fix DATABASE_URL or "
               "MIGRATION_DATABASE_URL (waiting will not help)");
      return 1;
    }
    if (kind != orderflow::ErrorKind::kUnavailable || std::chrono::steady_clock::now() > deadline) {
      LogLine(LogLevel::kError, "schema_failed").Str("error", status->ToString());
      return 1;
    }
    LogLine(LogLevel::kWarn, "database_unreachable").Str("error", status->message());
    const timespec pause{0, 500 * 1000 * 1000};
    const int signal_number = sigtimedwait(&stop_signals, nullptr, &pause);
    if (signal_number > 0) {
      LogLine(LogLevel::kError, "stopped_before_ready").Str("signal", strsignal(signal_number));
      return 1;
    }
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

  if (const int failed = Migrate(config, stop_signals); failed != 0) {
    // Not a return: a migration still running on its thread must not meet static destructors.
    std::_Exit(failed);
  }
  if (migrate_only) return 0;

  orderflow::DbPool pool({config.database_url, config.db_pool_size,
                          std::chrono::milliseconds(config.db_acquire_timeout_ms),
                          config.db_prepare});
  // /health and /metrics run on a connection of their own, so they answer while every pooled
  // connection is busy with requests.
  orderflow::DbPool ops_pool({config.database_url, 1,
                              std::chrono::milliseconds(config.db_acquire_timeout_ms),
                              config.db_prepare});
  // The operators' console (ADMIN_PORT): its own endpoint and its own two connections, as the
  // operator's login, so that nothing it runs competes with requests for a pooled connection.
  std::unique_ptr<orderflow::DbPool> admin_pool;
  if (config.admin_port >= 0) {
    orderflow::DbPoolOptions options{config.admin_database_url, 2,
                                     std::chrono::milliseconds(config.db_acquire_timeout_ms),
                                     config.db_prepare};
    options.console = true;
    admin_pool = std::make_unique<orderflow::DbPool>(options);
    // The console acts as an operator, and only as one: a login outside orderflow_operator
    // (or inside orderflow_api as well) is a configuration error, told at start.
    std::vector<orderflow::SqlValue> row;
    const orderflow::Status role = admin_pool->Run(orderflow::SqlCall::kConsoleRole, {}, &row);
    if (!role.ok() || row.empty() || row[0] != std::optional<std::string>("t")) {
      LogLine(LogLevel::kError, "bad_admin_database_url")
          .Str("error", role.ok() ? "the login is not a member of orderflow_operator, or is also "
                                    "one of orderflow_api"
                                  : role.ToString())
          .Str("hint", "ADMIN_DATABASE_URL must name a login IN ROLE orderflow_operator only");
      return 2;
    }
  }
  const orderflow::RequestValidator validator;
  orderflow::Metrics metrics;
  orderflow::Api api(&pool, &validator, &metrics);
  orderflow::Api ops_api(&ops_pool, &validator, &metrics, &pool);
  // Provider calls (db/functions/45_effects.sql): one libcurl thread carries them all; their
  // reports run on reporter threads of their own, so a report never queues behind requests.
  // Webhook deliveries go out with or without a key; payment calls only with one: only then
  // are they leased inline (api, server) and claimed by the janitor.
  orderflow::effects::HttpClient provider_client;
  orderflow::http::WorkerPool reporters("report", config.db_pool_size, 1 << 20,
                                        std::chrono::hours(24));
  const bool has_key = !config.provider_api_key.empty();
  orderflow::effects::EffectExecutor executor(&provider_client, &reporters, &api, &metrics,
                                              config.provider_api_key, config.server_id);
  if (has_key) {
    api.SetEffectOwner(config.server_id,
                       config.provider_api_key.rfind("sk_test_", 0) == 0 ? "test" : "live");
  }
  provider_client.Start();
  orderflow::HttpServer server(config, &api, &ops_api, &metrics);
  if (has_key) server.SetEffectExecutor(&executor);
  try {
    server.Start();
  } catch (const std::exception& e) {
    LogLine(LogLevel::kError, "listen_failed").Str("error", e.what()).Int("port", config.port);
    return 1;
  }
  std::unique_ptr<orderflow::admin::AdminServer> admin;
  if (admin_pool) {
    admin = std::make_unique<orderflow::admin::AdminServer>(config, admin_pool.get());
    try {
      admin->Start();
    } catch (const std::exception& e) {
      LogLine(LogLevel::kError, "admin_listen_failed")
          .Str("error", e.what())
          .Int("port", config.admin_port);
      server.Stop(std::chrono::milliseconds(0));
      return 1;
    }
    LogLine(LogLevel::kInfo, "admin_listening")
        .Str("bind", config.admin_bind)
        .Int("port", admin->port());
  }
  orderflow::Janitor janitor(
      [&api](orderflow::SqlCall call, const std::vector<orderflow::SqlValue>& params,
             std::vector<orderflow::SqlValue>* row) { return api.Call(call, params, row); },
      &metrics, std::chrono::milliseconds(config.janitor_interval_ms), config.janitor_batch);
  janitor.SetEffectExecutor(&executor, static_cast<size_t>(config.effects_in_flight), has_key);
  if (config.janitor_interval_ms > 0) janitor.Start();
  LogLine(LogLevel::kInfo, "listening")
      .Int("port", server.port())
      .Int("httpThreads", config.http_threads)
      .Int("dbPoolSize", config.db_pool_size)
      .Int("janitorIntervalMs", config.janitor_interval_ms)
      .Str("serverId", config.server_id)
      .Str("providerKey", has_key ? "set" : "unset");

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  LogLine(LogLevel::kInfo, "stopping").Str("signal", strsignal(signal_number));
  if (admin) admin->Stop(std::chrono::milliseconds(config.shutdown_timeout_ms));
  const int unanswered = server.Stop(std::chrono::milliseconds(config.shutdown_timeout_ms));
  janitor.Stop();
  provider_client.Stop();  // calls still in flight end as "stopping"; their leases expire
  reporters.Stop();
  LogLine(LogLevel::kInfo, "stopped").Int("unanswered", unanswered);
  return 0;
}
