#include "db/sqlstate.h"

#include <cstring>

namespace orderflow {
namespace {

struct Rule {
  const char* prefix;  // a full SQLSTATE, or a two-character class
  ErrorKind kind;
};

// First match wins; full codes come before the classes they belong to. Only 22023 of class 22
// is the client's: our functions raise it for their arguments. Every other data exception
// (22003 overflow, 22P02 bad text for a type, 23xxx constraints, ...) comes from the server's
// own work once the arguments were accepted, so it is internal (500), never a 400.
constexpr Rule kRules[] = {
    {"22023", ErrorKind::kInvalidArgument},  // invalid_parameter_value (our argument checks)
    {"OF404", ErrorKind::kNotFound},         // unknown order
    {"OF409", ErrorKind::kConflict},         // orderId known with another amount or item
    {"OF422", ErrorKind::kKeyReused},        // Idempotency-Key reused with another request
    {"40001", ErrorKind::kTransient},        // serialization_failure
    {"40P01", ErrorKind::kTransient},        // deadlock_detected
    {"57014", ErrorKind::kTimeout},          // query_canceled (statement_timeout)
    {"55P03", ErrorKind::kTimeout},          // lock_not_available (lock_timeout)
    {"57P01", ErrorKind::kUnavailable},      // admin_shutdown
    {"57P02", ErrorKind::kUnavailable},      // crash_shutdown
    {"57P03", ErrorKind::kUnavailable},      // cannot_connect_now (starting up)
    {"08", ErrorKind::kUnavailable},         // connection_exception
    {"53", ErrorKind::kUnavailable},         // insufficient_resources (too many connections)
    {"F0", ErrorKind::kConfiguration},       // config_file_error: our connection settings
};

bool Contains(const std::string& text, const char* part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

ErrorKind ClassifySqlState(const std::string& sqlstate) {
  if (sqlstate.size() != 5) return ErrorKind::kInternal;
  for (const Rule& rule : kRules) {
    if (sqlstate.compare(0, std::strlen(rule.prefix), rule.prefix) == 0) return rule.kind;
  }
  return ErrorKind::kInternal;
}

bool IsClientError(ErrorKind kind) {
  return kind == ErrorKind::kInvalidArgument || kind == ErrorKind::kNotFound ||
         kind == ErrorKind::kConflict || kind == ErrorKind::kKeyReused;
}

bool LosesConnection(const std::string& sqlstate) {
  return sqlstate.compare(0, 2, "08") == 0 || sqlstate == "57P01" || sqlstate == "57P02" ||
         sqlstate == "57P03";
}

Status ConnectFailure(const std::string& libpq_message) {
  // libpq reports these without a SQLSTATE, in English (we never call setlocale), before it
  // talks to any server: its connection string parser (fe-connect.c, conninfo_*) and its option
  // checks (connectOptions2, parse_int_param).
  const bool settings =
      Contains(libpq_message, "invalid connection option") ||
      Contains(libpq_message, "invalid URI") ||
      Contains(libpq_message, "in connection info string") || Contains(libpq_message, "in URI") ||
      Contains(libpq_message, "percent-encoded") ||
      Contains(libpq_message, "invalid integer value") ||
      Contains(libpq_message, "invalid port number") ||
      Contains(libpq_message, "could not match") ||
      (Contains(libpq_message, "invalid ") && Contains(libpq_message, " value: \"")) ||
      Contains(libpq_message, "invalid when SSL support is not compiled in");
  return Status::Error(settings ? "F0000" : "08001", libpq_message);
}

}  // namespace orderflow
