// The one table that turns a SQLSTATE into an HTTP answer (DESIGN.md §5). Nothing else in the
// front decides an HTTP status from a database error.
#ifndef ORDERFLOW_ERROR_MAP_H_
#define ORDERFLOW_ERROR_MAP_H_

#include <string>

namespace orderflow {

struct HttpErrorClass {
  int http_status;    // 400, 404, 409, 422, 500, 503
  const char* code;   // stable machine-readable code for the "code" field of the error body
  bool show_message;  // true: the database's message is a sentence meant for the client
  bool retry;         // true: transient; the front retries the call before answering
};

// Classifies a SQLSTATE (five characters; anything else is treated as unknown → 500).
HttpErrorClass ClassifySqlState(const std::string& sqlstate);

}  // namespace orderflow

#endif  // ORDERFLOW_ERROR_MAP_H_
