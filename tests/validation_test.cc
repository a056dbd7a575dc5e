#include "validation.h"

#include "gtest/gtest.h"

namespace orderflow {
namespace {

class ValidationTest : public ::testing::Test {
 protected:
  const RequestValidator validator_;
};

TEST_F(ValidationTest, AcceptsWellFormedBodies) {
  EXPECT_EQ(validator_.Validate(RequestKind::kCreateOrder, R"({"item":"widget","quantity":2})"),
            "");
  EXPECT_EQ(validator_.Validate(RequestKind::kCreateOrder,
                                R"({"item":"w","quantity":1000000,"unknown":[1,{"a":null}]})"),
            "")
      << "unknown fields are ignored";
  EXPECT_EQ(validator_.Validate(RequestKind::kProcessOrder,
                                R"({"orderId":"o-1","amount":99.99,"item":"widget"})"),
            "");
  EXPECT_EQ(validator_.Validate(RequestKind::kProcessOrder, R"({"orderId":"o-1"})"), "")
      << "resume by id";
  EXPECT_EQ(validator_.Validate(RequestKind::kCancelOrder, R"({"reason":"customer asked"})"), "");
  EXPECT_EQ(validator_.Validate(RequestKind::kCancelOrder, "{}"), "");
}

TEST_F(ValidationTest, NamesTheMissingField) {
  EXPECT_EQ(validator_.Validate(RequestKind::kCreateOrder, R"({"item":"widget"})"),
            "quantity is required");
  EXPECT_EQ(validator_.Validate(RequestKind::kCreateOrder, R"({"quantity":1})"),
            "item is required");
  EXPECT_EQ(validator_.Validate(RequestKind::kProcessOrder, R"({"amount":1})"),
            "orderId is required");
}

TEST_F(ValidationTest, NamesTheWrongField) {
  const struct {
    RequestKind kind;
    const char* body;
    const char* message;
  } cases[] = {
      {RequestKind::kCreateOrder, R"({"item":"","quantity":1})",
       "item must be a string of 1 to 200 characters"},
      {RequestKind::kCreateOrder, R"({"item":5,"quantity":1})",
       "item must be a string of 1 to 200 characters"},
      {RequestKind::kCreateOrder, R"({"item":"w","quantity":0})",
       "quantity must be an integer from 1 to 1000000"},
      {RequestKind::kCreateOrder, R"({"item":"w","quantity":1.5})",
       "quantity must be an integer from 1 to 1000000"},
      {RequestKind::kCreateOrder, R"({"item":"w","quantity":1000001})",
       "quantity must be an integer from 1 to 1000000"},
      {RequestKind::kCreateOrder, R"({"item":"w","quantity":"1"})",
       "quantity must be an integer from 1 to 1000000"},
      {RequestKind::kProcessOrder, R"({"orderId":"o","amount":-1})",
       "amount must be a number greater than 0 and less than 10000000000"},
      {RequestKind::kProcessOrder, R"({"orderId":"o","amount":0})",
       "amount must be a number greater than 0 and less than 10000000000"},
      {RequestKind::kProcessOrder, R"({"orderId":"o","amount":10000000000})",
       "amount must be a number greater than 0 and less than 10000000000"},
      {RequestKind::kProcessOrder, R"({"orderId":7})",
       "orderId must be a string of 1 to 200 characters"},
      {RequestKind::kCancelOrder, R"({"reason":7})",
       "reason must be a string of 1 to 500 characters"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(validator_.Validate(c.kind, c.body), c.message) << c.body;
  }
}

TEST_F(ValidationTest, CountsCharactersNotBytes) {
  std::string item;
  for (int i = 0; i < 200; ++i) item += "\xc3\xa9";  // 200 characters, 400 bytes
  EXPECT_EQ(
      validator_.Validate(RequestKind::kCreateOrder, R"({"item":")" + item + R"(","quantity":1})"),
      "");
}

TEST_F(ValidationTest, RefusesWhatIsNotOneJsonObject) {
  EXPECT_EQ(validator_.Validate(RequestKind::kCreateOrder, ""), "request body is empty");
  EXPECT_EQ(validator_.Validate(RequestKind::kCreateOrder, "[1]"),
            "request body must be a JSON object with item and quantity");
  EXPECT_EQ(validator_.Validate(RequestKind::kCreateOrder, "null"),
            "request body must be a JSON object with item and quantity");
  EXPECT_NE(validator_.Validate(RequestKind::kCreateOrder, R"({"item":"w","quantity":1} x)"), "");
  EXPECT_NE(validator_.Validate(RequestKind::kCreateOrder, R"({"item":"w",)"), "");
  EXPECT_NE(validator_.Validate(RequestKind::kProcessOrder, R"({"orderId":"o","amount":NaN})"), "");
  EXPECT_NE(validator_.Validate(RequestKind::kProcessOrder, R"({"orderId":"o","amount":1e400})"),
            "");
}

TEST_F(ValidationTest, RefusesInvalidUtf8) {
  EXPECT_EQ(
      validator_.Validate(RequestKind::kCreateOrder, "{\"item\":\"\xff\xfe\",\"quantity\":1}"),
      "request body is not valid UTF-8");
}

TEST_F(ValidationTest, RefusesNulBytesAnywhere) {
  // RapidJSON alone stops at a NUL and would accept the document before it.
  const std::string trailing("{\"item\":\"w\",\"quantity\":1}\0garbage", 33);
  EXPECT_EQ(validator_.Validate(RequestKind::kCreateOrder, trailing),
            "request body is not valid JSON: NUL byte (at byte 25)");
  const std::string inside("{\"item\":\"w\0x\",\"quantity\":1}", 28);
  EXPECT_EQ(validator_.Validate(RequestKind::kCreateOrder, inside),
            "request body is not valid JSON: NUL byte (at byte 10)");
}

TEST_F(ValidationTest, NamesUnescapedControlCharacters) {
  EXPECT_EQ(validator_.Validate(RequestKind::kCreateOrder, "{\"item\":\"a\x01\",\"quantity\":1}"),
            "request body is not valid JSON: control characters in strings must be escaped (at "
            "byte 10)");
  EXPECT_EQ(validator_.Validate(RequestKind::kCreateOrder, "{\"item\":\"a\nb\",\"quantity\":1}"),
            "request body is not valid JSON: control characters in strings must be escaped (at "
            "byte 10)");
  EXPECT_EQ(validator_.Validate(RequestKind::kCreateOrder, "{\"item\":\"w\",\n\t\"quantity\":1}"),
            "")
      << "whitespace between tokens is fine";
}

TEST_F(ValidationTest, RefusesDeepNestingWithoutRecursing) {
  // A root that is not an object fails on its first byte, however deep it goes.
  const std::string deep_root = std::string(10000, '[') + std::string(10000, ']');
  EXPECT_EQ(validator_.Validate(RequestKind::kCreateOrder, deep_root),
            "request body must be a JSON object with item and quantity");
  const std::string deep = R"({"x":)" + std::string(10000, '[') + std::string(10000, ']') + "}";
  EXPECT_EQ(validator_.Validate(RequestKind::kCreateOrder, deep),
            "request body is nested more than 32 levels deep");
  const std::string deep_field =
      R"({"item":"w","quantity":1,"x":)" + std::string(100, '[') + std::string(100, ']') + "}";
  EXPECT_EQ(validator_.Validate(RequestKind::kCreateOrder, deep_field),
            "request body is nested more than 32 levels deep");
}

TEST(IdempotencyKeyTest, ChecksPresenceLengthAndCharacters) {
  EXPECT_EQ(CheckIdempotencyKey(false, ""), KeyCheck::kMissing);
  EXPECT_EQ(CheckIdempotencyKey(true, ""), KeyCheck::kMissing);
  EXPECT_EQ(CheckIdempotencyKey(true, "k"), KeyCheck::kOk);
  EXPECT_EQ(CheckIdempotencyKey(true, std::string(255, 'k')), KeyCheck::kOk);
  EXPECT_EQ(CheckIdempotencyKey(true, std::string(256, 'k')), KeyCheck::kInvalid);
  EXPECT_EQ(CheckIdempotencyKey(true, "with space ~ ok"), KeyCheck::kOk);
  EXPECT_EQ(CheckIdempotencyKey(true, "tab\there"), KeyCheck::kInvalid);
  EXPECT_EQ(CheckIdempotencyKey(true, "caf\xc3\xa9"), KeyCheck::kInvalid);
  EXPECT_EQ(CheckIdempotencyKey(true, std::string("nul\0x", 5)), KeyCheck::kInvalid);
}

}  // namespace
}  // namespace orderflow
