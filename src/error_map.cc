#include "error_map.h"

#include <cstring>

namespace orderflow {
namespace {

struct Rule {
  const char* prefix;  // A full SQLSTATE, or a two-character class.
  HttpErrorClass answer;
};

// First match wins; full codes come before the classes they belong to.
constexpr Rule kRules[] = {
    // Our own business errors (db/functions raise them; README lists them).
    {"22023", {400, "invalid_request", true, false}},  // invalid_parameter_value
    {"OF404", {404, "not_found", true, false}},        // unknown order
    {"OF409", {409, "order_conflict", true, false}},   // orderId known with other amount/item
    {"OF422", {422, "idempotency_key_reused", true, false}},  // key reused with another body
    // Input PostgreSQL itself refuses: bad text for a type, unstorable characters, checks.
    {"22P02", {400, "invalid_request", false, false}},  // invalid_text_representation
    {"22P05", {400, "invalid_request", false, false}},  // untranslatable_character (\u0000)
    {"22021", {400, "invalid_request", false, false}},  // character_not_in_repertoire
    {"22003", {400, "invalid_request", false, false}},  // numeric_value_out_of_range
    {"23514", {400, "invalid_request", false, false}},  // check_violation
    // Transient: retried by the front, then 503.
    {"40001", {503, "unavailable", false, true}},  // serialization_failure
    {"40P01", {503, "unavailable", false, true}},  // deadlock_detected
    // The database is unreachable, restarting, overloaded or too slow: 503 + Retry-After.
    {"57014", {503, "timeout", false, false}},      // query_canceled (statement_timeout)
    {"55P03", {503, "timeout", false, false}},      // lock_not_available (lock_timeout)
    {"57P01", {503, "unavailable", false, false}},  // admin_shutdown
    {"57P02", {503, "unavailable", false, false}},  // crash_shutdown
    {"57P03", {503, "unavailable", false, false}},  // cannot_connect_now
    {"08", {503, "unavailable", false, false}},     // connection_exception
    {"53", {503, "unavailable", false, false}},     // insufficient_resources
};

constexpr HttpErrorClass kInternal{500, "internal_error", false, false};

}  // namespace

HttpErrorClass ClassifySqlState(const std::string& sqlstate) {
  if (sqlstate.size() != 5) return kInternal;
  for (const Rule& rule : kRules) {
    if (sqlstate.compare(0, std::strlen(rule.prefix), rule.prefix) == 0) return rule.answer;
  }
  return kInternal;
}

}  // namespace orderflow
