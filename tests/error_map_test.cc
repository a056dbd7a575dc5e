#include "error_map.h"

#include "gtest/gtest.h"

namespace orderflow {
namespace {

TEST(ErrorMapTest, ClientMistakesShowTheirMessage) {
  for (const auto& [state, status, code] :
       {std::make_tuple("22023", 400, "invalid_request"),
        std::make_tuple("OF404", 404, "not_found"), std::make_tuple("OF409", 409, "order_conflict"),
        std::make_tuple("OF422", 422, "idempotency_key_reused")}) {
    const HttpErrorClass e = HttpAnswerForSqlState(state);
    EXPECT_EQ(e.http_status, status) << state;
    EXPECT_STREQ(e.code, code) << state;
    EXPECT_TRUE(e.show_message) << state;
  }
}

TEST(ErrorMapTest, DataExceptionsOfTheServersOwnWorkAreInternal) {
  // Only our argument checks raise 22023; anything else of class 22 or 23 arises after the
  // arguments were accepted (an overflow, a constraint): the server's fault, never a 400.
  for (const char* state :
       {"22003", "22P02", "22P05", "22021", "22008", "22012", "23505", "23514", "23503", "23502"}) {
    const HttpErrorClass e = HttpAnswerForSqlState(state);
    EXPECT_EQ(e.http_status, 500) << state;
    EXPECT_STREQ(e.code, "internal_error") << state;
    EXPECT_FALSE(e.show_message) << state;
  }
}

TEST(ErrorMapTest, TransientTimeoutAndUnreachableAre503) {
  for (const auto& [state, code] :
       {std::make_pair("40001", "unavailable"), std::make_pair("40P01", "unavailable"),
        std::make_pair("08000", "unavailable"), std::make_pair("08001", "unavailable"),
        std::make_pair("08006", "unavailable"), std::make_pair("57P01", "unavailable"),
        std::make_pair("57P02", "unavailable"), std::make_pair("57P03", "unavailable"),
        std::make_pair("53300", "unavailable"), std::make_pair("57014", "timeout"),
        std::make_pair("55P03", "timeout")}) {
    const HttpErrorClass e = HttpAnswerForSqlState(state);
    EXPECT_EQ(e.http_status, 503) << state;
    EXPECT_STREQ(e.code, code) << state;
    EXPECT_FALSE(e.show_message) << state;
  }
}

TEST(ErrorMapTest, EverythingElseIsAnInternalError) {
  for (const char* state : {"XX000", "42P01", "P0001", "P0002", "F0000", "", "OF4", "toolong"}) {
    const HttpErrorClass e = HttpAnswerForSqlState(state);
    EXPECT_EQ(e.http_status, 500) << state;
    EXPECT_STREQ(e.code, "internal_error") << state;
    EXPECT_FALSE(e.show_message) << state;
  }
}

}  // namespace
}  // namespace orderflow
