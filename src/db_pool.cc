#include "db_pool.h"

#include <pqxx/pqxx>
#include <utility>

namespace orderflow {
namespace {

// libpqxx 6 throws connection and transaction-rollback failures without their SQLSTATE; give
// them the one PostgreSQL would report so that the error map can treat all errors alike.
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

bool IsConnectionLoss(const Status& status) {
  const std::string& state = status.sqlstate();
  return state.compare(0, 2, "08") == 0 || state == "57P01" || state == "57P02" ||
         state == "57P03" || state == "53300";
}

}  // namespace

struct DbPool::Connection {
  explicit Connection(const std::string& url) : pq(url) {}
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

Status DbPool::Run(SqlCall call, const std::vector<SqlValue>& params, std::vector<SqlValue>* row) {
  row->clear();
  const int index = Acquire();
  if (index < 0) {
    return Status::Error("53300", "no database connection became free within the acquire timeout");
  }
  Slot& slot = slots_[index];
  Status status;
  try {
    if (slot.connection == nullptr || !slot.connection->pq.is_open()) {
      slot.connection = std::make_unique<Connection>(options_.url);
      if (options_.prepare) {
        const SqlCallDef* const defs = AllSqlCalls();
        for (size_t i = 0; i < kSqlCallCount; ++i) {
          slot.connection->pq.prepare(defs[i].name, defs[i].sql);
        }
      }
    }
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const SqlValue& param : params) values.push_back(param ? param->c_str() : nullptr);

    const SqlCallDef& def = Definition(call);
    pqxx::nontransaction transaction(slot.connection->pq);
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
    status = FromException(e);
    if (IsConnectionLoss(status)) slot.connection.reset();
  }
  Release(index);
  return status;
}

}  // namespace orderflow
