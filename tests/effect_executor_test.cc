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

TEST(EffectExecutorTest, ParseEffectOfAPaymentsCallNamesItsProvider) {
  EffectCall call;
  std::string error;
  ASSERT_TRUE(ParseEffect(kEffect, "sk_test_x", &call, &error)) << error;
  EXPECT_EQ(call.provider, "payments") << "no provider member: the payments provider";
  EXPECT_TRUE(call.request.allow_private) << "no allowPrivate member: allowed";

  const std::string named = std::string(kEffect).replace(std::string(kEffect).find("\"kind\""), 0,
                                                         R"("provider": "payments", )");
  ASSERT_TRUE(ParseEffect(named, "sk_test_x", &call, &error)) << error;
  EXPECT_EQ(call.provider, "payments");
  ASSERT_EQ(call.request.headers.size(), 3U);
  EXPECT_EQ(call.request.headers[2].second, "Bearer sk_test_x");

  EXPECT_FALSE(ParseEffect(named, "", &call, &error)) << "no key: a payments call is not sent";
}

constexpr const char* kWebhook =
    R"({"id": 9, "token": "5b1c3a3e-8f6c-4a55-9d0e-1f3f1bb1c0de", "orderId": "o-1",
        "kind": "webhook", "provider": "webhook:3", "phase": "send", "method": "POST",
        "url": "https://hooks.example.com/orderflow", "allowPrivate": false,
        "body": "{\"type\":\"order.confirmed\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"data\":{}}",
        "headers": [["content-type", "application/json"], ["webhook-id", "evt_12"],
                    ["webhook-timestamp", "1767225600"],
                    ["webhook-signature", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="]],
        "timeoutMs": 5000})";

TEST(EffectExecutorTest, ParseEffectOfAWebhookPassesItsHeadersAndNeverTheKey) {
  EffectCall call;
  std::string error;
  ASSERT_TRUE(ParseEffect(kWebhook, "sk_live_secret", &call, &error)) << error;
  EXPECT_EQ(call.provider, "webhook:3");
  EXPECT_FALSE(call.request.allow_private) << "allowPrivate: false reaches the client";
  EXPECT_EQ(call.request.url, "https://hooks.example.com/orderflow");
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"content-type", "application/json"},
      {"webhook-id", "evt_12"},
      {"webhook-timestamp", "1767225600"},
      {"webhook-signature", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="}};
  EXPECT_EQ(call.request.headers, expected) << "the headers as given, and nothing else";
  for (const auto& header : call.request.headers) {
    EXPECT_EQ(header.second.find("sk_live_secret"), std::string::npos) << header.first;
  }
  ASSERT_TRUE(ParseEffect(kWebhook, "", &call, &error)) << "a webhook needs no key: " << error;

  const std::string allowed = std::string(kWebhook).replace(
      std::string(kWebhook).find("\"allowPrivate\": false"), 21, R"("allowPrivate": true)");
  ASSERT_TRUE(ParseEffect(allowed, "", &call, &error)) << error;
  EXPECT_TRUE(call.request.allow_private) << allowed;
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
  EXPECT_FALSE(ParseEffect(R"({"id": 1, "token": "t", "method": "GET", "url": "http://x",
                               "provider": 3, "timeoutMs": 5, "headers": []})",
                           "k", &call, &error))
      << "a provider is a name";
  EXPECT_FALSE(ParseEffect(R"({"id": 1, "token": "t", "method": "GET", "url": "http://x",
                               "provider": "webhook:1", "allowPrivate": "no", "timeoutMs": 5,
                               "headers": []})",
                           "k", &call, &error))
      << "allowPrivate is a boolean";
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
