// Files embedded into the binary at build time (cmake/embed.cmake), so the server needs nothing
// beside it: the schema migrations, the SQL functions and the opt-in Citus placement.
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

// db/citus/*.sql, sorted by name: applied only where the citus extension exists, 1_* after the
// migrations and before the functions, the others after the functions (src/migrate.cc).
const std::vector<File>& Citus();

}  // namespace embedded
}  // namespace orderflow

#endif  // ORDERFLOW_EMBEDDED_H_
