#include "url.h"

#include "gtest/gtest.h"

namespace orderflow {
namespace {

TEST(UrlTest, DecodesEscapes) {
  EXPECT_EQ(PercentDecode("order%20a%2Fb"), "order a/b");
  EXPECT_EQ(PercentDecode("caf%C3%A9"), "caf\xc3\xa9");
  EXPECT_EQ(PercentDecode("a+b"), "a+b") << "'+' is not a space in a path";
  EXPECT_EQ(PercentDecode(""), "");
}

TEST(UrlTest, RefusesMalformedEscapes) {
  EXPECT_EQ(PercentDecode("%"), std::nullopt);
  EXPECT_EQ(PercentDecode("%4"), std::nullopt);
  EXPECT_EQ(PercentDecode("%zz"), std::nullopt);
  EXPECT_EQ(PercentDecode("abc%00def"), std::nullopt) << "a NUL would cut the id at abc";
  // PostgreSQL refuses text that is not UTF-8: that is the client's mistake, found here.
  EXPECT_EQ(PercentDecode("%FF"), std::nullopt);
  EXPECT_EQ(PercentDecode("a%C3%28b"), std::nullopt);
  EXPECT_EQ(PercentDecode("%ED%A0%80"), std::nullopt) << "a UTF-16 surrogate";
  EXPECT_EQ(PercentDecode("raw\xff"), std::nullopt);
}

}  // namespace
}  // namespace orderflow
