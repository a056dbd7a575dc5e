#include "validation.h"

#include "gtest/gtest.h"

namespace orderflow {
namespace {

class ValidationTest : public ::testing::Test {
 protected:
  std::string Problem(const std::string& body) const { return validator_.Check(body).problem; }
  const RequestValidator validator_{};  // {}: clang refuses a const member default-initialised
};

TEST_F(ValidationTest, AcceptsAnyJsonObjectFieldRulesAreTheDatabases) {
  for (const char* body : {
           R"({"item":"widget","quantity":2})",
           R"({"item":"w","quantity":2.0})",   // SQL decides whether 2.0 is a quantity
           R"({"item":5,"quantity":"many"})",  // wrong types: SQL's sentence, not ours
           R"({"item":"","quantity":-1})",
           R"({"orderId":7,"amount":-1})",
           "{}",
           R"({"unknown":[1,{"a":null}],"deep":[[[[true,false]]]]})",
           " \r\n\t{ \"a\" : 1 } \n",
           R"({"a":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\u007f"})",
           "{\"a\":\"\x7f\xc3\xa9\xf0\x9f\x98\x80\"}",
           R"({"":0,"n":[-0,0.5,1e5,1E-5,-12.25e+3]})",
       }) {
    EXPECT_EQ(Problem(body), "") << body;
  }
}

TEST_F(ValidationTest, NumbersAreCheckedAgainstPostgresNumericNotDouble) {
  // jsonb keeps numbers as numeric: up to 10^131072, 16383 decimals; 1e400 is a valid amount
  // to refuse in SQL with its own sentence, not a transport error.
  for (const std::string& body :
       {std::string(R"({"n":1e400})"), std::string(R"({"n":-1e400})"),
        std::string(R"({"n":9.9e131071})"), std::string(R"({"n":1e-16383})"),
        std::string(R"({"n":0e1073741822})"), R"({"n":1)" + std::string(400, '0') + "}"}) {
    EXPECT_EQ(Problem(body), "") << body.substr(0, 40);
  }
  for (const std::string& body :
       {std::string(R"({"n":1e131072})"), std::string(R"({"n":1e-16384})"),
        std::string(R"({"n":10e-16384})"), std::string(R"({"n":0e1073741823})"),
        std::string(R"({"n":1e99999999999999999999})"), "{\"n\":0." + std::string(16384, '0') + "}",
        R"({"n":1)" + std::string(131072, '0') + "}"}) {
    EXPECT_EQ(Problem(body),
              "request body is not valid JSON: a number is too large or has too many decimals for "
              "PostgreSQL's numeric (at byte 5)")
        << body.substr(0, 40);
  }
}

TEST_F(ValidationTest, PassesTheTopLevelOrderIdAsJsonbWillKeepIt) {
  EXPECT_EQ(validator_.Check(R"({"orderId":"o-1","amount":1})").order_id, "o-1");
  EXPECT_EQ(validator_.Check(R"({"order\u0049d":"caf\u00e9\n"})").order_id, "caf\xc3\xa9\n")
      << "names and values are decoded";
  EXPECT_EQ(validator_.Check(R"({"orderId":"a","orderId":"b"})").order_id, "b")
      << "the last duplicate, as jsonb keeps it";
  EXPECT_EQ(validator_.Check(R"({"orderId":"a","orderId":7})").order_id, std::nullopt);
  EXPECT_EQ(validator_.Check(R"({"orderId":7})").order_id, std::nullopt);
  EXPECT_EQ(validator_.Check(R"({"orderId":null})").order_id, std::nullopt);
  EXPECT_EQ(validator_.Check(R"({"x":{"orderId":"nested"}})").order_id, std::nullopt);
  EXPECT_EQ(validator_.Check(R"({"amount":1})").order_id, std::nullopt);
  EXPECT_EQ(validator_.Check(R"({"orderId":""})").order_id, "") << "blank: SQL's to refuse";
}

TEST_F(ValidationTest, RefusesWhatIsNotOneJsonObject) {
  EXPECT_EQ(Problem(""), "request body is empty");
  EXPECT_EQ(Problem(" \r\n\t"), "request body is empty");
  for (const char* body : {"[1]", "null", "\"x\"", "1", "true"}) {
    EXPECT_EQ(Problem(body), "request body must be a JSON object") << body;
  }
  EXPECT_EQ(Problem(R"({"a":1} x)"),
            "request body is not valid JSON: unexpected data after the object (at byte 8)");
  EXPECT_EQ(Problem(R"({"a":1}{"a":1})"),
            "request body is not valid JSON: unexpected data after the object (at byte 7)");
  EXPECT_EQ(Problem(R"({"a":)"), "request body is not valid JSON: unexpected end (at byte 5)");
  EXPECT_EQ(Problem(R"({"a":1,})"),
            "request body is not valid JSON: expected a member name in double quotes (at byte 7)");
  EXPECT_EQ(Problem(R"({a:1})"),
            "request body is not valid JSON: expected a member name in double quotes (at byte 1)");
  EXPECT_EQ(Problem(R"({"a" 1})"),
            "request body is not valid JSON: expected ':' after a member name (at byte 5)");
  for (const char* body : {R"({"n":NaN})", R"({"n":Infinity})", R"({"n":01})", R"({"n":+1})",
                           R"({"n":1.})", R"({"n":.5})", R"({"n":0x10})", R"({"n":1e})",
                           R"({"n":-})", R"({"s":'x'})", R"({"s":"\q"})", R"({"s":"\u12G4"})",
                           R"({"s":"x)", R"({"a":[1,]})", R"({"a":tru})", "{\"a\":1/* c */}"}) {
    EXPECT_NE(Problem(body).find("request body is not valid JSON"), std::string::npos)
        << body << ": " << Problem(body);
  }
  EXPECT_EQ(Problem("\xef\xbb\xbf{}"), "request body must be a JSON object") << "a byte order mark";
}

TEST_F(ValidationTest, RefusesInvalidUtf8) {
  for (const char* body :
       {"{\"item\":\"\xff\xfe\"}", "{\"n\xff\":1}", "{}\xff", "{\"a\":\"\xc0\xaf\"}",
        "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"w\xc3\"}"}) {
    EXPECT_EQ(Problem(body), "request body is not valid UTF-8") << body;
  }
}

TEST_F(ValidationTest, RefusesWhatPostgresTextCannotHold) {
  // RapidJSON alone stops at a NUL and would accept the document before it; libpq would cut it.
  const std::string trailing("{\"item\":\"w\",\"quantity\":1}\0garbage", 33);
  EXPECT_EQ(Problem(trailing), "request body is not valid JSON: NUL byte (at byte 25)");
  const std::string inside("{\"item\":\"w\0x\",\"quantity\":1}", 28);
  EXPECT_EQ(Problem(inside), "request body is not valid JSON: NUL byte (at byte 10)");
  for (const char* body : {R"({"a":"\u0000"})", R"({"a\u0000":1})", R"({"a":["x\u0000y"]})"}) {
    EXPECT_EQ(Problem(body),
              "request body must not contain \\u0000: text cannot hold a NUL character")
        << body;
  }
  for (const char* body : {R"({"a":"\ud800"})", R"({"a":"w\ud800\u0041"})", R"({"a":"\udc00"})",
                           R"({"a":"\udfff\ud800"})", R"({"\ud800":1})"}) {
    EXPECT_NE(Problem(body).find("a \\u escape names an unpaired UTF-16 surrogate"),
              std::string::npos)
        << body << ": " << Problem(body);
  }
}

TEST_F(ValidationTest, NamesUnescapedControlCharacters) {
  EXPECT_EQ(Problem("{\"item\":\"a\x01\",\"quantity\":1}"),
            "request body is not valid JSON: control characters in strings must be escaped (at "
            "byte 10)");
  EXPECT_EQ(Problem("{\"item\":\"a\nb\",\"quantity\":1}"),
            "request body is not valid JSON: control characters in strings must be escaped (at "
            "byte 10)");
  EXPECT_EQ(Problem("{\"item\":\"w\",\n\t\"quantity\":1}"), "")
      << "whitespace between tokens is fine";
}

TEST_F(ValidationTest, RefusesDeepNestingWithoutRecursing) {
  // A root that is not an object fails on its first byte, however deep it goes.
  const std::string deep_root = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(Problem(deep_root), "request body must be a JSON object");
  const std::string deep = R"({"x":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(Problem(deep), "request body is nested more than 32 levels deep");
  std::string objects;
  for (int i = 0; i < 100000; ++i) objects += R"({"a":)";
  EXPECT_EQ(Problem(objects), "request body is nested more than 32 levels deep");
  const std::string at_limit = "{\"x\":" + std::string(31, '[') + std::string(31, ']') + "}";
  EXPECT_EQ(Problem(at_limit), "") << "32 levels, the body included";
  const std::string over = "{\"x\":" + std::string(32, '[') + std::string(32, ']') + "}";
  EXPECT_EQ(Problem(over), "request body is nested more than 32 levels deep");
}

TEST(IdempotencyKeyTest, OnlyPresenceAndTextAreTheFrontsTheRestIsTheDatabases) {
  EXPECT_EQ(CheckIdempotencyKey(nullptr), KeyCheck::kMissing);
  const std::string empty;
  EXPECT_EQ(CheckIdempotencyKey(&empty), KeyCheck::kMissing);
  for (const std::string& key : {std::string("k"), std::string(300, 'k'), std::string("tab\there"),
                                 std::string("caf\xc3\xa9")}) {
    EXPECT_EQ(CheckIdempotencyKey(&key), KeyCheck::kPresent) << key;
  }
  for (const std::string& key : {std::string("nul\0x", 5), std::string("\xff\xfe")}) {
    EXPECT_EQ(CheckIdempotencyKey(&key), KeyCheck::kNotText);
  }
}

}  // namespace
}  // namespace orderflow
