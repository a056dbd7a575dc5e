// The webhook receiver the webhook tests rely on, checked on its own (no server, no database):
// it takes a correctly signed delivery, refuses a wrongly signed one, fails on demand, and a
// restart keeps its counts and its port.
#include "webhook_receiver.h"

#include <gtest/gtest.h>

#include <ctime>

#include "harness.h"

namespace orderflow_test {
namespace {

// whsec_ + base64 of 24 bytes.
const char kSecret[] = "whsec_c2VsZnRlc3Qtc2VjcmV0LTAxMjM0NTY3";
const char kOther[] = "whsec_YW5vdGhlci1zZWNyZXQtMDEyMzQ1Njc4";

HttpResponse Deliver(const WebhookReceiver& receiver, const std::string& name,
                     const std::string& id, const std::string& body, const std::string& secret) {
  const long now = static_cast<long>(std::time(nullptr));
  HttpRequest request;
  request.method = "POST";
  request.path = "/hooks/" + name;
  request.body = body;
  request.headers = {"Content-Type: application/json", "webhook-id: " + id,
                     "webhook-timestamp: " + std::to_string(now),
                     "webhook-signature: " + SignWebhook(secret, id, now, body)};
  request.timeout_ms = 10000;
  return SendHttp(receiver.port(), request);
}

const char kEvent[] =
    R"({"type":"order.confirmed","timestamp":"2026-01-01T00:00:00Z","data":{"orderId":"o-1"}})";

TEST(WebhookReceiverTest, SignsTheStandardWebhooksTestVector) {
  EXPECT_EQ(SignWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                        1614265330, R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(WebhookReceiverTest, VerifiesCountsFailsAndSurvivesARestart) {
  WebhookReceiver receiver;
  ASSERT_NO_FATAL_FAILURE(receiver.Start());
  ASSERT_NO_FATAL_FAILURE(receiver.AddEndpoint("a", {kSecret}));
  EXPECT_EQ(receiver.Url("a"), "http://127.0.0.1:" + std::to_string(receiver.port()) + "/hooks/a");

  EXPECT_EQ(Deliver(receiver, "a", "evt_1", kEvent, kSecret).status, 200);
  EXPECT_EQ(Deliver(receiver, "a", "evt_1", kEvent, kOther).status, 400);
  receiver.SetFault(R"({"endpoint":"a","status":429,"retryAfter":"3","times":1})");
  const HttpResponse limited = Deliver(receiver, "a", "evt_2", kEvent, kSecret);
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.Header("retry-after"), "3");

  WebhookDeliveries deliveries = receiver.Deliveries("a");
  EXPECT_EQ(deliveries.attempts, 2);
  EXPECT_EQ(deliveries.accepted, 1);
  EXPECT_EQ(deliveries.bad_signatures, 1);
  EXPECT_EQ(deliveries.arrivals.size(), 3u);
  ASSERT_EQ(deliveries.ids.count("evt_1"), 1u) << deliveries.json;
  EXPECT_EQ(deliveries.ids["evt_1"].accepted, 1);
  EXPECT_EQ(deliveries.ids["evt_1"].type, "order.confirmed");
  EXPECT_EQ(deliveries.ids["evt_1"].order_id, "o-1");
  EXPECT_EQ(deliveries.ids["evt_2"].attempts, 1);
  EXPECT_EQ(deliveries.ids["evt_2"].accepted, 0);

  // Down: connections refused. Back on the same port, with what it counted.
  const uint16_t port = receiver.port();
  receiver.Stop();
  EXPECT_EQ(Deliver(receiver, "a", "evt_2", kEvent, kSecret).status, 0);
  ASSERT_NO_FATAL_FAILURE(receiver.Restart());
  EXPECT_EQ(receiver.port(), port);
  EXPECT_EQ(Deliver(receiver, "a", "evt_2", kEvent, kSecret).status, 200);
  deliveries = receiver.WaitForDeliveries(
      "a", [](const WebhookDeliveries& d) { return d.accepted >= 2; }, std::chrono::seconds(5));
  EXPECT_EQ(deliveries.accepted, 2);
  EXPECT_EQ(deliveries.ids["evt_2"].attempts, 2);
  EXPECT_EQ(deliveries.ids["evt_2"].timestamps.size(), 2u);
  EXPECT_EQ(deliveries.Duplicates(), 0);

  receiver.Reset();
  EXPECT_EQ(receiver.Deliveries("a").attempts, 0);
  EXPECT_EQ(Deliver(receiver, "a", "evt_3", kEvent, kSecret).status, 200);  // still registered
}

}  // namespace
}  // namespace orderflow_test
