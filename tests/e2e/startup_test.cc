// End-to-end: the server's start-up against databases a newcomer may point it at — invalid
// connection settings (given up at once), an unreachable database (waited for, but a stop
// signal ends the wait at once) and a schema owner that is not a superuser.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <map>
#include <pqxx/pqxx>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "harness.h"

namespace orderflow_test {
namespace {

using Clock = std::chrono::steady_clock;

std::string TestPgPort() {
  const char* const port = std::getenv("ORDERFLOW_TEST_PG_PORT");
  if (port == nullptr || *port == '\0') {
    std::fprintf(stderr, "ORDERFLOW_TEST_PG_PORT is not set (run with `make test`).\n");
    std::abort();
  }
  return port;
}

// A URL to the test cluster as `role`, on `database`.
std::string UrlFor(const std::string& role, const std::string& database) {
  return "postgresql://" + role + "@127.0.0.1:" + TestPgPort() + "/" + database;
}

// A port on loopback that nothing listens on: bound, never listened on, kept for the test.
class DeadPort {
 public:
  DeadPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    socklen_t length = sizeof(address);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~DeadPort() { close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// Milliseconds from `since` until the server exits (-1: still running after `timeout`), and
// its exit status in *status.
long MillisUntilExit(ServerProcess* server, Clock::time_point since,
                     std::chrono::milliseconds timeout, int* status) {
  *status = server->Wait(timeout);
  if (*status == -1) return -1;
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
}

TEST(StartupTest, InvalidConnectionSettingsAreGivenUpAtOnce) {
  for (const std::string& bad : {UrlFor("postgres", "orderflow") + "?sslmode=bogus",
                                 UrlFor("postgres", "orderflow") + "?no_such_option=1",
                                 UrlFor("postgres", "orderflow") + "?connect_timeout=soon"}) {
    SCOPED_TRACE(bad);
    ServerProcess server({{"DATABASE_URL", bad}, {"MIGRATION_DATABASE_URL", bad}});
    const auto started = Clock::now();
    ASSERT_NO_FATAL_FAILURE(server.Launch());
    int status = 0;
    const long ms = MillisUntilExit(&server, started, std::chrono::seconds(10), &status);
    EXPECT_EQ(status, 1) << server.Log();
    EXPECT_GE(ms, 0);
    EXPECT_LT(ms, 2000) << "a configuration error is not waited for as if the database were down";
    const std::string log = server.Log();
    EXPECT_NE(log.find("\"event\":\"bad_database_url\""), std::string::npos) << log;
    EXPECT_EQ(log.find("database_unreachable"), std::string::npos) << "not retried: " << log;
  }
}

TEST(StartupTest, InvalidSettingsInTheRequestsOwnUrlEndTheStartToo) {
  // The owner's URL is fine and the schema is applied; DATABASE_URL, another URL, is not.
  const char* const api_url = std::getenv("ORDERFLOW_TEST_API_DATABASE_URL");
  const std::string bad =
      std::string(api_url != nullptr && *api_url != '\0' ? api_url : TestDatabaseUrl()) +
      "?sslmode=bogus";
  ServerProcess server({{"DATABASE_URL", bad}});
  const auto started = Clock::now();
  ASSERT_NO_FATAL_FAILURE(server.Launch());
  int status = 0;
  const long ms = MillisUntilExit(&server, started, std::chrono::seconds(10), &status);
  EXPECT_EQ(status, 1) << server.Log();
  EXPECT_GE(ms, 0);
  EXPECT_LT(ms, 3000);
  const std::string log = server.Log();
  EXPECT_NE(log.find("\"event\":\"bad_database_url\""), std::string::npos) << log;
  EXPECT_NE(log.find("invalid sslmode value"), std::string::npos) << log;
  EXPECT_EQ(log.find("\"event\":\"listening\""), std::string::npos) << log;
}

TEST(StartupTest, AStopSignalEndsTheWaitForAnUnreachableDatabase) {
  const DeadPort dead;
  const std::string url = "postgresql://postgres@127.0.0.1:" + std::to_string(dead.port()) + "/x";
  for (const int signal_number : {SIGINT, SIGTERM}) {
    SCOPED_TRACE(strsignal(signal_number));
    ServerProcess server({{"DATABASE_URL", url}, {"MIGRATION_DATABASE_URL", url}});
    ASSERT_NO_FATAL_FAILURE(server.Launch());
    ASSERT_TRUE(Eventually(
        [&] {
          return server.Log().find("\"event\":\"database_unreachable\"") != std::string::npos;
        },
        std::chrono::seconds(10)))
        << "the server waits for the database: " << server.Log();
    ASSERT_EQ(server.Wait(std::chrono::milliseconds(300)), -1) << "still waiting, not exited";
    const auto signalled = Clock::now();
    ASSERT_TRUE(server.Signal(signal_number));
    int status = 0;
    const long ms = MillisUntilExit(&server, signalled, std::chrono::seconds(10), &status);
    EXPECT_EQ(status, 1) << "not ready, so not a clean exit: " << server.Log();
    EXPECT_GE(ms, 0);
    EXPECT_LT(ms, 1500) << "the signal ends the wait at once";
    EXPECT_NE(server.Log().find("\"event\":\"stopped_before_ready\""), std::string::npos)
        << server.Log();
  }
}

// A schema owner with neither SUPERUSER nor CREATEROLE, on its own database, in a cluster where
// an administrator created orderflow_api once: the migrations apply, twice.
TEST(StartupTest, ASchemaOwnerWithoutCreateRoleMigrates) {
  const std::string suffix = Unique("owner").substr(6);
  std::string name = "of_owner_";
  for (const char c : suffix) name.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  const std::string admin_url = UrlFor("postgres", "postgres");
  {
    pqxx::connection admin(admin_url);
    pqxx::nontransaction sql(admin);
    sql.exec("CREATE ROLE " + name + " LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB");
    sql.exec("CREATE DATABASE " + name + " OWNER " + name);
  }
  const std::string owner_url = UrlFor(name, name);
  for (int run = 0; run < 2; ++run) {
    SCOPED_TRACE("run " + std::to_string(run + 1));
    ServerProcess migrate({{"DATABASE_URL", owner_url}, {"MIGRATION_DATABASE_URL", owner_url}});
    ASSERT_NO_FATAL_FAILURE(migrate.Launch({"--migrate"}));
    EXPECT_EQ(migrate.Wait(std::chrono::seconds(60)), 0) << migrate.Log();
    EXPECT_EQ(migrate.Log().find("CREATEROLE"), std::string::npos) << migrate.Log();
  }
  {
    pqxx::connection owner(owner_url);
    pqxx::nontransaction sql(owner);
    EXPECT_EQ(sql.exec1("SELECT count(*) FROM orderflow.schema_migrations WHERE version = "
                        "'003_roles'")[0]
                  .as<int>(),
              1);
    EXPECT_EQ(sql.exec1("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = "
                        "'orderflow'")[0]
                  .as<std::string>(),
              name);
    EXPECT_TRUE(sql.exec1("SELECT has_schema_privilege('orderflow_api', 'orderflow', 'USAGE')")[0]
                    .as<bool>());
  }
  pqxx::connection admin(admin_url);
  pqxx::nontransaction sql(admin);
  sql.exec("DROP DATABASE " + name + " WITH (FORCE)");
  sql.exec("DROP OWNED BY " + name);  // grants it holds in other databases: none, but be sure
  sql.exec("DROP ROLE " + name);
}

}  // namespace
}  // namespace orderflow_test
