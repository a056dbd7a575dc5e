// Structured logging: one JSON object per line on stdout, written with a single write(2) so
// lines from different threads never interleave.
//
//   LogLine(LogLevel::kInfo, "request").Str("requestId", id).Int("status", 200).Num("ms", 1.5);
#ifndef ORDERFLOW_LOG_H_
#define ORDERFLOW_LOG_H_

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <string>

#include "config.h"

namespace orderflow {

// Lines below this level are dropped. Set once at start-up, before threads exist.
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

class LogLine {
 public:
  LogLine(LogLevel level, const char* event);
  ~LogLine();  // Writes the line.

  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  LogLine& Str(const char* key, const std::string& value);
  LogLine& Int(const char* key, int64_t value);
  LogLine& Num(const char* key, double value);
  LogLine& Bool(const char* key, bool value);

 private:
  const bool enabled_;
  rapidjson::StringBuffer buffer_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_;
};

}  // namespace orderflow

#endif  // ORDERFLOW_LOG_H_
