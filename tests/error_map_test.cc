#include "error_map.h"

#include "gtest/gtest.h"

namespace orderflow {
namespace {

TEST(ErrorMapTest, BusinessErrorsShowTheirMessage) {
  for (const auto& [state, status, code] :
       {std::make_tuple("22023", 400, "invalid_request"),
        std::make_tuple("OF404", 404, "not_found"), std::make_tuple("OF409", 409, "order_conflict"),
        std::make_tuple("OF422", 422, "idempotency_key_reused")}) {
    const HttpErrorClass e = ClassifySqlState(state);
    EXPECT_EQ(e.http_status, status) << state;
    EXPECT_STREQ(e.code, code) << state;
    EXPECT_TRUE(e.show_message) << state;
    EXPECT_FALSE(e.retry) << state;
  }
}

TEST(ErrorMapTest, InputThePostgresRefusesIs400WithoutItsMessage) {
  for (const char* state : {"22P02", "23514", "22P05", "22021", "22003"}) {
    const HttpErrorClass e = ClassifySqlState(state);
    EXPECT_EQ(e.http_status, 400) << state;
    EXPECT_FALSE(e.show_message) << state;
  }
}

TEST(ErrorMapTest, TransientErrorsAreRetriedThen503) {
  for (const char* state : {"40001", "40P01"}) {
    const HttpErrorClass e = ClassifySqlState(state);
    EXPECT_EQ(e.http_status, 503) << state;
    EXPECT_TRUE(e.retry) << state;
  }
}

TEST(ErrorMapTest, UnreachableDatabaseIs503) {
  for (const char* state :
       {"08000", "08001", "08006", "57P01", "57P02", "57P03", "53300", "57014", "55P03"}) {
    const HttpErrorClass e = ClassifySqlState(state);
    EXPECT_EQ(e.http_status, 503) << state;
    EXPECT_FALSE(e.show_message) << state;
  }
}

TEST(ErrorMapTest, EverythingElseIsAnInternalError) {
  for (const char* state : {"XX000", "42P01", "23505", "P0001", "", "OF4", "toolong"}) {
    const HttpErrorClass e = ClassifySqlState(state);
    EXPECT_EQ(e.http_status, 500) << state;
    EXPECT_STREQ(e.code, "internal_error") << state;
    EXPECT_FALSE(e.show_message) << state;
  }
}

}  // namespace
}  // namespace orderflow
