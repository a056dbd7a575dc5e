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
// Every entry point that can change a workflow (process_order, cancel_order, resume_due, prune)
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

// Success once `waiter` is blocked by the backend `holder_pid` (pg_blocking_pids), failure when
// the call returned instead or kReachLock passed.
::testing::AssertionResult BlockedBy(Background& waiter, int holder_pid, const char* holder) {
  const auto deadline = std::chrono::steady_clock::now() + kReachLock;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waiter.Finished(milliseconds(0))) {
      return ::testing::AssertionFailure() << "the call returned without waiting for " << holder
                                           << ": " << waiter.Wait().Describe();
    }
    if (QueryValue("SELECT $2::integer = ANY (pg_blocking_pids($1::integer))",
                   {std::to_string(waiter.pid()), std::to_string(holder_pid)}) == "t") {
      return ::testing::AssertionSuccess();
    }
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

  std::string ProcessSql() const { return "SELECT orderflow.process_order($1, 5, $2)"; }

  // A workflow parked on a transient failure of `step` with a 60 s backoff: nothing resumes it
  // during the test unless the test does.
  void Park(const std::string& step) {
    SetRetryDelay(step, 60000);
    Execute("SELECT orderflow.inject_fault($1, 1, true)", {step});
    Execute(ProcessSql(), {order_, item_});
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
    Execute(ProcessSql(), {order_, item_});
    ASSERT_EQ(ReadOrder(order_).status, "completed");
  }

  // The gate: holds the inventory row of the order's item, which the reserve step and the
  // release of a reservation update.
  void CloseGate(Session* gate) {
    gate->Must("BEGIN");
    gate->Must("SELECT 1 FROM orderflow.inventory WHERE item = $1 FOR UPDATE", {item_});
  }

  std::string order_;
  std::string item_;
};

// process × process, new order: the second caller waits for the first one's insert, then
// answers the workflow the first one finished. One charge, one reservation, one event.
TEST_F(DbRaceTest, ProcessProcessNewOrderSecondWaitsForTheFirstInsert) {
  Session a_session, b_session, gate;
  CloseGate(&gate);
  Background a(&a_session, ProcessSql(), {order_, item_});
  ASSERT_TRUE(BlockedBy(a, gate.pid(), "the gate")) << "A stops in its reserve step";
  Background b(&b_session, ProcessSql(), {order_, item_});
  EXPECT_TRUE(BlockedBy(b, a.pid(), "A"));
  EXPECT_TRUE(NoEffectWritten(b.pid()));
  gate.Must("COMMIT");

  const Outcome a_answer = a.Wait(), b_answer = b.Wait();
  EXPECT_EQ(a_answer.Status(), "completed") << a_answer.Describe();
  EXPECT_EQ(b_answer.Status(), "completed") << b_answer.Describe();
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
  Session a_session, b_session, gate;
  CloseGate(&gate);
  Background a(&a_session, ProcessSql(), {order_, item_});
  ASSERT_TRUE(BlockedBy(a, gate.pid(), "the gate"));
  Background b(&b_session, "SELECT orderflow.process_order($1, 7, $2)", {order_, item_});
  EXPECT_TRUE(BlockedBy(b, a.pid(), "A"));
  EXPECT_TRUE(NoEffectWritten(b.pid()));
  gate.Must("COMMIT");

  EXPECT_EQ(a.Wait().Status(), "completed");
  EXPECT_EQ(b.Wait().sqlstate, "OF409");
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
  Session a_session, b_session, gate;
  CloseGate(&gate);
  Background a(&a_session, "SELECT orderflow.process_order($1)", {order_});
  ASSERT_TRUE(BlockedBy(a, gate.pid(), "the gate"));
  Background b(&b_session, "SELECT orderflow.process_order($1)", {order_});
  EXPECT_TRUE(BlockedBy(b, a.pid(), "A"));
  EXPECT_TRUE(NoEffectWritten(b.pid()));
  gate.Must("COMMIT");

  const Outcome a_answer = a.Wait(), b_answer = b.Wait();
  EXPECT_EQ(a_answer.Status(), "completed") << a_answer.Describe();
  EXPECT_EQ(b_answer.Status(), "completed") << b_answer.Describe();
  const OrderRecord record = ReadOrder(order_);
  EXPECT_EQ(record.status, "completed");
  EXPECT_TRUE(LedgerIsConsistent(order_, record));
  EXPECT_EQ(Attempts(order_, "charge"), "2") << "one injected failure, one charge";
  EXPECT_EQ(Stock(item_), "9");
}

// process × process, finished order: answered from the lock-free read, so a resume does not
// wait even while another transaction holds the workflow's row lock (as every writer does).
TEST_F(DbRaceTest, ProcessOfAFinishedOrderDoesNotWaitForTheRowLock) {
  Complete();
  Session holder, b_session, c_session;
  holder.Must("BEGIN");
  holder.Must("SELECT 1 FROM orderflow.workflows WHERE order_id = $1 FOR UPDATE", {order_});
  Background b(&b_session, "SELECT orderflow.process_order($1)", {order_});
  Background c(&c_session, ProcessSql(), {order_, item_});
  ASSERT_TRUE(b.Finished(kNoWaitAnswer)) << "the resume of a finished order waited for the lock";
  ASSERT_TRUE(c.Finished(kNoWaitAnswer)) << "the replay of a finished order waited for the lock";
  EXPECT_EQ(b.Wait().Status(), "completed");
  EXPECT_EQ(c.Wait().Status(), "completed");
  holder.Must("ROLLBACK");
  EXPECT_TRUE(LedgerIsConsistent(order_, ReadOrder(order_)));
}

// process × cancel, the process first: the cancel waits for the resume, then undoes all it did.
// The cancel's answer is the final state (issue 8: it answered cancelled while the order
// ended completed, charged, with the cancel's reason).
TEST_F(DbRaceTest, ProcessThenCancelTheCancelWaitsAndUndoesEverything) {
  Park("charge");
  Session a_session, b_session, gate;
  CloseGate(&gate);
  Background a(&a_session, "SELECT orderflow.process_order($1)", {order_});
  ASSERT_TRUE(BlockedBy(a, gate.pid(), "the gate"));
  Background b(&b_session, "SELECT orderflow.cancel_order($1, 'customer asked')", {order_});
  EXPECT_TRUE(BlockedBy(b, a.pid(), "A"));
  EXPECT_TRUE(NoEffectWritten(b.pid()));
  gate.Must("COMMIT");

  const Outcome a_answer = a.Wait(), b_answer = b.Wait();
  EXPECT_EQ(a_answer.Status(), "completed") << a_answer.Describe();
  EXPECT_EQ(b_answer.Status(), "cancelled") << b_answer.Describe();
  const OrderRecord record = ReadOrder(order_);
  EXPECT_EQ(record.status, b_answer.Status()) << "the cancel's answer is the final state";
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
  Session a_session, b_session, gate;
  CloseGate(&gate);
  Background a(&a_session, "SELECT orderflow.cancel_order($1, 'changed my mind')", {order_});
  ASSERT_TRUE(BlockedBy(a, gate.pid(), "the gate")) << "A stops releasing the reservation";
  Background b(&b_session, "SELECT orderflow.process_order($1)", {order_});
  EXPECT_TRUE(BlockedBy(b, a.pid(), "A"));
  EXPECT_TRUE(NoEffectWritten(b.pid()));
  gate.Must("COMMIT");

  const Outcome a_answer = a.Wait(), b_answer = b.Wait();
  EXPECT_EQ(a_answer.Status(), "cancelled") << a_answer.Describe();
  EXPECT_EQ(b_answer.Status(), "cancelled") << b_answer.Describe();
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
  Session a_session, b_session, gate;
  CloseGate(&gate);
  Background a(&a_session, "SELECT orderflow.cancel_order($1)", {order_});
  ASSERT_TRUE(BlockedBy(a, gate.pid(), "the gate"));
  Background b(&b_session, "SELECT orderflow.process_order($1)", {order_});
  ASSERT_TRUE(b.Finished(kNoWaitAnswer)) << "the resume waited for the cancel";
  EXPECT_EQ(b.Wait().Status(), "completed");
  gate.Must("COMMIT");
  EXPECT_EQ(a.Wait().Status(), "cancelled");
  const OrderRecord record = ReadOrder(order_);
  EXPECT_EQ(record.status, "cancelled");
  EXPECT_TRUE(LedgerIsConsistent(order_, record));
}

// cancel × cancel: the second waits for the first, then answers the same cancelled state and
// undoes nothing again. One refund, one order.cancelled event, the first reason.
TEST_F(DbRaceTest, CancelCancelSecondWaitsAndRefundsNothing) {
  Complete();
  Session a_session, b_session, gate;
  CloseGate(&gate);
  Background a(&a_session, "SELECT orderflow.cancel_order($1, 'first')", {order_});
  ASSERT_TRUE(BlockedBy(a, gate.pid(), "the gate"));
  Background b(&b_session, "SELECT orderflow.cancel_order($1, 'second')", {order_});
  EXPECT_TRUE(BlockedBy(b, a.pid(), "A"));
  EXPECT_TRUE(NoEffectWritten(b.pid()));
  gate.Must("COMMIT");

  const Outcome a_answer = a.Wait(), b_answer = b.Wait();
  EXPECT_EQ(a_answer.Status(), "cancelled") << a_answer.Describe();
  EXPECT_EQ(b_answer.Status(), "cancelled") << b_answer.Describe();
  const OrderRecord record = ReadOrder(order_);
  EXPECT_EQ(record.status, "cancelled");
  EXPECT_EQ(record.cancel_reason, "first");
  EXPECT_EQ(record.refunds, 1);
  EXPECT_EQ(record.cancelled_events, 1);
  EXPECT_TRUE(LedgerIsConsistent(order_, record));
  EXPECT_EQ(Stock(item_), "10");
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
    Execute(ProcessSql(), {order_, item_});
    ASSERT_EQ(ReadOrder(order_).status, "charging");
    ASSERT_EQ(QueryCount("SELECT count(*) FROM orderflow.workflows"
                         " WHERE next_retry_at <= clock_timestamp()"),
              1)
        << "only our workflow is due";
  }
};

// process × resume_due, the client first: the janitor skips the locked workflow without
// waiting and reports 0 for it; the client's resume finishes it.
TEST_F(DbJanitorRaceTest, JanitorSkipsAWorkflowAClientHoldsWithoutWaiting) {
  Session a_session, janitor_session, gate;
  CloseGate(&gate);
  Background a(&a_session, "SELECT orderflow.process_order($1)", {order_});
  ASSERT_TRUE(BlockedBy(a, gate.pid(), "the gate"));
  Background janitor(&janitor_session, "SELECT orderflow.resume_due(16)");
  ASSERT_TRUE(janitor.Finished(kNoWaitAnswer)) << "the janitor waited for the client's resume";
  const Outcome janitor_answer = janitor.Wait();
  EXPECT_EQ(janitor_answer.Describe(), "0") << "the held workflow is not claimed";
  gate.Must("COMMIT");

  EXPECT_EQ(a.Wait().Status(), "completed");
  const OrderRecord record = ReadOrder(order_);
  EXPECT_EQ(record.status, "completed");
  EXPECT_TRUE(LedgerIsConsistent(order_, record));
  EXPECT_EQ(Attempts(order_, "charge"), "2");
}

// process × resume_due, the janitor first: the client's resume waits for the janitor, then
// answers completed without running a step.
TEST_F(DbJanitorRaceTest, ClientWaitsForTheJanitorThatHoldsTheWorkflow) {
  Session janitor_session, b_session, gate;
  CloseGate(&gate);
  Background janitor(&janitor_session, "SELECT orderflow.resume_due(16)");
  ASSERT_TRUE(BlockedBy(janitor, gate.pid(), "the gate"));
  Background b(&b_session, "SELECT orderflow.process_order($1)", {order_});
  EXPECT_TRUE(BlockedBy(b, janitor.pid(), "the janitor"));
  EXPECT_TRUE(NoEffectWritten(b.pid()));
  gate.Must("COMMIT");

  EXPECT_EQ(janitor.Wait().Describe(), "1");
  const Outcome b_answer = b.Wait();
  EXPECT_EQ(b_answer.Status(), "completed") << b_answer.Describe();
  const OrderRecord record = ReadOrder(order_);
  EXPECT_EQ(record.status, "completed");
  EXPECT_TRUE(LedgerIsConsistent(order_, record));
  EXPECT_EQ(Attempts(order_, "charge"), "2");
}

// cancel × resume_due: the cancel waits for the janitor's resume, then undoes all it did.
TEST_F(DbJanitorRaceTest, CancelWaitsForTheJanitorThenUndoesWhatItDid) {
  Session janitor_session, c_session, gate;
  CloseGate(&gate);
  Background janitor(&janitor_session, "SELECT orderflow.resume_due(16)");
  ASSERT_TRUE(BlockedBy(janitor, gate.pid(), "the gate"));
  Background cancel(&c_session, "SELECT orderflow.cancel_order($1, 'too slow')", {order_});
  EXPECT_TRUE(BlockedBy(cancel, janitor.pid(), "the janitor"));
  EXPECT_TRUE(NoEffectWritten(cancel.pid()));
  gate.Must("COMMIT");

  EXPECT_EQ(janitor.Wait().Describe(), "1");
  const Outcome cancelled = cancel.Wait();
  EXPECT_EQ(cancelled.Status(), "cancelled") << cancelled.Describe();
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
    setup.Must(ProcessSql(), {order_, item_});
    setup.Must("COMMIT");
    ASSERT_EQ(ReadOrder(order_).status, "completed");
    Execute("SELECT orderflow.publish_outbox(10000)");
  }

  // The gate of prune: holds the order's reservation, which prune deletes after the workflow's
  // row (the outbox events of a pruned workflow stay until they are old and published).
  void ClosePruneGate(Session* gate) {
    gate->Must("BEGIN");
    gate->Must("SELECT 1 FROM orderflow.reservations WHERE order_id = $1 FOR UPDATE", {order_});
  }
};

// prune × cancel: the cancel waits for the prune that deletes its workflow, then answers OF404
// (issue 8: 500, P0002 query returned no rows). Nothing is refunded.
TEST_F(DbPruneRaceTest, CancelWaitsForPruneThenAnswersNotFound) {
  Session p_session, c_session, gate;
  ClosePruneGate(&gate);
  Background prune(&p_session, "SELECT orderflow.prune(interval '1 day')");
  ASSERT_TRUE(BlockedBy(prune, gate.pid(), "the gate")) << "prune stops deleting the reservation";
  Background cancel(&c_session, "SELECT orderflow.cancel_order($1)", {order_});
  EXPECT_TRUE(BlockedBy(cancel, prune.pid(), "prune"));
  EXPECT_TRUE(NoEffectWritten(cancel.pid()));
  gate.Must("COMMIT");

  const Outcome pruned = prune.Wait();
  EXPECT_EQ(pruned.sqlstate, "") << pruned.message;
  const Outcome cancelled = cancel.Wait();
  EXPECT_EQ(cancelled.sqlstate, "OF404") << cancelled.Describe();
  const OrderRecord record = ReadOrder(order_);
  EXPECT_EQ(record.status, "") << "pruned";
  EXPECT_EQ(record.charges, 1);
  EXPECT_EQ(record.refunds, 0) << "a cancel that answered 404 refunds nothing";
  EXPECT_EQ(Stock(item_), "9") << "and releases nothing";
}

// prune × process: a resume of the finished workflow being pruned is answered from the
// lock-free read without waiting; once prune committed, the id cannot be charged again (OF409).
TEST_F(DbPruneRaceTest, ProcessDuringPruneAnswersWithoutWaitingAndNeverChargesAgain) {
  Session p_session, b_session, gate;
  ClosePruneGate(&gate);
  Background prune(&p_session, "SELECT orderflow.prune(interval '1 day')");
  ASSERT_TRUE(BlockedBy(prune, gate.pid(), "the gate"));
  Background b(&b_session, "SELECT orderflow.process_order($1)", {order_});
  ASSERT_TRUE(b.Finished(kNoWaitAnswer)) << "the resume of a finished order waited for prune";
  EXPECT_EQ(b.Wait().Status(), "completed");
  gate.Must("COMMIT");
  EXPECT_EQ(prune.Wait().sqlstate, "");

  Session after;
  EXPECT_EQ(after.Run(ProcessSql(), {order_, item_}).sqlstate, "OF409");
  const OrderRecord record = ReadOrder(order_);
  EXPECT_EQ(record.status, "");
  EXPECT_EQ(record.charges, 1);
  EXPECT_EQ(record.refunds, 0);
}

// prune × cancel, the cancel first: prune's delete waits for the cancel in progress, then
// re-checks the row. Whether the cancelled workflow is pruned or kept, the refund is there.
TEST_F(DbPruneRaceTest, PruneWaitsForACancelInProgress) {
  Session a_session, p_session, gate;
  CloseGate(&gate);
  Background cancel(&a_session, "SELECT orderflow.cancel_order($1, 'late')", {order_});
  ASSERT_TRUE(BlockedBy(cancel, gate.pid(), "the gate")) << "the cancel stops releasing";
  Background prune(&p_session, "SELECT orderflow.prune(interval '1 day')");
  EXPECT_TRUE(BlockedBy(prune, cancel.pid(), "the cancel"));
  gate.Must("COMMIT");

  const Outcome cancelled = cancel.Wait();
  EXPECT_EQ(cancelled.Status(), "cancelled") << cancelled.Describe();
  const Outcome pruned = prune.Wait();
  EXPECT_EQ(pruned.sqlstate, "") << pruned.message;
  const OrderRecord record = ReadOrder(order_);
  EXPECT_TRUE(record.status == "" || record.status == "cancelled") << record.status;
  EXPECT_EQ(record.charges, 1);
  EXPECT_EQ(record.refunds, 1);
  EXPECT_EQ(Stock(item_), "10");
}

// Unrelated orders never wait for each other: a transaction that finished one workflow,
// cancelled another and is still open (its finished counts, its rows, its locks all
// uncommitted) delays no call about other orders — new orders of another item, cancels, the
// janitor's tick with its fold of the counts, the counts /metrics reads, prune.
TEST_F(DbRaceTest, AnOpenTransactionThatFinishedWorkflowsBlocksNoOtherOrder) {
  const std::string done = Unique("dbrace-done"), fresh = Unique("dbrace-fresh");
  const std::string other_item = Unique("other-item");
  Execute("SELECT orderflow.set_stock($1, 10)", {other_item});
  Execute("SELECT orderflow.process_order($1, 5, 'untracked')", {done});
  const std::string to_cancel = Unique("dbrace-cancel");
  Execute("SELECT orderflow.process_order($1, 5, $2)", {to_cancel, other_item});

  Session holder;
  holder.Must("BEGIN");
  holder.Must(ProcessSql(), {order_, item_});
  holder.Must("SELECT orderflow.cancel_order($1)", {to_cancel});
  // The holder now holds the inventory row of item_ (its reservation) and of other_item (the
  // release), so the other calls use an untracked item.
  struct Call {
    const char* what;
    std::string sql;
    std::vector<std::string> params;
  };
  const std::vector<Call> calls = {
      {"a new order", "SELECT orderflow.process_order($1, 5, 'untracked')", {fresh}},
      {"a replay", "SELECT orderflow.process_order($1)", {done}},
      {"the janitor's tick", "SELECT orderflow.janitor_tick(16)", {}},
      {"the counts", "SELECT orderflow.workflow_counts()", {}},
      {"prune", "SELECT orderflow.prune(interval '1 day')", {}},
      {"a cancel", "SELECT orderflow.cancel_order($1)", {done}},
  };
  for (const Call& call : calls) {
    Session session;
    Background background(&session, call.sql, call.params);
    EXPECT_TRUE(background.Finished(kNoWaitAnswer))
        << call.what << " waited for an unrelated open transaction";
    const Outcome outcome = background.Wait();
    EXPECT_EQ(outcome.sqlstate, "") << call.what << ": " << outcome.message;
  }
  holder.Must("COMMIT");
  EXPECT_EQ(ReadOrder(fresh).status, "completed");
  EXPECT_EQ(ReadOrder(done).status, "cancelled");
  for (const std::string& id : {order_, fresh, done, to_cancel}) {
    EXPECT_TRUE(LedgerIsConsistent(id, ReadOrder(id)));
  }
  Execute("SELECT orderflow.set_stock($1, NULL)", {other_item});
}

// resume_now (the operator's "run it now") × process: the client's resume waits for the
// operator's, then answers completed. One charge.
TEST_F(DbRaceTest, ProcessWaitsForAnOperatorsResumeNow) {
  Park("charge");
  Session a_session, b_session, gate;
  CloseGate(&gate);
  Background a(&a_session, "SELECT orderflow.resume_now($1)", {order_});
  ASSERT_TRUE(BlockedBy(a, gate.pid(), "the gate"));
  Background b(&b_session, "SELECT orderflow.process_order($1)", {order_});
  EXPECT_TRUE(BlockedBy(b, a.pid(), "resume_now"));
  EXPECT_TRUE(NoEffectWritten(b.pid()));
  gate.Must("COMMIT");

  EXPECT_EQ(a.Wait().Status(), "completed") << a.Wait().Describe();
  EXPECT_EQ(b.Wait().Status(), "completed") << b.Wait().Describe();
  const OrderRecord record = ReadOrder(order_);
  EXPECT_EQ(record.status, "completed");
  EXPECT_TRUE(LedgerIsConsistent(order_, record));
  EXPECT_EQ(Attempts(order_, "charge"), "2");
}

}  // namespace
}  // namespace orderflow_test
