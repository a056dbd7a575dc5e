#include "log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <ctime>

namespace orderflow {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_fd{STDOUT_FILENO};

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

// The current time as 2026-11-22T06:43:05.123Z.
std::string NowIso() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  const size_t n = std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + n, sizeof(text) - n, ".%03dZ", static_cast<int>(millis));
  return text;
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

void SetLogFd(int fd) { g_fd = fd; }

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
  const ssize_t ignored = ::write(g_fd.load(), line.data(), line.size());
  (void)ignored;
}

LogLine& LogLine::Str(const char* key, const std::string& value) {
  if (enabled_) {
    writer_.Key(key);
    writer_.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
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
