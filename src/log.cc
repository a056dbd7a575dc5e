#include "log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>

#include "utf8.h"

namespace orderflow {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

// The current time as 2026-11-22T06:43:05.123Z. The part up to the seconds is formatted once per
// second per thread: strftime was a visible share of a request's instructions under callgrind.
std::string NowIso() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  thread_local std::time_t cached_second = -1;
  thread_local char cached_text[24];
  thread_local size_t cached_length = 0;
  if (seconds != cached_second) {
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    cached_length = std::strftime(cached_text, sizeof(cached_text), "%Y-%m-%dT%H:%M:%S", &utc);
    cached_second = seconds;
  }
  char text[32];
  std::memcpy(text, cached_text, cached_length);
  std::snprintf(text + cached_length, sizeof(text) - cached_length, ".%03dZ",
                static_cast<int>(millis));
  return text;
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

LogLine::LogLine(LogLevel level, const char* event)
    : enabled_(LogEnabled(level)), writer_(buffer_) {
  if (!enabled_) return;
  writer_.StartObject();
  writer_.Key("time");
  writer_.String(NowIso().c_str());
  writer_.Key("level");
  writer_.String(LevelName(level));
  writer_.Key("event");
  writer_.String(event);
}

LogLine::~LogLine() {
  if (!enabled_) return;
  writer_.EndObject();
  std::string line(buffer_.GetString(), buffer_.GetSize());
  line.push_back('\n');
  // One write per line: concurrent lines do not interleave. A short write to a full pipe is
  // not worth retrying for a log line.
  const ssize_t ignored = ::write(STDOUT_FILENO, line.data(), line.size());
  (void)ignored;
}

LogLine& LogLine::Str(const char* key, const std::string& value) {
  if (enabled_) {
    // Values can come from clients (a path, an id) or from the database; keep the line JSON.
    const std::string text = WellFormedUtf8(value);
    writer_.Key(key);
    writer_.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  }
  return *this;
}

LogLine& LogLine::Int(const char* key, int64_t value) {
  if (enabled_) {
    writer_.Key(key);
    writer_.Int64(value);
  }
  return *this;
}

LogLine& LogLine::Num(const char* key, double value) {
  if (enabled_) {
    writer_.Key(key);
    // Milliseconds with microsecond resolution are plenty in a log line.
    writer_.Double(std::round(value * 1000.0) / 1000.0);
  }
  return *this;
}

LogLine& LogLine::Bool(const char* key, bool value) {
  if (enabled_) {
    writer_.Key(key);
    writer_.Bool(value);
  }
  return *this;
}

}  // namespace orderflow
