// DbPool: a fixed set of PostgreSQL connections (libpqxx) shared by the request threads.
//
// Each call runs one statement in autocommit mode: one round trip, no BEGIN/COMMIT. A
// connection that breaks (the database restarted) is dropped and a new one is opened by the
// next call that needs it, so the pool heals without a restart. A connection taken from the
// pool is checked first (one poll() of its socket, no round trip) and replaced when it died
// while idle; a call that still fails with a lost connection on a reused connection is sent
// once more on a fresh one. libpqxx exceptions end here; callers get a Status with a SQLSTATE.
#ifndef ORDERFLOW_DB_POOL_H_
#define ORDERFLOW_DB_POOL_H_

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sql_calls.h"
#include "status.h"

namespace orderflow {

// A value passed to or read from SQL; nullopt is SQL NULL.
using SqlValue = std::optional<std::string>;

struct DbPoolOptions {
  std::string url;
  int size = 8;
  std::chrono::milliseconds acquire_timeout{2000};
  bool prepare = true;   // named prepared statements; off for poolers that cannot keep them
  bool console = false;  // prepares the console's calls (sql_calls.h) instead of the API's
};

class DbPool {
 public:
  explicit DbPool(DbPoolOptions options);
  ~DbPool();

  DbPool(const DbPool&) = delete;
  DbPool& operator=(const DbPool&) = delete;

  // Runs `call` with `params` and stores the first row's fields in *row (left empty when the
  // statement returns no row).
  Status Run(SqlCall call, const std::vector<SqlValue>& params, std::vector<SqlValue>* row);

  int size() const { return static_cast<int>(slots_.size()); }
  int in_use() const;   // connections lent out right now
  int waiting() const;  // callers waiting for a connection right now

 private:
  struct Connection;  // a libpqxx connection (defined in db_pool.cc)
  struct Slot {
    std::unique_ptr<Connection> connection;
  };

  // Returns the index of a free slot, or -1 after acquire_timeout.
  int Acquire();
  void Release(int index);
  // Opens a new connection in `slot` (dropping any old one) and prepares the statements.
  Status Open(Slot* slot);
  // Runs one statement on the open connection of `slot`; drops it if the connection is lost.
  Status Execute(Slot* slot, SqlCall call, const std::vector<SqlValue>& params,
                 std::vector<SqlValue>* row);

  const DbPoolOptions options_;
  std::vector<Slot> slots_;
  mutable std::mutex mutex_;
  std::condition_variable available_;
  std::vector<int> free_;  // indices of free slots (guarded by mutex_)
  int waiting_ = 0;        // guarded by mutex_
};

}  // namespace orderflow

#endif  // ORDERFLOW_DB_POOL_H_
