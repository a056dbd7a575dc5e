#include "status.h"

#include "gtest/gtest.h"

namespace orderflow {
namespace {

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_EQ(Status::Ok().ToString(), "OK");
  const Status error = Status::Error("08006", "connection refused");
  EXPECT_FALSE(error.ok());
  EXPECT_EQ(error.sqlstate(), "08006");
  EXPECT_EQ(error.ToString(), "08006: connection refused");
}

TEST(StatusTest, ServerMessageKeepsTheSentenceForClientsAndEverythingForTheLog) {
  const std::string text =
      "ERROR:  amount must have at most 2 decimal places\n"
      "CONTEXT:  PL/pgSQL function orderflow._check_amount(numeric) line 11 at RAISE\n";
  const Status status = Status::FromServerMessage("22023", text);
  EXPECT_EQ(status.message(), "amount must have at most 2 decimal places");
  EXPECT_EQ(status.detail(), text);
  EXPECT_NE(status.ToString().find("_check_amount"), std::string::npos);
}

TEST(StatusTest, EveryLabelEndsTheSentence) {
  for (const char* label : {"DETAIL", "HINT", "QUERY", "CONTEXT", "LOCATION"}) {
    const Status status = Status::FromServerMessage(
        "OF422", std::string("ERROR:  key reused\n") + label + ":  more\n");
    EXPECT_EQ(status.message(), "key reused") << label;
  }
  EXPECT_EQ(Status::FromServerMessage("42601", "ERROR:  syntax\nLINE 1: SELECT\n").message(),
            "syntax");
  EXPECT_EQ(Status::FromServerMessage("57P01", "FATAL:  terminating connection\n").message(),
            "terminating connection");
}

TEST(StatusTest, ANewlineFromClientDataStaysInTheSentence) {
  EXPECT_EQ(
      Status::FromServerMessage("OF404", "ERROR:  order a\nb not found\nCONTEXT:  x\n").message(),
      "order a\nb not found");
}

TEST(StatusTest, AMissingSqlStateIsAnInternalErrorNeverOk) {
  const Status status = Status::FromServerMessage("", "ERROR:  something\n");
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.sqlstate(), "XX000");
  EXPECT_EQ(Status::FromServerMessage("4000", "x").sqlstate(), "XX000");
}

TEST(StatusTest, AnEmptySentenceGetsAGenericOne) {
  EXPECT_EQ(Status::FromServerMessage("OF404", "ERROR:  \n").message(),
            "the database refused the request");
  EXPECT_EQ(Status::FromServerMessage("OF404", "").message(), "the database refused the request");
}

}  // namespace
}  // namespace orderflow
