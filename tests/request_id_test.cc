#include "request_id.h"

#include <set>

#include "gtest/gtest.h"

namespace orderflow {
namespace {

TEST(RequestIdTest, KeepsASaneClientId) {
  const std::string given = "trace-1.2_3:4";
  EXPECT_EQ(RequestIdFor(&given), given);
}

TEST(RequestIdTest, ReplacesMissingOrUnsafeIds) {
  const std::string unsafe = "a\"b";
  const std::string overlong(129, 'a');
  const std::string empty;
  for (const std::string* given :
       {static_cast<const std::string*>(nullptr), &unsafe, &overlong, &empty}) {
    const std::string id = RequestIdFor(given);
    EXPECT_EQ(id.size(), 32U);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
  }
}

TEST(RequestIdTest, GeneratedIdsDiffer) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(RequestIdFor(nullptr));
  EXPECT_EQ(ids.size(), 1000U);
}

}  // namespace
}  // namespace orderflow
