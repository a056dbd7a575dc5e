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

using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST(UrlTest, ParsesAQueryIntoDecodedPairsInOrder) {
  EXPECT_EQ(ParseQuery(""), Pairs{});
  EXPECT_EQ(ParseQuery("after=abc&limit=10"), (Pairs{{"after", "abc"}, {"limit", "10"}}));
  EXPECT_EQ(ParseQuery("after=a%2Bb%3D%3D&x"), (Pairs{{"after", "a+b=="}, {"x", ""}}))
      << "escapes decoded; a name alone has an empty value";
  EXPECT_EQ(ParseQuery("after=a+b"), (Pairs{{"after", "a+b"}})) << "'+' is kept as sent";
  EXPECT_EQ(ParseQuery("a=1=2"), (Pairs{{"a", "1=2"}})) << "split at the first '='";
  EXPECT_EQ(ParseQuery("&a=1&&b=&"), (Pairs{{"a", "1"}, {"b", ""}})) << "empty pieces skipped";
  EXPECT_EQ(ParseQuery("l%69mit=5"), (Pairs{{"limit", "5"}})) << "names are decoded too";
}

TEST(UrlTest, RefusesAQueryThatDoesNotDecode) {
  EXPECT_EQ(ParseQuery("after=%zz"), std::nullopt);
  EXPECT_EQ(ParseQuery("after=%00"), std::nullopt) << "a NUL would cut the cursor";
  EXPECT_EQ(ParseQuery("after=%FF"), std::nullopt) << "not UTF-8";
  EXPECT_EQ(ParseQuery("%=1"), std::nullopt) << "in a name too";
}

}  // namespace
}  // namespace orderflow
