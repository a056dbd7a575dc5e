// Status: the result of a call across the database boundary. libpqxx exceptions stop at the
// database layer; everything above it sees a Status carrying the SQLSTATE, the primary message
// (a sentence that may be shown to a client when the error table says so) and the detail (the
// rest of the server's diagnostics: DETAIL, HINT, CONTEXT — for the log only).
#ifndef ORDERFLOW_STATUS_H_
#define ORDERFLOW_STATUS_H_

#include <string>
#include <utility>

namespace orderflow {

class Status {
 public:
  // An OK status.
  Status() = default;

  static Status Ok() { return Status(); }

  // A failure with the SQLSTATE that describes it. The front only ever reasons about SQLSTATEs:
  // database errors carry their own, and connection-level failures are given the SQLSTATE
  // PostgreSQL would use for them (class 08, 53300).
  static Status Error(std::string sqlstate, std::string message, std::string detail = "") {
    return Status(std::move(sqlstate), std::move(message), std::move(detail));
  }

  // A failure reported by the server as libpq formats it: "ERROR:  <sentence>\n" followed by
  // labelled DETAIL, HINT, QUERY, CONTEXT, LINE parts. The sentence (which may hold a newline
  // from client data) becomes the message, the whole text the detail. A SQLSTATE that is not
  // five characters (libpq had none to report) becomes XX000, internal_error: never OK.
  static Status FromServerMessage(std::string sqlstate, const std::string& text);

  bool ok() const { return sqlstate_.empty(); }
  const std::string& sqlstate() const { return sqlstate_; }
  const std::string& message() const { return message_; }
  const std::string& detail() const { return detail_; }

  // For logs: SQLSTATE, message and detail.
  std::string ToString() const;

 private:
  Status(std::string sqlstate, std::string message, std::string detail)
      : sqlstate_(std::move(sqlstate)), message_(std::move(message)), detail_(std::move(detail)) {}

  std::string sqlstate_;  // Empty when OK.
  std::string message_;
  std::string detail_;
};

}  // namespace orderflow

#endif  // ORDERFLOW_STATUS_H_
