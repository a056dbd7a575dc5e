#include "config.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>

namespace orderflow {
namespace {

// Parses an integer variable in [min, max]; leaves *out alone when the variable is unset.
std::string ReadInt(const std::function<const char*(const char*)>& getenv, const char* name,
                    long min, long max, int* out) {
  const char* const raw = getenv(name);
  if (raw == nullptr || *raw == '\0') return "";
  errno = 0;
  char* end = nullptr;
  const long value = std::strtol(raw, &end, 10);
  if (errno != 0 || end == raw || *end != '\0' || value < min || value > max) {
    return std::string(name) + " must be an integer from " + std::to_string(min) + " to " +
           std::to_string(max);
  }
  *out = static_cast<int>(value);
  return "";
}

// ADMIN_*: the console. Nothing of it is read unless ADMIN_PORT is set; then the token and the
// operator's database URL are required (no token, no console).
std::string LoadAdminConfig(const std::function<const char*(const char*)>& getenv, Config* c) {
  const char* const port = getenv("ADMIN_PORT");
  if (port == nullptr || *port == '\0') return "";
  if (std::string error = ReadInt(getenv, "ADMIN_PORT", 0, 65535, &c->admin_port); !error.empty()) {
    return error;
  }
  if (const char* const bind = getenv("ADMIN_BIND"); bind != nullptr && *bind != '\0') {
    in_addr parsed{};
    if (inet_pton(AF_INET, bind, &parsed) != 1) return "ADMIN_BIND must be an IPv4 address";
    c->admin_bind = bind;
  }
  const char* const token = getenv("ADMIN_TOKEN");
  if (token == nullptr || *token == '\0') return "ADMIN_TOKEN is required when ADMIN_PORT is set";
  c->admin_token = token;
  if (c->admin_token.size() < kMinAdminTokenLength) {
    return "ADMIN_TOKEN must be at least " + std::to_string(kMinAdminTokenLength) + " characters";
  }
  for (const char ch : c->admin_token) {
    if (ch <= ' ' || ch == 0x7f) return "ADMIN_TOKEN must be printable, without white space";
  }
  const char* const url = getenv("ADMIN_DATABASE_URL");
  if (url == nullptr || *url == '\0') {
    return "ADMIN_DATABASE_URL is required when ADMIN_PORT is set (a login that is a member of "
           "orderflow_operator)";
  }
  c->admin_database_url = url;
  if (const char* const hosts = getenv("ADMIN_HOSTS"); hosts != nullptr) {
    const std::string list(hosts);
    size_t start = 0;
    while (start <= list.size()) {
      size_t end = list.find(',', start);
      if (end == std::string::npos) end = list.size();
      std::string name = list.substr(start, end - start);
      name.erase(0, name.find_first_not_of(" \t"));
      name.erase(name.find_last_not_of(" \t") + 1);
      if (!name.empty()) {
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
        c->admin_hosts.push_back(name);
      }
      start = end + 1;
    }
  }
  return "";
}

}  // namespace

std::string LoadConfig(const std::function<const char*(const char*)>& getenv, unsigned cores,
                       Config* config) {
  Config c;
  const char* const url = getenv("DATABASE_URL");
  if (url == nullptr || *url == '\0') return "DATABASE_URL is required";
  c.database_url = url;
  const char* const migration_url = getenv("MIGRATION_DATABASE_URL");
  c.migration_database_url =
      (migration_url != nullptr && *migration_url != '\0') ? migration_url : c.database_url;

  if (const char* const bind = getenv("BIND_ADDRESS"); bind != nullptr && *bind != '\0') {
    in_addr parsed{};
    if (inet_pton(AF_INET, bind, &parsed) != 1) return "BIND_ADDRESS must be an IPv4 address";
    c.bind_address = bind;
  }

  for (const auto& [name, min, max, field] :
       {std::make_tuple("PORT", 0L, 65535L, &c.port),
        std::make_tuple("DB_POOL_SIZE", 0L, 1000L, &c.db_pool_size),
        std::make_tuple("HTTP_THREADS", 0L, 1000L, &c.http_threads),
        std::make_tuple("JANITOR_INTERVAL_MS", 0L, 3600000L, &c.janitor_interval_ms),
        std::make_tuple("JANITOR_BATCH", 1L, 1000L, &c.janitor_batch),
        std::make_tuple("STATEMENT_TIMEOUT_MS", 0L, 3600000L, &c.statement_timeout_ms),
        std::make_tuple("LOCK_TIMEOUT_MS", 0L, 3600000L, &c.lock_timeout_ms),
        std::make_tuple("DB_ACQUIRE_TIMEOUT_MS", 1L, 600000L, &c.db_acquire_timeout_ms),
        std::make_tuple("SHUTDOWN_TIMEOUT_MS", 0L, 600000L, &c.shutdown_timeout_ms),
        std::make_tuple("EFFECTS_IN_FLIGHT", 1L, 100000L, &c.effects_in_flight)}) {
    std::string error = ReadInt(getenv, name, min, max, field);
    if (!error.empty()) return error;
  }

  if (const char* const prepare = getenv("DB_PREPARE"); prepare != nullptr && *prepare != '\0') {
    const std::string value(prepare);
    if (value == "1" || value == "true" || value == "on") {
      c.db_prepare = true;
    } else if (value == "0" || value == "false" || value == "off") {
      c.db_prepare = false;
    } else {
      return "DB_PREPARE must be 1 or 0";
    }
  }

  if (const char* const level = getenv("LOG_LEVEL"); level != nullptr && *level != '\0') {
    const std::string value(level);
    if (value == "debug") {
      c.log_level = LogLevel::kDebug;
    } else if (value == "info") {
      c.log_level = LogLevel::kInfo;
    } else if (value == "warn") {
      c.log_level = LogLevel::kWarn;
    } else if (value == "error") {
      c.log_level = LogLevel::kError;
    } else {
      return "LOG_LEVEL must be one of debug, info, warn, error";
    }
  }

  if (const char* const key = getenv("STRIPE_API_KEY"); key != nullptr && *key != '\0') {
    const std::string value(key);
    if (value.find_first_of(" \t\r\n") != std::string::npos) {
      return "STRIPE_API_KEY must not contain white space";
    }
    c.provider_api_key = value;
  }
  if (const char* const id = getenv("SERVER_ID"); id != nullptr && *id != '\0') {
    c.server_id = id;
    if (c.server_id.size() > 200) return "SERVER_ID must be at most 200 characters";
  } else {
    char host[256] = {0};
    if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
    c.server_id = std::string(host[0] ? host : "orderflow") + ":" + std::to_string(getpid());
  }

  if (std::string error = LoadAdminConfig(getenv, &c); !error.empty()) return error;

  // Handlers block on the database, so one HTTP thread per pooled connection keeps every
  // connection busy without letting requests queue for a connection.
  const int machine = static_cast<int>(std::max(1U, cores));
  if (c.db_pool_size == 0) c.db_pool_size = std::max(4, 4 * machine);
  if (c.http_threads == 0) c.http_threads = c.db_pool_size;
  *config = c;
  return "";
}

}  // namespace orderflow
