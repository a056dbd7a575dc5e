#include "db/sqlstate.h"

#include "gtest/gtest.h"

namespace orderflow {
namespace {

TEST(SqlStateTest, KindsOfTheStatesWeKnow) {
  for (const auto& [state, kind] : {
           std::make_pair("22023", ErrorKind::kInvalidArgument),
           std::make_pair("OF404", ErrorKind::kNotFound),
           std::make_pair("OF409", ErrorKind::kConflict),
           std::make_pair("OF422", ErrorKind::kKeyReused),
           std::make_pair("40001", ErrorKind::kTransient),
           std::make_pair("40P01", ErrorKind::kTransient),
           std::make_pair("57014", ErrorKind::kTimeout),
           std::make_pair("55P03", ErrorKind::kTimeout),
           std::make_pair("57P01", ErrorKind::kUnavailable),
           std::make_pair("57P02", ErrorKind::kUnavailable),
           std::make_pair("57P03", ErrorKind::kUnavailable),
           std::make_pair("08001", ErrorKind::kUnavailable),
           std::make_pair("08006", ErrorKind::kUnavailable),
           std::make_pair("53300", ErrorKind::kUnavailable),
           std::make_pair("F0000", ErrorKind::kConfiguration),
       }) {
    EXPECT_EQ(ClassifySqlState(state), kind) << state;
  }
}

TEST(SqlStateTest, OtherDataExceptionsAndUnknownStatesAreInternal) {
  for (const char* state : {"22003", "22P02", "22P05", "22021", "23505", "23514", "40000", "40003",
                            "57000", "XX000", "42P01", "P0002", "", "2202", "220233", "of404"}) {
    EXPECT_EQ(ClassifySqlState(state), ErrorKind::kInternal) << state;
  }
}

TEST(SqlStateTest, ClientErrorsAreExactlyOurArgumentChecksAndBusinessRefusals) {
  EXPECT_TRUE(IsClientError(ErrorKind::kInvalidArgument));
  EXPECT_TRUE(IsClientError(ErrorKind::kNotFound));
  EXPECT_TRUE(IsClientError(ErrorKind::kConflict));
  EXPECT_TRUE(IsClientError(ErrorKind::kKeyReused));
  for (const ErrorKind kind : {ErrorKind::kTransient, ErrorKind::kTimeout, ErrorKind::kUnavailable,
                               ErrorKind::kConfiguration, ErrorKind::kInternal}) {
    EXPECT_FALSE(IsClientError(kind));
  }
}

TEST(SqlStateTest, ConnectionLevelStatesLoseTheConnection) {
  for (const char* state : {"08000", "08001", "08003", "08006", "57P01", "57P02", "57P03"}) {
    EXPECT_TRUE(LosesConnection(state)) << state;
  }
  for (const char* state : {"57014", "55P03", "40001", "53300", "22023", "XX000", ""}) {
    EXPECT_FALSE(LosesConnection(state)) << state;
  }
}

TEST(SqlStateTest, InvalidConnectionSettingsArePermanentOtherFailuresAreNot) {
  // libpq's own words (PostgreSQL 15) for settings it refuses before reaching a server.
  for (const char* message : {
           "invalid sslmode value: \"bogus\"\n",
           "invalid target_session_attrs value: \"zz\"\n",
           "invalid URI query parameter: \"bogus\"\n",
           "invalid connection option \"bogus\"\n",
           "missing \"=\" after \"x\" in connection info string\n",
           "connection to server at \"127.0.0.1\", port 1 failed: invalid integer value \"abc\" "
           "for connection option \"connect_timeout\"\n",
       }) {
    EXPECT_EQ(ConnectFailure(message).sqlstate(), "F0000") << message;
  }
  for (const char* message : {
           "connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the "
           "server running on that host and accepting TCP/IP connections?\n",
           "connection to server on socket \"/tmp/.s.PGSQL.5432\" failed: No such file or "
           "directory\n",
           "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  the database system "
           "is starting up\n",
           "could not translate host name \"db\" to address: Temporary failure in name "
           "resolution\n",
       }) {
    const Status status = ConnectFailure(message);
    EXPECT_EQ(status.sqlstate(), "08001") << message;
    EXPECT_EQ(status.message(), message);
  }
}

}  // namespace
}  // namespace orderflow
