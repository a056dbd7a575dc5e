// Files embedded into the binary at build time (cmake/embed.cmake), so the server needs nothing
// beside it: the schema migrations and the SQL functions.
#ifndef ORDERFLOW_EMBEDDED_H_
#define ORDERFLOW_EMBEDDED_H_

#include <string>
#include <vector>

namespace orderflow {
namespace embedded {

struct File {
  const char* name;  // file name without directory, e.g. "001_core.sql"
  const char* text;
};

// db/migrations/*.sql, sorted by name (the version is the name).
const std::vector<File>& Migrations();

// db/functions/*.sql, sorted by name (applied in that order).
const std::vector<File>& Functions();

}  // namespace embedded
}  // namespace orderflow

#endif  // ORDERFLOW_EMBEDDED_H_
