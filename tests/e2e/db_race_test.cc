// Races between real connections to the database, with the interleaving forced instead of
// hoped for. A third "gate" connection holds a row lock that the first call needs half-way
// through (the inventory row of the order's item, which reserve and release update; or an
// outbox row that prune deletes), so the first call stops INSIDE the function while it holds the
// workflow's row lock. The second call is then started, and the test proves from
// pg_blocking_pids() that it waits for the first — and that it has not written any effect yet,
// i.e. it waits at the workflow lock, before it read the state it decides on — or, where the
// design says it must not wait, that it answered while the first still held its lock. Only then
// does the gate let the first call go; both answers and everything in the database are checked.
//
// Every entry point that can change a workflow (process_order, cancel_order, resume_due, prune,
// report_effect)
// takes the workflow's row lock before it reads the state it decides on; only a finished
// workflow is answered from the lock-free read (db/functions/40_process_order.sql).
#include <chrono>
#include <future>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "harness.h"

namespace orderflow_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// How long a call may take to reach the lock it is meant to wait for, and how long a call that
// must not wait may take to answer. Generous (two cores are shared by several builds), and
// neither weakens the proof: the lock a call must not wait for is held until after it answered.
constexpr milliseconds kReachLock = seconds(20);
constexpr milliseconds kNoWaitAnswer = seconds(20);

// The answer of one SQL call: its value, or the error it raised.
struct Outcome {
  std::string value;     // first column of the first row, as text ("" for null)
  std::string sqlstate;  // "" when the call succeeded
  std::string message;

  // The "status" of a workflow state document ("" when the call failed).
  std::string Status() const {
    if (!sqlstate.empty() || value.empty()) return "";
    const rapidjson::Document state = ParseJson(value);
    return state.IsObject() && state.HasMember("status") && state["status"].IsString()
               ? state["status"].GetString()
               : "";
  }
  std::string Describe() const {
    return sqlstate.empty() ? value : "SQLSTATE " + sqlstate + ": " + message;
  }
};

// One real connection to the test database as the owner, in autocommit unless Begin() is
// called. Lock waits are bounded, so that a regression makes a test fail instead of hang.
class Session {
 public:
  Session() : connection_(TestDatabaseUrl()), work_(connection_) {
    work_.exec("SET lock_timeout = '30s'");
    work_.exec("SET statement_timeout = '60s'");
    pid_ = work_.exec1("SELECT pg_backend_pid()")[0].as<int>();
  }

  int pid() const { return pid_; }

  Outcome Run(const std::string& sql, const std::vector<std::string>& params = {}) {
    Outcome outcome;
    try {
      const pqxx::result result =
          work_.exec_params(sql, pqxx::prepare::make_dynamic_params(params));
      if (!result.empty() && !result[0].empty() && !result[0][0].is_null()) {
        outcome.value = result[0][0].c_str();
      }
    } catch (const pqxx::sql_error& error) {
      outcome.sqlstate = error.sqlstate().empty() ? "?" : error.sqlstate();
      outcome.message = error.what();
    } catch (const std::exception& error) {
      outcome.sqlstate = "?";
      outcome.message = error.what();
    }
    return outcome;
  }

  // Runs a statement that must succeed (setup, gates); fails the test otherwise.
  void Must(const std::string& sql, const std::vector<std::string>& params = {}) {
    const Outcome outcome = Run(sql, params);
    ASSERT_EQ(outcome.sqlstate, "") << sql << ": " << outcome.message;
  }

 private:
  pqxx::connection connection_;
  pqxx::nontransaction work_;
  int pid_ = 0;
};

// One call running on its own thread, so that the test can watch it wait.
class Background {
 public:
  Background(Session* session, std::string sql, std::vector<std::string> params = {})
      : pid_(session->pid()),
        result_(std::async(std::launch::async,
                           [session, sql = std::move(sql), params = std::move(params)] {
                             return session->Run(sql, params);
                           })) {}

  // A call still running when the test ends (it failed half-way) is ended, not waited for:
  // its backend is terminated, so the session's call returns with an error.
  ~Background() {
    if (!Finished(milliseconds(0))) {
      Execute("SELECT pg_terminate_backend($1::integer)", {std::to_string(pid_)});
    }
    if (result_.valid()) result_.wait();
  }

  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  int pid() const { return pid_; }

  bool Finished(milliseconds within) const {
    return !result_.valid() || result_.wait_for(within) == std::future_status::ready;
  }

  // Waits for the answer (bounded by the session's lock and statement timeouts).
  const Outcome& Wait() {
    if (result_.valid()) outcome_ = result_.get();
    return outcome_;
  }

 private:
  const int pid_;
  std::future<Outcome> result_;
  Outcome outcome_;
};

// Whether the backend `waiter_pid` waits for `holder_pid`. On plain PostgreSQL pg_blocking_pids
// says so. On Citus the rows are on the workers, and so are the lock waits: citus_lock_waits
// lists them across the cluster by global process id (node id * 10^10 + pid), and both test
// sessions are backends of the coordinator.
bool Waits(int waiter_pid, int holder_pid) {
  const std::vector<std::string> pids = {std::to_string(waiter_pid), std::to_string(holder_pid)};
  if (QueryValue("SELECT ($2::integer = ANY (pg_blocking_pids($1::integer)))::text", pids) ==
      "true") {
    return true;
  }
  return OnCitus() && QueryValue(
                          "SELECT EXISTS (SELECT 1 FROM citus_lock_waits"
                          " WHERE waiting_gpid % 10000000000 = $1::bigint"
                          "   AND blocking_gpid % 10000000000 = $2::bigint)::text",
                          pids) == "true";
}

// Success once `waiter` is blocked by the backend `holder_pid` (pg_blocking_pids, or on Citus
// citus_lock_waits), failure when the call returned instead or kReachLock passed.
::testing::AssertionResult BlockedBy(Background& waiter, int holder_pid, const char* holder) {
  const auto deadline = std::chrono::steady_clock::now() + kReachLock;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waiter.Finished(milliseconds(0))) {
      return ::testing::AssertionFailure() << "the call returned without waiting for " << holder
                                           << ": " << waiter.Wait().Describe();
    }
    if (Waits(waiter.pid(), holder_pid)) return ::testing::AssertionSuccess();
    std::this_thread::sleep_for(milliseconds(20));
  }
  return ::testing::AssertionFailure() << "the call never waited for " << holder << " (pid "
                                       << holder_pid << ") within " << kReachLock.count() << " ms";
}

// Success when the backend holds no write lock on a table of effects: a waiting call stopped at
// the workflow's lock, before it began a step (or an undo) of its own.
::testing::AssertionResult NoEffectWritten(int pid) {
  const std::string tables = QueryValue(
      "SELECT string_agg(relation::regclass::text, ', ' ORDER BY relation::regclass::text)"
      "  FROM pg_locks WHERE pid = $1::integer AND locktype = 'relation'"
      "   AND mode = 'RowExclusiveLock'"
      "   AND relation IN ('orderflow.payments'::regclass, 'orderflow.reservations'::regclass,"
      "                    'orderflow.outbox'::regclass, 'orderflow.inventory'::regclass)",
      {std::to_string(pid)});
  if (tables.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "while waiting it already writes " << tables
                                       << ": it ran a step without holding the workflow's lock";
}

std::string Stock(const std::string& item) {
  return QueryValue("SELECT on_hand::text FROM orderflow.inventory WHERE item = $1", {item});
}

std::string Attempts(const std::string& order_id, const std::string& step) {
  return QueryValue(
      "SELECT attempts::text FROM orderflow.workflow_steps WHERE order_id = $1 AND step = $2",
      {order_id, step});
}

// One SQL call of a race: a statement with its parameters.
struct Call {
  std::string sql;
  std::vector<std::string> params;
};

// The answers of the two calls of a forced interleaving.
struct Answers {
  Outcome first;
  Outcome second;
};

// Which row the gate holds.
enum class Gate {
  kItem,         // the inventory row of the order's item: reserve and release update it
  kReservation,  // the order's reservation: prune deletes it after the workflow's row
};

class DbRaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ResetDrills();
    order_ = Unique("dbrace");
    item_ = Unique("gate-item");
    Execute("SELECT orderflow.set_stock($1, 10)", {item_});
  }
  void TearDown() override {
    ResetDrills();
    Execute("SELECT orderflow.set_stock($1, NULL)", {item_});
  }

  Call Process() const { return {"SELECT orderflow.process_order($1, 5, $2)", {order_, item_}}; }
  Call Resume() const { return {"SELECT orderflow.process_order($1)", {order_}}; }
  Call Cancel(const std::string& reason) const {
    return {"SELECT orderflow.cancel_order($1, $2)", {order_, reason}};
  }
  static Call Janitor() { return {"SELECT orderflow.resume_due(16)", {}}; }
  static Call Prune() { return {"SELECT orderflow.prune(interval '1 day')", {}}; }

  // A workflow parked on a transient failure of `step` with a 60 s backoff: nothing resumes it
  // during the test unless the test does.
  void Park(const std::string& step) {
    SetRetryDelay(step, 60000);
    Execute("SELECT orderflow.inject_fault($1, 1, true)", {step});
    Execute(Process().sql, Process().params);
    const std::string expected = step == "charge"    ? "charging"
                                 : step == "reserve" ? "reserving"
                                                     : "confirming";
    ASSERT_EQ(ReadOrder(order_).status, expected);
    ASSERT_EQ(QueryValue("SELECT (next_retry_at > clock_timestamp() + interval '30 seconds')::text"
                         "  FROM orderflow.workflows WHERE order_id = $1",
                         {order_}),
              "true");
    ASSERT_EQ(QueryCount("SELECT COALESCE(sum(remaining), 0) FROM orderflow.faults"), 0);
  }

  void Complete() {
    Execute(Process().sql, Process().params);
    ASSERT_EQ(ReadOrder(order_).status, "completed");
  }

  // The order ended completed, charged once, its charge step run `charge_attempts` times.
  void ExpectCompletedOnce(const char* charge_attempts) const {
    const OrderRecord record = ReadOrder(order_);
    EXPECT_EQ(record.status, "completed");
    EXPECT_TRUE(LedgerIsConsistent(order_, record));
    EXPECT_EQ(Attempts(order_, "charge"), charge_attempts);
  }

  void CloseGate(Session* gate, Gate kind) const {
    gate->Must("BEGIN");
    gate->Must(kind == Gate::kItem
                   ? "SELECT 1 FROM orderflow.inventory WHERE item = $1 FOR UPDATE"
                   : "SELECT 1 FROM orderflow.reservations WHERE order_id = $1 FOR UPDATE",
               {kind == Gate::kItem ? item_ : order_});
  }

  // What the second call of an interleaving must do while the first one is held.
  enum class Second {
    kWaitsBeforeAnyEffect,  // wait for the first, having written no effect yet
    kWaits,                 // wait for the first (it may have written already: prune)
    kAnswersAtOnce,         // answer while the first still holds its locks
  };

  // A forced interleaving: `first` runs until it blocks on the gate, inside the function,
  // holding the workflow's lock; `second` is started and proven to do what `expect` says;
  // then the gate opens and both finish. Returns both answers.
  Answers Interleave(const Call& first, const Call& second, Second expect,
                     Gate gate_kind = Gate::kItem) {
    Session first_session, second_session, gate;
    CloseGate(&gate, gate_kind);
    Background a(&first_session, first.sql, first.params);
    if (!BlockedBy(a, gate.pid(), "the gate")) {
      ADD_FAILURE() << first.sql << " did not stop at the gate";
      gate.Must("ROLLBACK");
      return {a.Wait(), {}};
    }
    Background b(&second_session, second.sql, second.params);
    if (expect == Second::kAnswersAtOnce) {
      EXPECT_TRUE(b.Finished(kNoWaitAnswer)) << second.sql << " waited for " << first.sql;
    } else {
      EXPECT_TRUE(BlockedBy(b, a.pid(), "the first call")) << second.sql;
    }
    if (expect == Second::kWaitsBeforeAnyEffect) {
      EXPECT_TRUE(NoEffectWritten(b.pid())) << second.sql;
    }
    gate.Must("COMMIT");
    return {a.Wait(), b.Wait()};
  }

  // The usual case: the second call waits at the workflow's lock for the first.
  Answers SecondWaitsForFirst(const Call& first, const Call& second, Gate gate = Gate::kItem) {
    return Interleave(first, second, Second::kWaitsBeforeAnyEffect, gate);
  }

  std::string order_;
  std::string item_;
};

// process × process, new order: the second caller waits for the first one's insert, then
// answers the workflow the first one finished. One charge, one reservation, one event.
TEST_F(DbRaceTest, ProcessProcessNewOrderSecondWaitsForTheFirstInsert) {
  const Answers answers = SecondWaitsForFirst(Process(), Process());
  EXPECT_EQ(answers.first.Status(), "completed") << answers.first.Describe();
  EXPECT_EQ(answers.second.Status(), "completed") << answers.second.Describe();
  const OrderRecord record = ReadOrder(order_);
  EXPECT_EQ(record.status, "completed");
  EXPECT_TRUE(LedgerIsConsistent(order_, record));
  for (const char* step : {"charge", "reserve", "confirm"}) {
    EXPECT_EQ(Attempts(order_, step), "1") << step << " ran once";
  }
  EXPECT_EQ(Stock(item_), "9");
}

// process × process, new order with another amount: the loser waits, then is told OF409 and
// changes nothing.
TEST_F(DbRaceTest, ProcessProcessNewOrderWithAnotherAmountWaitsThenConflicts) {
  const Answers answers = SecondWaitsForFirst(
      Process(), {"SELECT orderflow.process_order($1, 7, $2)", {order_, item_}});
  EXPECT_EQ(answers.first.Status(), "completed");
  EXPECT_EQ(answers.second.sqlstate, "OF409") << answers.second.Describe();
  const OrderRecord record = ReadOrder(order_);
  EXPECT_EQ(record.status, "completed");
  EXPECT_TRUE(LedgerIsConsistent(order_, record));
  EXPECT_EQ(QueryValue("SELECT amount::text FROM orderflow.payments WHERE order_id = $1", {order_}),
            "5.00");
}

// process × process, waiting order (parked on a transient charge failure): the resume that
// got the lock charges; the other waits at the lock, then sees completed. This is the first
// reproduction of issue 8 (the second resume charged again, hit the ledger's unique key and
// failed a completed workflow, refunding it).
TEST_F(DbRaceTest, ProcessProcessWaitingOrderSecondResumeWaitsAtTheLock) {
  Park("charge");
  const Answers answers = SecondWaitsForFirst(Resume(), Resume());
  EXPECT_EQ(answers.first.Status(), "completed") << answers.first.Describe();
  EXPECT_EQ(answers.second.Status(), "completed") << answers.second.Describe();
  ExpectCompletedOnce("2");  // one injected failure, one charge
  EXPECT_EQ(Stock(item_), "9");
}

// process × process, finished order: answered from the lock-free read, so a resume or a replay
// does not wait even while another transaction holds the workflow's row lock (as every writer
// does).
TEST_F(DbRaceTest, ProcessOfAFinishedOrderDoesNotWaitForTheRowLock) {
  Complete();
  Session holder;
  holder.Must("BEGIN");
  holder.Must("SELECT 1 FROM orderflow.workflows WHERE order_id = $1 FOR UPDATE", {order_});
  for (const Call& call : {Resume(), Process()}) {
    Session session;
    Background background(&session, call.sql, call.params);
    if (!background.Finished(kNoWaitAnswer)) {
      ADD_FAILURE() << call.sql << " waited for the lock";
      continue;  // ended by ~Background
    }
    EXPECT_EQ(background.Wait().Status(), "completed") << background.Wait().Describe();
  }
  holder.Must("ROLLBACK");
  EXPECT_TRUE(LedgerIsConsistent(order_, ReadOrder(order_)));
}

// process × cancel, the process first: the cancel waits for the resume, then undoes all it did.
// The cancel's answer is the final state (issue 8: it answered cancelled while the order
// ended completed, charged, with the cancel's reason).
TEST_F(DbRaceTest, ProcessThenCancelTheCancelWaitsAndUndoesEverything) {
  Park("charge");
  const Answers answers = SecondWaitsForFirst(Resume(), Cancel("customer asked"));
  EXPECT_EQ(answers.first.Status(), "completed") << answers.first.Describe();
  EXPECT_EQ(answers.second.Status(), "cancelled") << answers.second.Describe();
  const OrderRecord record = ReadOrder(order_);
  EXPECT_EQ(record.status, answers.second.Status()) << "the cancel's answer is the final state";
  EXPECT_EQ(record.cancel_reason, "customer asked");
  EXPECT_EQ(record.charges, 1);
  EXPECT_EQ(record.refunds, 1);
  EXPECT_EQ(record.confirmed_events, 1);
  EXPECT_EQ(record.cancelled_events, 1);
  EXPECT_TRUE(LedgerIsConsistent(order_, record));
  EXPECT_EQ(Stock(item_), "10") << "the reserved unit is back";
}

// process × cancel, the cancel first: the resume waits for the cancel (held in its release of
// the reservation), then answers cancelled and runs no step.
TEST_F(DbRaceTest, CancelThenProcessTheResumeWaitsAndRunsNothing) {
  Park("confirm");  // charged and reserved, waiting to confirm
  const Answers answers = SecondWaitsForFirst(Cancel("changed my mind"), Resume());
  EXPECT_EQ(answers.first.Status(), "cancelled") << answers.first.Describe();
  EXPECT_EQ(answers.second.Status(), "cancelled") << answers.second.Describe();
  const OrderRecord record = ReadOrder(order_);
  EXPECT_EQ(record.status, "cancelled");
  EXPECT_EQ(record.charges, 1);
  EXPECT_EQ(record.refunds, 1);
  EXPECT_EQ(record.confirmed_events, 0) << "the confirm step never ran";
  EXPECT_TRUE(LedgerIsConsistent(order_, record));
  EXPECT_EQ(Attempts(order_, "confirm"), "1") << "only the injected failure";
  EXPECT_EQ(Stock(item_), "10");
}

// process × cancel, finished order being cancelled: a resume is answered from the lock-free
// read (the committed state) without waiting for the cancel in progress.
TEST_F(DbRaceTest, ProcessOfACompletedOrderBeingCancelledAnswersWithoutWaiting) {
  Complete();
  const Answers answers = Interleave(Cancel("late"), Resume(), Second::kAnswersAtOnce);
  EXPECT_EQ(answers.second.Status(), "completed") << answers.second.Describe();
  EXPECT_EQ(answers.first.Status(), "cancelled") << answers.first.Describe();
  const OrderRecord record = ReadOrder(order_);
  EXPECT_EQ(record.status, "cancelled");
  EXPECT_TRUE(LedgerIsConsistent(order_, record));
}

// cancel × cancel: the second waits for the first, then answers the same cancelled state and
// undoes nothing again. One refund, one order.cancelled event, the first reason.
TEST_F(DbRaceTest, CancelCancelSecondWaitsAndRefundsNothing) {
  Complete();
  const Answers answers = SecondWaitsForFirst(Cancel("first"), Cancel("second"));
  EXPECT_EQ(answers.first.Status(), "cancelled") << answers.first.Describe();
  EXPECT_EQ(answers.second.Status(), "cancelled") << answers.second.Describe();
  const OrderRecord record = ReadOrder(order_);
  EXPECT_EQ(record.status, "cancelled");
  EXPECT_EQ(record.cancel_reason, "first");
  EXPECT_EQ(record.refunds, 1);
  EXPECT_EQ(record.cancelled_events, 1);
  EXPECT_TRUE(LedgerIsConsistent(order_, record));
  EXPECT_EQ(Stock(item_), "10");
}

// resume_now (the operator's "run it now") × process: the client's resume waits for the
// operator's, then answers completed. One charge.
TEST_F(DbRaceTest, ProcessWaitsForAnOperatorsResumeNow) {
  Park("charge");
  const Answers answers =
      SecondWaitsForFirst({"SELECT orderflow.resume_now($1)", {order_}}, Resume());
  EXPECT_EQ(answers.first.Status(), "completed") << answers.first.Describe();
  EXPECT_EQ(answers.second.Status(), "completed") << answers.second.Describe();
  ExpectCompletedOnce("2");
}

// Unrelated orders never wait for each other: a transaction that finished one workflow,
// cancelled another and is still open (its finished counts, its rows, its locks all
// uncommitted) delays no call about other orders — a new order of another item, a replay, a
// cancel, the janitor's tick with its fold of the counts, the counts /metrics reads, prune.
TEST_F(DbRaceTest, AnOpenTransactionThatFinishedWorkflowsBlocksNoOtherOrder) {
  const std::string done = Unique("dbrace-done"), fresh = Unique("dbrace-fresh");
  const std::string to_cancel = Unique("dbrace-cancel"), other_item = Unique("other-item");
  Execute("SELECT orderflow.set_stock($1, 10)", {other_item});
  Execute("SELECT orderflow.process_order($1, 5, 'untracked')", {done});
  Execute("SELECT orderflow.process_order($1, 5, $2)", {to_cancel, other_item});

  Session holder;
  holder.Must("BEGIN");
  holder.Must(Process().sql, Process().params);
  holder.Must("SELECT orderflow.cancel_order($1)", {to_cancel});
  // The holder now holds the inventory rows of item_ (its reservation) and other_item (the
  // release): the documented shared lock of orders of one tracked item. The calls below are
  // about orders of an untracked item.
  const std::vector<Call> calls = {
      {"SELECT orderflow.process_order($1, 5, 'untracked')", {fresh}},
      {"SELECT orderflow.process_order($1)", {done}},
      {"SELECT orderflow.janitor_tick(16)", {}},
      {"SELECT orderflow.workflow_counts()", {}},
      Prune(),
      {"SELECT orderflow.cancel_order($1)", {done}},
  };
  for (const Call& call : calls) {
    Session session;
    Background background(&session, call.sql, call.params);
    if (!background.Finished(kNoWaitAnswer)) {
      ADD_FAILURE() << call.sql << " waited for an unrelated open transaction";
      continue;  // ended by ~Background
    }
    EXPECT_EQ(background.Wait().sqlstate, "") << call.sql << ": " << background.Wait().message;
  }
  holder.Must("COMMIT");
  EXPECT_EQ(ReadOrder(fresh).status, "completed");
  EXPECT_EQ(ReadOrder(done).status, "cancelled");
  for (const std::string& id : {order_, fresh, done, to_cancel}) {
    EXPECT_TRUE(LedgerIsConsistent(id, ReadOrder(id)));
  }
  Execute("SELECT orderflow.set_stock($1, NULL)", {other_item});
}

class DbJanitorRaceTest : public DbRaceTest {
 protected:
  void SetUp() override {
    DbRaceTest::SetUp();
    // Whatever earlier tests left due is resumed now, so that the counts below are ours alone.
    Session janitor;
    for (int i = 0; i < 100 && janitor.Run("SELECT orderflow.resume_due(1000)").value != "0"; ++i) {
    }
    // A retry that is due at once: the janitor would pick the workflow up.
    SetRetryDelay("charge", 0);
    Execute("UPDATE orderflow.retry_policies SET jitter = 0 WHERE step = 'charge'");
    Execute("SELECT orderflow.inject_fault('charge', 1, true)");
    Execute(Process().sql, Process().params);
    ASSERT_EQ(ReadOrder(order_).status, "charging");
    ASSERT_EQ(QueryCount("SELECT count(*) FROM orderflow.workflows"
                         " WHERE next_retry_at <= clock_timestamp()"),
              1)
        << "only our workflow is due";
    ASSERT_EQ(QueryCount("SELECT count(*) FROM orderflow.workflows WHERE order_id <> $1"
                         " AND next_retry_at <= clock_timestamp() + interval '1 minute'",
                         {order_}),
              0)
        << "and no other becomes due during the test";
  }
};

// process × resume_due, the client first: the janitor skips the locked workflow without
// waiting and reports 0 for it; the client's resume finishes it.
TEST_F(DbJanitorRaceTest, JanitorSkipsAWorkflowAClientHoldsWithoutWaiting) {
  const Answers answers = Interleave(Resume(), Janitor(), Second::kAnswersAtOnce);
  EXPECT_EQ(answers.second.Describe(), "0") << "the held workflow is not claimed";
  EXPECT_EQ(answers.first.Status(), "completed") << answers.first.Describe();
  ExpectCompletedOnce("2");
}

// process × resume_due, the janitor first: the client's resume waits for the janitor, then
// answers completed without running a step.
TEST_F(DbJanitorRaceTest, ClientWaitsForTheJanitorThatHoldsTheWorkflow) {
  const Answers answers = SecondWaitsForFirst(Janitor(), Resume());
  EXPECT_EQ(answers.first.Describe(), "1");
  EXPECT_EQ(answers.second.Status(), "completed") << answers.second.Describe();
  ExpectCompletedOnce("2");
}

// cancel × resume_due: the cancel waits for the janitor's resume, then undoes all it did.
TEST_F(DbJanitorRaceTest, CancelWaitsForTheJanitorThenUndoesWhatItDid) {
  const Answers answers = SecondWaitsForFirst(Janitor(), Cancel("too slow"));
  EXPECT_EQ(answers.first.Describe(), "1");
  EXPECT_EQ(answers.second.Status(), "cancelled") << answers.second.Describe();
  const OrderRecord record = ReadOrder(order_);
  EXPECT_EQ(record.status, "cancelled");
  EXPECT_EQ(record.charges, 1);
  EXPECT_EQ(record.refunds, 1);
  EXPECT_EQ(record.cancelled_events, 1);
  EXPECT_TRUE(LedgerIsConsistent(order_, record));
  EXPECT_EQ(Stock(item_), "10");
}

class DbPruneRaceTest : public DbRaceTest {
 protected:
  void SetUp() override {
    DbRaceTest::SetUp();
    // A workflow that finished two days ago, its events published: prune('1 day') removes it.
    Session setup;
    setup.Must("BEGIN");
    setup.Must("SELECT orderflow.pin_clock(clock_timestamp() - interval '2 days')");
    setup.Must(Process().sql, Process().params);
    setup.Must("COMMIT");
    ASSERT_EQ(ReadOrder(order_).status, "completed");
    Execute("SELECT orderflow.publish_outbox(10000)");
  }
};

// prune × cancel: the cancel waits for the prune that deletes its workflow (held deleting the
// reservation), then answers OF404 (issue 8: 500, P0002 query returned no rows). Nothing is
// refunded.
TEST_F(DbPruneRaceTest, CancelWaitsForPruneThenAnswersNotFound) {
  const Answers answers = SecondWaitsForFirst(Prune(), Cancel("late"), Gate::kReservation);
  EXPECT_EQ(answers.first.sqlstate, "") << answers.first.message;
  EXPECT_EQ(answers.second.sqlstate, "OF404") << answers.second.Describe();
  const OrderRecord record = ReadOrder(order_);
  EXPECT_EQ(record.status, "") << "pruned";
  EXPECT_EQ(record.charges, 1);
  EXPECT_EQ(record.refunds, 0) << "a cancel that answered 404 refunds nothing";
  EXPECT_EQ(Stock(item_), "9") << "and releases nothing";
}

// prune × process: a resume of the finished workflow being pruned is answered from the
// lock-free read without waiting; once prune committed, the id cannot be charged again (OF409).
TEST_F(DbPruneRaceTest, ProcessDuringPruneAnswersWithoutWaitingAndNeverChargesAgain) {
  const Answers answers = Interleave(Prune(), Resume(), Second::kAnswersAtOnce, Gate::kReservation);
  EXPECT_EQ(answers.second.Status(), "completed") << answers.second.Describe();
  EXPECT_EQ(answers.first.sqlstate, "") << answers.first.message;

  Session after;
  EXPECT_EQ(after.Run(Process().sql, Process().params).sqlstate, "OF409");
  const OrderRecord record = ReadOrder(order_);
  EXPECT_EQ(record.status, "");
  EXPECT_EQ(record.charges, 1);
  EXPECT_EQ(record.refunds, 0);
}

// prune × cancel, the cancel first: prune's delete waits for the cancel in progress, then
// re-checks the row. Whether the cancelled workflow is pruned or kept, the refund is there.
TEST_F(DbPruneRaceTest, PruneWaitsForACancelInProgress) {
  const Answers answers = Interleave(Cancel("late"), Prune(), Second::kWaits);
  EXPECT_EQ(answers.first.Status(), "cancelled") << answers.first.Describe();
  EXPECT_EQ(answers.second.sqlstate, "") << answers.second.message;
  const OrderRecord record = ReadOrder(order_);
  EXPECT_TRUE(record.status == "" || record.status == "cancelled") << record.status;
  EXPECT_EQ(record.charges, 1);
  EXPECT_EQ(record.refunds, 1);
  EXPECT_EQ(Stock(item_), "10");
}

// Provider calls (db/functions/45_effects.sql). The order's charge is at a provider (no call is
// really sent: the tests report outcomes themselves); a report of a successful charge runs
// reserve, which the gate stops, so report_effect is held INSIDE the function with the
// workflow's lock. Whatever races it must wait at that lock before it reads anything.
class DbEffectRaceTest : public DbRaceTest {
 protected:
  void SetUp() override {
    DbRaceTest::SetUp();
    Execute("SELECT orderflow.set_provider('payments', 'http://127.0.0.1:9', '{}')");
    const std::string body =
        R"({"orderId":")" + order_ + R"(","amount":5,"item":")" + item_ + R"("})";
    const std::string effect = QueryValue(
        "SELECT effect::text FROM orderflow.process_order_http($1, $2::jsonb, 'race', 'test')",
        {order_, body});
    ASSERT_FALSE(effect.empty()) << "the charge is leased to the test";
    const rapidjson::Document parsed = ParseJson(effect);
    effect_id_ = std::to_string(parsed["id"].GetInt64());
    token_ = parsed["token"].GetString();
  }

  Call Report(const std::string& token) const {
    return {
        "SELECT state::text FROM orderflow.report_effect($1::bigint, $2::uuid, $3::jsonb, NULL)",
        {effect_id_, token,
         R"({"status": 200, "body": "{\"id\":\"pi_race\",\"object\":\"payment_intent\",\"status\":\"succeeded\"}"})"}};
  }

  std::string effect_id_;
  std::string token_;
};

// report × cancel: the cancel waits for the report that completes the order, then refunds the
// charge the report recorded: cancelling, one refund call written, nothing reserved left.
TEST_F(DbEffectRaceTest, ReportThenCancelTheCancelWaitsAndRefundsTheRecordedCharge) {
  const Answers answers = SecondWaitsForFirst(Report(token_), Cancel("race"));
  EXPECT_EQ(answers.first.Status(), "completed") << answers.first.Describe();
  EXPECT_EQ(answers.second.Status(), "cancelling") << answers.second.Describe();
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.effects WHERE order_id = $1 AND kind = "
                       "'refund' AND body = 'payment_intent=pi_race&metadata%5Border_id%5D=' || "
                       "orderflow._form_encode($1)",
                       {order_}),
            1)
      << "one refund of the recorded PaymentIntent";
  EXPECT_EQ(QueryCount("SELECT count(*) FROM orderflow.reservations WHERE order_id = $1 AND "
                       "released_at IS NULL",
                       {order_}),
            0)
      << "the reservation was released";
  EXPECT_EQ(Stock(item_), "10");
}

// report × report with the same lease (a duplicate worker): the second waits, then finds the
// call resolved and changes nothing — the charge step completed once.
TEST_F(DbEffectRaceTest, ReportReportSecondWaitsThenChangesNothing) {
  const Answers answers = SecondWaitsForFirst(Report(token_), Report(token_));
  EXPECT_EQ(answers.first.Status(), "completed") << answers.first.Describe();
  EXPECT_EQ(answers.second.Status(), "completed") << answers.second.Describe();
  EXPECT_EQ(Attempts(order_, "charge"), "1");
  EXPECT_EQ(Attempts(order_, "reserve"), "1");
  EXPECT_EQ(Stock(item_), "9");
}

// report × process: a client's process call waits at the lock, then answers completed and leases
// nothing (no second attempt).
TEST_F(DbEffectRaceTest, ReportThenProcessTheClientWaitsAndStartsNoSecondAttempt) {
  const Answers answers = SecondWaitsForFirst(
      Report(token_),
      {"SELECT effect::text FROM orderflow.process_order_http($1, $2::jsonb, 'other', 'test')",
       {order_, R"({"orderId":")" + order_ + R"("})"}});
  EXPECT_EQ(answers.first.Status(), "completed") << answers.first.Describe();
  EXPECT_EQ(answers.second.sqlstate, "") << answers.second.Describe();
  EXPECT_EQ(answers.second.value, "") << "no effect leased to the second caller";
  EXPECT_EQ(QueryValue("SELECT attempts::text FROM orderflow.effects WHERE id = $1::bigint",
                       {effect_id_}),
            "1");
}

// read_events × the relay. The relay numbers events while it holds its lock and commits them in
// that order; a reader takes the lock shared, so it waits for a relay that has numbered events
// and not yet committed them (shown waiting in pg_locks) and can never see number n+1 before n,
// on any node. And an event whose id is smaller than one already committed (its transaction ran
// longer) is published after that one and read after it: a reader by id alone would have moved
// past it for good.
class DbEventsRaceTest : public DbRaceTest {
 protected:
  // The order ids of the events after `cursor`, in the stream's order.
  static std::string Read(Session* session, const std::string& cursor) {
    return session
        ->Run(
            "SELECT string_agg(e ->> 'orderId', ',') FROM jsonb_array_elements("
            "orderflow.read_events(NULLIF($1, ''), 1000) -> 'events') AS e",
            {cursor})
        .value;
  }
};

TEST_F(DbEventsRaceTest, AReaderWaitsForTheRelayAndNoEventIsSkipped) {
  // Everything earlier tests left is published, and the cursor is at the end of the stream.
  for (int i = 0; i < 1000 && QueryValue("SELECT orderflow.publish_outbox(10000)::text") != "0";
       ++i) {
  }
  std::string cursor;
  for (int page = 0; page < 10000; ++page) {
    const std::string next =
        QueryValue("SELECT orderflow.read_events(NULLIF($1, ''), 1000) ->> 'next'", {cursor});
    if (next == cursor) break;
    cursor = next;
  }
  const std::string late = Unique("ev-late");
  const std::string early = Unique("ev-early");
  Session holder;
  holder.Must("BEGIN");
  holder.Must("SELECT orderflow.process_order($1, 5, 'w')", {late});
  const std::string late_id =
      holder.Run("SELECT id::text FROM orderflow.outbox WHERE order_id = $1", {late}).value;
  ASSERT_FALSE(late_id.empty());
  Execute("SELECT orderflow.process_order($1, 5, 'w')", {early});
  const long early_id = QueryCount("SELECT id FROM orderflow.outbox WHERE order_id = $1", {early});
  ASSERT_GT(early_id, std::stol(late_id)) << "the id order is the reverse of the commit order";
  Session reader;
  EXPECT_EQ(Read(&reader, cursor), "") << "nothing is read before the relay publishes it";
  EXPECT_EQ(QueryValue("SELECT orderflow.publish_outbox(100)::text"), "1")
      << "the relay publishes the committed event; the other is not visible to it yet";
  EXPECT_EQ(Read(&reader, cursor), early);
  holder.Must("COMMIT");

  // A relay that has numbered the late event and not committed: the reader waits for it.
  Session relay;
  relay.Must("BEGIN");
  ASSERT_EQ(relay.Run("SELECT orderflow.publish_outbox(100)::text").value, "1");
  Background read(&reader,
                  "SELECT string_agg(e ->> 'orderId', ',') FROM jsonb_array_elements("
                  "orderflow.read_events(NULLIF($1, ''), 1000) -> 'events') AS e",
                  {cursor});
  EXPECT_TRUE(BlockedBy(read, relay.pid(), "the relay"));
  relay.Must("COMMIT");
  const Outcome after = read.Wait();
  EXPECT_EQ(after.sqlstate, "") << after.Describe();
  EXPECT_EQ(after.value, early + "," + late)
      << "in the order published: the later id, then the other, none skipped";
}

// The circuit row and the rate buckets are shared by every order of a provider: a session
// holding the circuit's row lock (as a trip or a probe does) makes no lease and no report wait.
class DbCircuitRaceTest : public DbRaceTest {};

TEST_F(DbCircuitRaceTest, LeasesAndReportsDoNotQueueOnTheCircuitOrABucketStripe) {
  Execute(
      "SELECT orderflow.set_provider('payments', 'http://127.0.0.1:9', '{\"ratePerSecond\": "
      "100}')");
  Session gate, client;
  gate.Must("BEGIN");
  gate.Must("SELECT 1 FROM orderflow.circuits WHERE provider = 'payments' FOR UPDATE");
  gate.Must(
      "SELECT 1 FROM orderflow.rate_buckets WHERE provider = 'payments' AND stripe = 0 FOR UPDATE");
  const std::string body =
      R"({"orderId":")" + order_ + R"(","amount":5,"item":")" + item_ + R"("})";
  Background lease(
      &client,
      "SELECT effect::text FROM orderflow.process_order_http($1, $2::jsonb, 'race', 'test')",
      {order_, body});
  ASSERT_TRUE(lease.Finished(kNoWaitAnswer)) << "the lease did not wait for the circuit's row";
  const Outcome leased = lease.Wait();
  ASSERT_EQ(leased.sqlstate, "") << leased.Describe();
  ASSERT_FALSE(leased.value.empty()) << "leased from a stripe nobody held";
  const rapidjson::Document effect = ParseJson(leased.value);
  Background report(
      &client,
      "SELECT state::text FROM orderflow.report_effect($1::bigint, $2::uuid, $3::jsonb, NULL)",
      {std::to_string(effect["id"].GetInt64()), effect["token"].GetString(),
       R"({"status": 503, "body": ""})"});
  ASSERT_TRUE(report.Finished(kNoWaitAnswer)) << "the report did not wait for the circuit's row";
  EXPECT_EQ(report.Wait().Status(), "charging") << report.Wait().Describe();
  gate.Must("ROLLBACK");
  // The charge waits for its retry: end it (leased again, declined) so that no later test's
  // provider or janitor finds it due.
  // (The time is a value: Citus refuses a volatile function in an UPDATE of a distributed table.)
  Execute("UPDATE orderflow.effects SET next_attempt_at = $2::timestamptz WHERE order_id = $1",
          {order_, QueryValue("SELECT orderflow.clock_now()::text")});
  const rapidjson::Document again = ParseJson(QueryValue(
      "SELECT effect::text FROM orderflow.process_order_http($1, $2::jsonb, 'race', 'test')",
      {order_, body}));
  ASSERT_TRUE(again.IsObject()) << "leased again";
  EXPECT_EQ(
      QueryValue("SELECT state ->> 'status' FROM orderflow.report_effect($1::bigint, $2::uuid, "
                 "'{\"status\": 402, \"body\": \"{}\"}', NULL)",
                 {std::to_string(again["id"].GetInt64()), again["token"].GetString()}),
      "failed");
}

}  // namespace
}  // namespace orderflow_test
