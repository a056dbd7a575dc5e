#include "reply.h"

#include "gtest/gtest.h"

namespace orderflow {
namespace {

std::string HeaderOf(const Reply& reply, const std::string& name) {
  for (const auto& [n, v] : reply.headers) {
    if (n == name) return v;
  }
  return "";
}

TEST(ReplyTest, ErrorBodyIsEscapedJson) {
  const Reply reply = Reply::Error(400, "invalid_request", "item \"x\" is\nbad");
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(reply.content_type, "application/json");
  EXPECT_EQ(reply.body, R"({"error":"item \"x\" is\nbad","code":"invalid_request"})");
}

TEST(ReplyTest, ErrorBodyIsAlwaysUtf8) {
  // A stray byte, an overlong '/', a UTF-16 surrogate and a cut sequence: each byte that starts
  // no well-formed sequence becomes U+FFFD; well-formed text is kept.
  const Reply reply =
      Reply::Error(400, "c", "a\xff b\xc0\xaf c\xed\xa0\x80 \xc3\xa9 \xf0\x9f\x94\x91 d\xe2\x82");
  EXPECT_EQ(
      reply.body,
      "{\"error\":\"a\xef\xbf\xbd b\xef\xbf\xbd\xef\xbf\xbd c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
      "\xc3\xa9 \xf0\x9f\x94\x91 d\xef\xbf\xbd\xef\xbf\xbd\",\"code\":\"c\"}");
}

TEST(ReplyTest, BusinessErrorsCarryTheDatabaseSentence) {
  const Reply reply =
      Reply::FromStatus(Status::Error("OF409", "orderId a is already known"), "rid");
  EXPECT_EQ(reply.status, 409);
  EXPECT_EQ(reply.body, R"({"error":"orderId a is already known","code":"order_conflict"})");
}

TEST(ReplyTest, BusinessErrorsShowOnlyTheSentenceNotTheContext) {
  // What libpqxx reports for a RAISE inside a PL/pgSQL function.
  const std::string message =
      "ERROR:  amount must have at most 2 decimal places\n"
      "CONTEXT:  PL/pgSQL function orderflow._check_amount(numeric) line 11 at RAISE\n"
      "SQL statement \"SELECT orderflow._check_amount(p_amount)\"\n";
  const Reply reply = Reply::FromStatus(Status::FromServerMessage("22023", message), "rid");
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(reply.body,
            R"({"error":"amount must have at most 2 decimal places","code":"invalid_request"})");
  EXPECT_NE(reply.log_detail.find("_check_amount"), std::string::npos)
      << "the log keeps the context";

  const Reply reused = Reply::FromStatus(
      Status::FromServerMessage(
          "OF422",
          "ERROR:  Idempotency-Key was already used with a different request\n"
          "DETAIL:  The key was first used for {\"item\": \"a\", \"quantity\": 1}.\n"),
      "rid");
  EXPECT_EQ(reused.body, R"({"error":"Idempotency-Key was already used with a different request",)"
                         R"("code":"idempotency_key_reused"})")
      << "the DETAIL (the first request) is not shown";

  const Reply newline = Reply::FromStatus(
      Status::FromServerMessage(
          "OF404",
          "ERROR:  order a\nb not found\n"
          "CONTEXT:  PL/pgSQL function orderflow.cancel_order(text,text) line 14\n"),
      "rid");
  EXPECT_EQ(newline.body, R"({"error":"order a\nb not found","code":"not_found"})")
      << "a newline inside the sentence (from the client's id) does not end it";

  const Reply blank = Reply::FromStatus(Status::FromServerMessage("OF404", "ERROR:  \n"), "rid");
  EXPECT_EQ(blank.body, R"({"error":"the database refused the request","code":"not_found"})");
}

TEST(ReplyTest, InternalErrorsHideTheDetailButLogIt) {
  const Reply reply = Reply::FromStatus(
      Status::Error("42P01", "relation \"orderflow.secret\" does not exist"), "r1");
  EXPECT_EQ(reply.status, 500);
  EXPECT_EQ(reply.body, R"({"error":"internal error","code":"internal_error","requestId":"r1"})");
  EXPECT_EQ(reply.body.find("secret"), std::string::npos) << "no SQL leaks to the client";
  EXPECT_NE(reply.log_detail.find("secret"), std::string::npos) << "the log keeps the detail";
}

TEST(ReplyTest, UnavailableIs503WithRetryAfter) {
  const Reply reply = Reply::FromStatus(Status::Error("08006", "connection refused"), "r");
  EXPECT_EQ(reply.status, 503);
  EXPECT_EQ(HeaderOf(reply, "Retry-After"), "1");
  EXPECT_EQ(reply.body.find("refused"), std::string::npos);
}

TEST(ReplyTest, DataExceptionsOfTheServersOwnWorkAre500WithoutTheDatabaseMessage) {
  for (const char* state : {"22003", "22P02", "22P05", "23505", "23514"}) {
    const Reply reply =
        Reply::FromStatus(Status::Error(state, "integer out of range in \"payments_key\""), "r");
    EXPECT_EQ(reply.status, 500) << state;
    EXPECT_EQ(reply.body, R"({"error":"internal error","code":"internal_error","requestId":"r"})")
        << state;
    EXPECT_NE(reply.log_detail.find("payments_key"), std::string::npos) << "the log keeps it";
  }
}

}  // namespace
}  // namespace orderflow
