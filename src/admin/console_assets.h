// The console's page, scripts and styles (console/), embedded into the binary at build time by
// cmake/embed_console.cmake, so the console needs no file and no network at run time.
#ifndef ORDERFLOW_ADMIN_CONSOLE_ASSETS_H_
#define ORDERFLOW_ADMIN_CONSOLE_ASSETS_H_

#include <cstddef>
#include <string>
#include <vector>

namespace orderflow {
namespace admin {

struct Asset {
  const char* path;  // as requested: "/index.html", "/app.js", ...
  const char* text;
  size_t size;
};

// Every file of console/, sorted by path (generated).
const std::vector<Asset>& ConsoleAssets();

// The asset served for a request path ("/" is "/index.html"), or null.
const Asset* FindAsset(const std::string& path);

// The Content-Type for a path, by its extension (text types are UTF-8).
const char* ContentTypeFor(const std::string& path);

}  // namespace admin
}  // namespace orderflow

#endif  // ORDERFLOW_ADMIN_CONSOLE_ASSETS_H_
