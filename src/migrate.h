// Schema set-up at start-up: the embedded migrations (each applied once, recorded in
// orderflow.schema_migrations) and then every embedded function file (CREATE OR REPLACE),
// all in one transaction under an advisory lock, so several servers starting at once are safe
// and a failed migration leaves nothing half-applied.
#ifndef ORDERFLOW_MIGRATE_H_
#define ORDERFLOW_MIGRATE_H_

#include <string>
#include <vector>

#include "status.h"

namespace orderflow {

// Applies the schema through a connection to `url` (the owner's). On success *applied lists
// the migrations this call applied (empty when the schema was up to date).
Status ApplySchema(const std::string& url, std::vector<std::string>* applied);

// Opens and closes one connection to `url`: OK, or the failure as db/sqlstate.h classifies it
// (F0000 for settings libpq refuses). For a DATABASE_URL other than the owner's, checked once
// at start-up so that a settings mistake in it ends the start instead of failing every request.
Status CheckConnection(const std::string& url);

}  // namespace orderflow

#endif  // ORDERFLOW_MIGRATE_H_
