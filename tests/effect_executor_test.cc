// ParseEffect and OutcomeJson: the two ends of the front's part in a provider call — reading
// the request the database leased, and writing what happened for report_effect.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "effects/executor.h"

namespace orderflow {
namespace effects {
namespace {

constexpr const char* kEffect =
    R"({"id": 7, "token": "0aa7042b-a106-45d8-94eb-2ac2965dfe73", "orderId": "o-1",
        "kind": "charge", "phase": "send", "method": "POST",
        "url": "http://127.0.0.1:9/v1/payment_intents", "body": "amount=2550&currency=usd",
        "headers": [["Idempotency-Key", "o-1:charge"], ["Stripe-Version", "2024-06-20"]],
        "timeoutMs": 1500})";

TEST(EffectExecutorTest, ParseEffectReadsTheRequestAndAddsTheKeyAsBearer) {
  EffectCall call;
  std::string error;
  ASSERT_TRUE(ParseEffect(kEffect, "sk_test_x", &call, &error)) << error;
  EXPECT_EQ(call.id, 7) << "the effect id";
  EXPECT_EQ(call.token, "0aa7042b-a106-45d8-94eb-2ac2965dfe73") << "the lease token";
  EXPECT_EQ(call.request.method, "POST") << "the method";
  EXPECT_EQ(call.request.body, "amount=2550&currency=usd") << "the stored body, unchanged";
  EXPECT_EQ(call.request.timeout.count(), 1500) << "the call's timeout";
  ASSERT_EQ(call.request.headers.size(), 3U) << "two stored headers and Authorization";
  EXPECT_EQ(call.request.headers[0].second, "o-1:charge") << "the idempotency key";
  EXPECT_EQ(call.request.headers[2].first, "Authorization") << "the credentials come last";
  EXPECT_EQ(call.request.headers[2].second, "Bearer sk_test_x") << "from the server, not the DB";
}

TEST(EffectExecutorTest, ParseEffectRefusesWhatIsNotALeasedRequest) {
  EffectCall call;
  std::string error;
  EXPECT_FALSE(ParseEffect("[]", "k", &call, &error)) << "not an object";
  EXPECT_FALSE(ParseEffect(R"({"id": 1, "timeoutMs": 5, "headers": []})", "k", &call, &error))
      << "no token, url or method";
  EXPECT_FALSE(ParseEffect(R"({"id": 1, "token": "t", "method": "DELETE", "url": "http://x",
                               "timeoutMs": 5, "headers": []})",
                           "k", &call, &error))
      << "only GET and POST";
  EXPECT_FALSE(ParseEffect(R"({"id": 1, "token": "t", "method": "GET", "url": "http://x",
                               "timeoutMs": 5, "headers": [["only-a-name"]]})",
                           "k", &call, &error))
      << "headers are pairs";
}

TEST(EffectExecutorTest, OutcomeJsonCarriesStatusBodyAndRetryAfter) {
  OutboundResponse response;
  response.status = 429;
  response.body = R"({"error":{"code":"rate_limit"}})";
  response.headers = {{"retry-after", "3"}, {"idempotent-replayed", "true"}};
  rapidjson::Document outcome;
  outcome.Parse(OutcomeJson(response).c_str());
  ASSERT_TRUE(outcome.IsObject()) << "a JSON object";
  EXPECT_STREQ(outcome["transport"].GetString(), "none") << "an answer came";
  EXPECT_EQ(outcome["status"].GetInt(), 429) << "its status";
  EXPECT_STREQ(outcome["body"].GetString(), response.body.c_str()) << "its body, as text";
  EXPECT_STREQ(outcome["retryAfter"].GetString(), "3") << "Retry-After for the schedule";
  EXPECT_TRUE(outcome["replayed"].GetBool()) << "Idempotent-Replayed";
}

TEST(EffectExecutorTest, OutcomeJsonNamesTheTransportErrorWithoutAStatus) {
  OutboundResponse response;
  response.error = TransportError::kReset;
  response.error_text = "Connection reset by peer";
  rapidjson::Document outcome;
  outcome.Parse(OutcomeJson(response).c_str());
  ASSERT_TRUE(outcome.IsObject()) << "a JSON object";
  EXPECT_STREQ(outcome["transport"].GetString(), "reset") << "what broke";
  EXPECT_FALSE(outcome.HasMember("status")) << "no status without an answer";
  EXPECT_STREQ(outcome["error"].GetString(), "Connection reset by peer") << "for the log";
}

}  // namespace
}  // namespace effects
}  // namespace orderflow
