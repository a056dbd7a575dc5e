#include "db_pool.h"

#include <poll.h>

#include <pqxx/pqxx>
#include <utility>

#include "db/sqlstate.h"
#include "log.h"

namespace orderflow {
namespace {

// libpqxx 6 throws connection and transaction-rollback failures without their SQLSTATE; give
// them the one PostgreSQL would report so that the classifier (db/sqlstate.h) sees all errors
// alike.
Status FromException(const std::exception& e) {
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    const std::string& state = sql->sqlstate();
    return Status::FromServerMessage(state, e.what());
  }
  if (dynamic_cast<const pqxx::too_many_connections*>(&e) != nullptr) {
    return Status::Error("53300", e.what());
  }
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr) {
    return Status::Error("08006", e.what());
  }
  if (dynamic_cast<const pqxx::deadlock_detected*>(&e) != nullptr) {
    return Status::Error("40P01", e.what());
  }
  if (dynamic_cast<const pqxx::serialization_failure*>(&e) != nullptr) {
    return Status::Error("40001", e.what());
  }
  if (dynamic_cast<const pqxx::statement_completion_unknown*>(&e) != nullptr) {
    return Status::Error("40003", e.what());
  }
  if (dynamic_cast<const pqxx::transaction_rollback*>(&e) != nullptr) {
    return Status::Error("40000", e.what());
  }
  return Status::Error("XX000", e.what());
}

}  // namespace

struct DbPool::Connection {
  explicit Connection(const std::string& url) : pq(url) {}

  // True when this connection, idle in the pool since its last call, is known to be dead:
  // libpq says so, or the server closed it or wrote to it. An idle session is sent nothing
  // except when the server ends it (a FATAL such as 57P01 on a restart, then the end of the
  // stream), so readable data is read at once: if libpq then finds the session over, it is.
  // One poll() without waiting, no round trip.
  bool DeadWhileIdle() {
    if (!pq.is_open()) return true;
    pollfd fd{};
    fd.fd = pq.sock();
    fd.events = POLLIN | POLLRDHUP;
    if (fd.fd < 0) return true;
    if (poll(&fd, 1, 0) <= 0) return false;  // nothing arrived (or EINTR: the call will tell)
    if ((fd.revents & (POLLHUP | POLLERR | POLLRDHUP | POLLNVAL)) != 0) return true;
    try {
      pq.get_notifs();  // reads what arrived; throws when the server ended the session
    } catch (const std::exception&) {
      return true;
    }
    return !pq.is_open();
  }

  pqxx::connection pq;
};

DbPool::DbPool(DbPoolOptions options) : options_(std::move(options)), slots_(options_.size) {
  free_.reserve(slots_.size());
  for (int i = static_cast<int>(slots_.size()) - 1; i >= 0; --i) free_.push_back(i);
}

DbPool::~DbPool() = default;

int DbPool::in_use() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(slots_.size() - free_.size());
}

int DbPool::waiting() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return waiting_;
}

int DbPool::Acquire() {
  std::unique_lock<std::mutex> lock(mutex_);
  ++waiting_;
  const bool got =
      available_.wait_for(lock, options_.acquire_timeout, [this] { return !free_.empty(); });
  --waiting_;
  if (!got) return -1;
  const int index = free_.back();
  free_.pop_back();
  return index;
}

void DbPool::Release(int index) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    free_.push_back(index);
  }
  available_.notify_one();
}

Status DbPool::Open(Slot* slot) {
  slot->connection.reset();
  try {
    slot->connection = std::make_unique<Connection>(options_.url);
  } catch (const std::exception& e) {
    return ConnectFailure(e.what());
  }
  try {
    if (options_.prepare) {
      const SqlCallDef* const defs = AllSqlCalls();
      for (size_t i = 0; i < kSqlCallCount; ++i) {
        if (defs[i].console != options_.console) continue;
        slot->connection->pq.prepare(defs[i].name, defs[i].sql);
      }
    }
  } catch (const std::exception& e) {
    slot->connection.reset();
    return FromException(e);
  }
  return Status::Ok();
}

Status DbPool::Execute(Slot* slot, SqlCall call, const std::vector<SqlValue>& params,
                       std::vector<SqlValue>* row) {
  row->clear();
  try {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const SqlValue& param : params) values.push_back(param ? param->c_str() : nullptr);

    const SqlCallDef& def = Definition(call);
    pqxx::nontransaction transaction(slot->connection->pq);
    const pqxx::result result =
        options_.prepare
            ? transaction.exec_prepared(def.name, pqxx::prepare::make_dynamic_params(values))
            : transaction.exec_params(def.sql, pqxx::prepare::make_dynamic_params(values));
    if (!result.empty()) {
      const pqxx::row first = result[0];
      row->reserve(first.size());
      for (const pqxx::field& field : first) {
        row->push_back(field.is_null() ? SqlValue()
                                       : SqlValue(std::string(field.c_str(), field.size())));
      }
    }
  } catch (const std::exception& e) {
    const Status status = FromException(e);
    if (LosesConnection(status.sqlstate())) slot->connection.reset();
    return status;
  }
  return Status::Ok();
}

Status DbPool::Run(SqlCall call, const std::vector<SqlValue>& params, std::vector<SqlValue>* row) {
  row->clear();
  const int index = Acquire();
  if (index < 0) {
    return Status::Error("53300", "no database connection became free within the acquire timeout");
  }
  Slot& slot = slots_[index];
  Status status;
  // A connection that died while idle (the server restarted, or ended the session) is replaced
  // before anything is sent on it.
  const bool reused = slot.connection != nullptr && !slot.connection->DeadWhileIdle();
  if (!reused) {
    if (slot.connection != nullptr)
      LogLine(LogLevel::kInfo, "db_connection_replaced").Str("why", "dead while idle");
    status = Open(&slot);
  }
  if (status.ok()) {
    status = Execute(&slot, call, params, row);
    // A reused connection can still have died unseen between the check and the send (or the
    // server's goodbye was still on its way). Such a call is tried once more on a fresh
    // connection: every orderflow function is idempotent, so even a statement that did reach
    // the old session is safe to send again. A fresh connection that fails is not retried:
    // the database is down, and the caller hears so at once.
    if (!status.ok() && reused && LosesConnection(status.sqlstate())) {
      LogLine(LogLevel::kInfo, "db_connection_replaced")
          .Str("why", "lost at first use")
          .Str("error", status.ToString());
      status = Open(&slot);
      if (status.ok()) status = Execute(&slot, call, params, row);
    }
  }
  Release(index);
  return status;
}

}  // namespace orderflow
