// Status: the result of a call across the database boundary. libpqxx exceptions stop at the
// database layer; everything above it sees a Status carrying the SQLSTATE and the message.
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
  static Status Error(std::string sqlstate, std::string message) {
    return Status(std::move(sqlstate), std::move(message));
  }

  bool ok() const { return sqlstate_.empty(); }
  const std::string& sqlstate() const { return sqlstate_; }
  const std::string& message() const { return message_; }

  std::string ToString() const { return ok() ? std::string("OK") : sqlstate_ + ": " + message_; }

 private:
  Status(std::string sqlstate, std::string message)
      : sqlstate_(std::move(sqlstate)), message_(std::move(message)) {}

  std::string sqlstate_;  // Empty when OK.
  std::string message_;
};

}  // namespace orderflow

#endif  // ORDERFLOW_STATUS_H_
