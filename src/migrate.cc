#include "migrate.h"

#include <memory>
#include <pqxx/pqxx>

#include "db/sqlstate.h"
#include "embedded.h"

namespace orderflow {
namespace {

// Any constant works as long as every orderflow server uses the same one.
constexpr const char* kLockKey = "hashtext('orderflow.schema')";

std::string VersionOf(const std::string& file_name) {
  const size_t dot = file_name.rfind(".sql");
  return dot == std::string::npos ? file_name : file_name.substr(0, dot);
}

}  // namespace

Status ApplySchema(const std::string& url, std::vector<std::string>* applied) {
  applied->clear();
  std::unique_ptr<pqxx::connection> connection;
  try {
    connection = std::make_unique<pqxx::connection>(url);
  } catch (const std::exception& e) {
    return ConnectFailure(e.what());
  }
  try {
    pqxx::work work(*connection, "orderflow-migrate");
    work.exec("SET LOCAL statement_timeout = 0");
    work.exec("SET LOCAL lock_timeout = 0");
    work.exec(std::string("SELECT pg_advisory_xact_lock(") + kLockKey + ")");
    work.exec("CREATE SCHEMA IF NOT EXISTS orderflow");
    work.exec(
        "CREATE TABLE IF NOT EXISTS orderflow.schema_migrations ("
        " version text PRIMARY KEY,"
        " applied_at timestamptz NOT NULL DEFAULT now())");
    for (const embedded::File& file : embedded::Migrations()) {
      const std::string version = VersionOf(file.name);
      const pqxx::result done =
          work.exec_params("SELECT 1 FROM orderflow.schema_migrations WHERE version = $1", version);
      if (!done.empty()) continue;
      work.exec(file.text, "migration " + version);
      work.exec_params("INSERT INTO orderflow.schema_migrations (version) VALUES ($1)", version);
      applied->push_back(version);
    }
    // Citus is opt-in: its files run only in a database where the extension was created
    // (scripts/citus.sh), in this transaction, with DDL sent to the workers one at a time.
    const bool citus = !work.exec("SELECT 1 FROM pg_extension WHERE extname = 'citus'").empty();
    if (citus) work.exec("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'");
    auto apply_citus = [&](bool before_functions) {
      if (!citus) return;
      for (const embedded::File& file : embedded::Citus()) {
        const bool first_part = std::string(file.name).rfind("1_", 0) == 0;
        if (first_part != before_functions) continue;
        work.exec(file.text, std::string("citus ") + file.name);
      }
    };
    apply_citus(true);
    for (const embedded::File& file : embedded::Functions()) {
      work.exec(file.text, std::string("functions ") + file.name);
    }
    apply_citus(false);
    work.commit();
  } catch (const pqxx::sql_error& e) {
    applied->clear();
    return Status::FromServerMessage(e.sqlstate(), e.what());
  } catch (const pqxx::broken_connection& e) {
    applied->clear();
    return Status::Error("08006", e.what());
  } catch (const std::exception& e) {
    applied->clear();
    return Status::Error("XX000", e.what());
  }
  return Status::Ok();
}

Status CheckConnection(const std::string& url) {
  try {
    pqxx::connection connection(url);
  } catch (const std::exception& e) {
    return ConnectFailure(e.what());
  }
  return Status::Ok();
}

}  // namespace orderflow
