#include "admin/console_assets.h"

#include <string>

#include "gtest/gtest.h"

namespace orderflow {
namespace admin {
namespace {

TEST(ConsoleAssetsTest, ThePageAndItsCodeAreEmbedded) {
  const Asset* const page = FindAsset("/");
  ASSERT_NE(page, nullptr);
  EXPECT_EQ(FindAsset("/index.html"), page);
  EXPECT_NE(std::string(page->text, page->size).find("app.js"), std::string::npos);
  EXPECT_NE(FindAsset("/app.js"), nullptr);
  EXPECT_NE(FindAsset("/style.css"), nullptr);
  EXPECT_EQ(FindAsset("/../CMakeLists.txt"), nullptr);
  EXPECT_EQ(FindAsset("/package.json"), nullptr) << "only html, js and css are embedded";
}

TEST(ConsoleAssetsTest, NoInlineScriptOrStyle) {
  // The Content-Security-Policy forbids them; a page that needed them would break silently.
  for (const Asset& asset : ConsoleAssets()) {
    const std::string text(asset.text, asset.size);
    if (std::string(asset.path).find(".html") == std::string::npos) continue;
    for (size_t at = text.find("<script"); at != std::string::npos;
         at = text.find("<script", at + 1)) {
      const std::string tag = text.substr(at, text.find('>', at) - at);
      EXPECT_NE(tag.find("src="), std::string::npos) << asset.path << ": " << tag;
    }
    EXPECT_EQ(text.find("<style"), std::string::npos) << asset.path;
    EXPECT_EQ(text.find(" style="), std::string::npos) << asset.path;
    EXPECT_EQ(text.find(" onclick="), std::string::npos) << asset.path;
  }
}

TEST(ConsoleAssetsTest, ContentTypes) {
  EXPECT_STREQ(ContentTypeFor("/"), "text/html; charset=utf-8");
  EXPECT_STREQ(ContentTypeFor("/app.js"), "text/javascript; charset=utf-8");
  EXPECT_STREQ(ContentTypeFor("/style.css"), "text/css; charset=utf-8");
}

}  // namespace
}  // namespace admin
}  // namespace orderflow
