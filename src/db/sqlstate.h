// The one classification of SQLSTATEs. The pool (which connections to drop and which calls to
// retry on a fresh one), the front's retries, the migrator at start-up (wait or give up), the
// metrics (what counts as a database error) and the error map (src/error_map.cc: kind → HTTP)
// all ask this table; no other code reasons about SQLSTATE text.
#ifndef ORDERFLOW_DB_SQLSTATE_H_
#define ORDERFLOW_DB_SQLSTATE_H_

#include <string>

#include "status.h"

namespace orderflow {

enum class ErrorKind {
  kInvalidArgument,  // 22023: raised only by our own argument checks; the message is for the client
  kNotFound,         // OF404: unknown order
  kConflict,         // OF409: orderId known with another amount or item
  kKeyReused,        // OF422: Idempotency-Key used with another request
  kTransient,        // 40001, 40P01: retried by the front (our functions are idempotent)
  kTimeout,          // 57014 statement_timeout, 55P03 lock_timeout: not retried
  kUnavailable,      // class 08, class 53, 57P01..57P03: the database is unreachable or restarting
  kConfiguration,    // class F0: the connection settings are wrong; waiting will not help
  kInternal,         // everything else, including any data exception of the server's own work
};

// The kind of a SQLSTATE (five characters; anything else is kInternal).
ErrorKind ClassifySqlState(const std::string& sqlstate);

// A mistake of the client (invalid argument, unknown order, conflict, reused key): answered
// 4xx and not counted as a database error.
bool IsClientError(ErrorKind kind);

// The connection that reported it cannot be used again (class 08, 57P01..57P03).
bool LosesConnection(const std::string& sqlstate);

// A failure to open a connection, from libpq's message: F0000 when the connection settings
// themselves are invalid (libpq refused them before reaching any server, e.g. sslmode=bogus,
// an unknown option, a malformed URI), otherwise 08001 (could not establish the connection).
Status ConnectFailure(const std::string& libpq_message);

}  // namespace orderflow

#endif  // ORDERFLOW_DB_SQLSTATE_H_
