#include "utf8.h"

#include "gtest/gtest.h"

namespace orderflow {
namespace {

TEST(Utf8Test, WellFormedTextIsKept) {
  for (const char* text :
       {"", "plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x94\x91", "\x7f"}) {
    EXPECT_EQ(WellFormedUtf8(text), text);
  }
}

TEST(Utf8Test, EachBadByteBecomesOneReplacementCharacter) {
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_EQ(WellFormedUtf8("a\xff"), "a" + fffd) << "a byte that starts nothing";
  EXPECT_EQ(WellFormedUtf8("\x80"), fffd) << "a stray continuation byte";
  EXPECT_EQ(WellFormedUtf8("\xc0\xaf"), fffd + fffd) << "an overlong '/'";
  EXPECT_EQ(WellFormedUtf8("\xed\xa0\x80"), fffd + fffd + fffd) << "a UTF-16 surrogate";
  EXPECT_EQ(WellFormedUtf8("\xf4\x90\x80\x80"), fffd + fffd + fffd + fffd) << "beyond U+10FFFF";
  EXPECT_EQ(WellFormedUtf8("x\xe2\x82"), "x" + fffd + fffd) << "a sequence cut short";
}

}  // namespace
}  // namespace orderflow
