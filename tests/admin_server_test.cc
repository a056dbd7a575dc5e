#include "admin/admin_server.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace orderflow {
namespace admin {
namespace {

const std::string kToken = "0123456789abcdef0123456789abcdef";

std::string HeaderOf(const Reply& reply, const std::string& name) {
  for (const auto& [key, value] : reply.headers) {
    if (key == name) return value;
  }
  return "";
}

// Records the calls the routes make and answers each with `answer`.
struct FakeDb {
  struct Seen {
    SqlCall call;
    std::vector<SqlValue> params;
  };
  std::vector<Seen> calls;
  Status status;
  SqlValue answer = std::string("{\"ok\":true}");

  SqlRunner Runner() {
    return [this](SqlCall call, const std::vector<SqlValue>& params, std::vector<SqlValue>* row) {
      calls.push_back({call, params});
      row->clear();
      if (status.ok()) row->push_back(answer);
      return status;
    };
  }
};

class AdminRoutesTest : public ::testing::Test {
 protected:
  AdminRoutesTest() {
    settings_.token = kToken;
    settings_.port = 3001;
    settings_.hosts = {"console.example"};
  }

  Reply Send(const std::string& method, const std::string& target, const std::string& body = "",
             bool with_token = true, const std::string& host = "127.0.0.1:3001",
             const std::string& content_type = "application/json") {
    AdminRequest request;
    request.method = method;
    const size_t q = target.find('?');
    request.path = target.substr(0, q);
    request.query = q == std::string::npos ? "" : target.substr(q + 1);
    request.body = body;
    host_ = host;
    authorization_ = "Bearer " + kToken;
    content_type_ = content_type;
    request.host = host.empty() ? nullptr : &host_;
    request.authorization = with_token ? &authorization_ : nullptr;
    request.content_type = content_type.empty() ? nullptr : &content_type_;
    request.remote = "127.0.0.1";
    return HandleAdminRequest(settings_, db_.Runner(), request, "req-1");
  }

  AdminSettings settings_;
  FakeDb db_;
  std::string host_, authorization_, content_type_;
};

TEST(AdminTokenTest, OnlyTheExactBearerTokenMatches) {
  const std::string good = "Bearer " + kToken;
  const std::string lower = "bearer " + kToken;
  const std::string spaced = "Bearer   " + kToken;
  const std::string shorter = "Bearer " + kToken.substr(1);
  const std::string longer = "Bearer " + kToken + "x";
  const std::string basic = "Basic " + kToken;
  const std::string bare = kToken;
  EXPECT_TRUE(TokenMatches(&good, kToken));
  EXPECT_TRUE(TokenMatches(&lower, kToken)) << "the scheme is case-insensitive";
  EXPECT_TRUE(TokenMatches(&spaced, kToken));
  EXPECT_FALSE(TokenMatches(&shorter, kToken));
  EXPECT_FALSE(TokenMatches(&longer, kToken));
  EXPECT_FALSE(TokenMatches(&basic, kToken));
  EXPECT_FALSE(TokenMatches(&bare, kToken));
  EXPECT_FALSE(TokenMatches(nullptr, kToken));
  EXPECT_FALSE(TokenMatches(&good, "")) << "no token set, nothing matches";
}

TEST(AdminHostTest, LoopbackWithThePortAndTheNamedHostsOnly) {
  const std::vector<std::string> hosts = {"console.example"};
  auto allowed = [&hosts](const std::string& host) { return HostAllowed(&host, 3001, hosts); };
  EXPECT_TRUE(allowed("127.0.0.1:3001"));
  EXPECT_TRUE(allowed("localhost:3001"));
  EXPECT_TRUE(allowed("LOCALHOST:3001"));
  EXPECT_TRUE(allowed("[::1]:3001"));
  EXPECT_TRUE(allowed("console.example"));
  EXPECT_TRUE(allowed("console.example:3001"));
  EXPECT_FALSE(allowed("localhost")) << "a browser always sends the port of a non-default one";
  EXPECT_FALSE(allowed("localhost:3000"));
  EXPECT_FALSE(allowed("evil.example:3001")) << "DNS rebinding: the attacker's name";
  EXPECT_FALSE(allowed("127.0.0.1:3001.evil.example"));
  EXPECT_FALSE(HostAllowed(nullptr, 3001, hosts));
}

TEST_F(AdminRoutesTest, EveryAnswerCarriesTheSecurityHeaders) {
  for (const Reply& reply :
       {Send("GET", "/", "", false), Send("GET", "/api/overview"),
        Send("GET", "/api/overview", "", false), Send("GET", "/", "", true, "evil.example:3001")}) {
    EXPECT_EQ(HeaderOf(reply, "Content-Security-Policy"), kContentSecurityPolicy);
    EXPECT_NE(HeaderOf(reply, "Content-Security-Policy").find("frame-ancestors 'none'"),
              std::string::npos);
    EXPECT_EQ(HeaderOf(reply, "X-Frame-Options"), "DENY");
    EXPECT_EQ(HeaderOf(reply, "X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(HeaderOf(reply, "Referrer-Policy"), "no-referrer");
    EXPECT_EQ(HeaderOf(reply, "Cache-Control"), "no-store");
  }
}

TEST_F(AdminRoutesTest, ThePageIsA401LoginWithoutTheTokenAnd200WithIt) {
  const Reply anonymous = Send("GET", "/", "", false);
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(anonymous.content_type, "text/html; charset=utf-8");
  EXPECT_NE(anonymous.body.find("<html"), std::string::npos);
  EXPECT_EQ(Send("GET", "/", "", true).status, 200);
  EXPECT_EQ(Send("GET", "/app.js", "", false).status, 200) << "code, no data: a script tag "
                                                              "cannot send the token";
  EXPECT_EQ(Send("GET", "/app.js", "", false).content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(Send("GET", "/nope.js", "", false).status, 404);
  EXPECT_EQ(Send("POST", "/", "", true).status, 405);
  EXPECT_TRUE(db_.calls.empty());
}

TEST_F(AdminRoutesTest, EveryJsonEndpointRefusesWithoutTheToken) {
  for (const auto& [method, target] :
       std::vector<std::pair<std::string, std::string>>{{"GET", "/api/overview"},
                                                        {"GET", "/api/workflows"},
                                                        {"GET", "/api/orders/o1"},
                                                        {"POST", "/api/orders/o1/cancel"},
                                                        {"POST", "/api/orders/o1/resume"},
                                                        {"POST", "/api/orders/o1/retry"},
                                                        {"POST", "/api/dead-letters/7/redrive"},
                                                        {"GET", "/api/unknown"}}) {
    const Reply reply = Send(method, target, "{\"reason\":\"x\"}", false);
    EXPECT_EQ(reply.status, 401) << method << " " << target;
    EXPECT_EQ(reply.content_type, "application/json");
    EXPECT_NE(reply.body.find("\"unauthorized\""), std::string::npos);
  }
  EXPECT_TRUE(db_.calls.empty()) << "nothing reaches the database without the token";
}

TEST_F(AdminRoutesTest, AForeignHostIsRefusedBeforeAnythingElse) {
  const Reply reply = Send("GET", "/api/overview", "", true, "rebound.example:3001");
  EXPECT_EQ(reply.status, 421);
  EXPECT_EQ(Send("GET", "/", "", true, "").status, 421) << "no Host header";
  EXPECT_EQ(Send("GET", "/api/overview", "", true, "console.example").status, 200);
  EXPECT_EQ(db_.calls.size(), 1U);
}

TEST_F(AdminRoutesTest, EachEndpointCallsItsOneFunction) {
  EXPECT_EQ(Send("GET", "/api/overview").status, 200);
  EXPECT_EQ(Send("GET", "/api/workflows?status=failed&prefix=ord%2D&limit=20").status, 200);
  EXPECT_EQ(Send("GET", "/api/workflows").status, 200);
  EXPECT_EQ(Send("GET", "/api/orders/ord%201").status, 200);
  EXPECT_EQ(Send("POST", "/api/orders/o1/cancel", "{\"reason\":\"customer asked\"}").status, 200);
  EXPECT_EQ(Send("POST", "/api/orders/o1/resume", "{}").status, 200);
  EXPECT_EQ(Send("POST", "/api/orders/o1/retry", "").status, 200);
  EXPECT_EQ(Send("POST", "/api/dead-letters/42/redrive", "{}").status, 200);
  ASSERT_EQ(db_.calls.size(), 8U);
  EXPECT_EQ(db_.calls[0].call, SqlCall::kConsoleOverview);
  EXPECT_EQ(db_.calls[1].call, SqlCall::kConsoleWorkflows);
  EXPECT_EQ(db_.calls[1].params,
            (std::vector<SqlValue>{std::string("failed"), std::nullopt, std::string("ord-"),
                                   std::nullopt, std::string("20")}));
  EXPECT_EQ(db_.calls[2].params, (std::vector<SqlValue>{std::nullopt, std::nullopt, std::nullopt,
                                                        std::nullopt, std::string("50")}));
  EXPECT_EQ(db_.calls[3].call, SqlCall::kConsoleOrder);
  EXPECT_EQ(db_.calls[3].params, (std::vector<SqlValue>{std::string("ord 1")}));
  EXPECT_EQ(db_.calls[4].call, SqlCall::kConsoleAction);
  EXPECT_EQ(db_.calls[4].params, (std::vector<SqlValue>{std::string("o1"), std::string("cancel"),
                                                        std::string("customer asked"),
                                                        std::string("console 127.0.0.1")}));
  EXPECT_EQ(db_.calls[5].params,
            (std::vector<SqlValue>{std::string("o1"), std::string("resume_now"), std::nullopt,
                                   std::string("console 127.0.0.1")}));
  EXPECT_EQ(db_.calls[6].params[1], SqlValue("retry"));
  EXPECT_EQ(db_.calls[7].call, SqlCall::kConsoleRedrive);
  EXPECT_EQ(db_.calls[7].params,
            (std::vector<SqlValue>{std::string("42"), std::string("console 127.0.0.1")}));
}

TEST_F(AdminRoutesTest, BadInputIsRefusedBeforeTheDatabase) {
  EXPECT_EQ(Send("POST", "/api/orders/o1/cancel", "{\"reason\":\"x\"}", true, "127.0.0.1:3001",
                 "text/plain")
                .status,
            415)
      << "CSRF: a cross-site form cannot send application/json";
  EXPECT_EQ(Send("POST", "/api/orders/o1/cancel", "{}").status, 400) << "a reason is required";
  EXPECT_EQ(Send("POST", "/api/orders/o1/cancel", "{\"reason\":\"  \"}").status, 400);
  EXPECT_EQ(Send("POST", "/api/orders/o1/cancel", "not json").status, 400);
  EXPECT_EQ(Send("POST", "/api/orders/o1/cancel", "{\"reason\":\"" + std::string(501, 'r') + "\"}")
                .status,
            400);
  EXPECT_EQ(Send("GET", "/api/workflows?limit=0").status, 400);
  EXPECT_EQ(Send("GET", "/api/workflows?limit=x").status, 400);
  EXPECT_EQ(Send("GET", "/api/workflows?color=red").status, 400);
  EXPECT_EQ(Send("GET", "/api/orders/%zz").status, 400);
  EXPECT_EQ(Send("POST", "/api/dead-letters/abc/redrive", "{}").status, 400);
  EXPECT_EQ(Send("GET", "/api/orders/o1/cancel").status, 405);
  EXPECT_EQ(Send("POST", "/api/overview", "{}").status, 405);
  EXPECT_EQ(Send("GET", "/api/orders/o1/explode").status, 404);
  EXPECT_TRUE(db_.calls.empty());
}

TEST_F(AdminRoutesTest, DatabaseErrorsGoThroughTheOneErrorMap) {
  db_.status = Status::Error("OF404", "order not found");
  Reply reply = Send("GET", "/api/orders/o1");
  EXPECT_EQ(reply.status, 404);
  EXPECT_NE(reply.body.find("order not found"), std::string::npos);
  db_.status = Status::Error("OF409", "only a failed order can be retried");
  EXPECT_EQ(Send("POST", "/api/orders/o1/retry", "{}").status, 409);
  db_.status = Status::Error("42883", "function orderflow.console_overview() does not exist",
                             "QUERY: SELECT orderflow.console_overview()");
  reply = Send("GET", "/api/overview");
  EXPECT_EQ(reply.status, 500);
  EXPECT_EQ(reply.body.find("console_overview"), std::string::npos) << "no SQL text leaks";
  EXPECT_NE(reply.log_detail.find("console_overview"), std::string::npos) << "the log has it";
  db_.status = Status();
  db_.answer = std::nullopt;
  EXPECT_EQ(Send("GET", "/api/orders/o1").status, 404) << "a null answer is no such order";
}

}  // namespace
}  // namespace admin
}  // namespace orderflow
