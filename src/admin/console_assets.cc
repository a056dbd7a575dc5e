#include "admin/console_assets.h"

namespace orderflow {
namespace admin {
namespace {

bool EndsWith(const std::string& text, const char* suffix) {
  const std::string tail(suffix);
  return text.size() >= tail.size() &&
         text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

const Asset* FindAsset(const std::string& path) {
  const std::string wanted = path == "/" ? "/index.html" : path;
  for (const Asset& asset : ConsoleAssets()) {
    if (wanted == asset.path) return &asset;
  }
  return nullptr;
}

const char* ContentTypeFor(const std::string& path) {
  if (EndsWith(path, ".html") || path == "/") return "text/html; charset=utf-8";
  if (EndsWith(path, ".js")) return "text/javascript; charset=utf-8";
  if (EndsWith(path, ".css")) return "text/css; charset=utf-8";
  if (EndsWith(path, ".svg")) return "image/svg+xml";
  if (EndsWith(path, ".json")) return "application/json";
  return "application/octet-stream";
}

}  // namespace admin
}  // namespace orderflow
