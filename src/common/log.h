#pragma once
// Structured logs (SPEC D18): one JSON object per line on stderr, e.g.
//   {"ts":"2026-01-28T14:30:01.234Z","level":"error","msg":"db write failed","messageId":"..."}
// A Logger is passed down to whoever logs; there is no global one. Thread-safe. Every text it
// writes goes through redact_secrets (common/redact.h).

#include <cstdio>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>

namespace atw {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

using LogValue = std::variant<std::string_view, int64_t, double, bool>;
struct LogField {
  std::string_view key;
  LogValue value;
  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  LogField(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  LogField(std::string_view k, int64_t v) : key(k), value(v) {}
  LogField(std::string_view k, int v) : key(k), value(int64_t{v}) {}
  LogField(std::string_view k, uint64_t v) : key(k), value(static_cast<int64_t>(v)) {}
  LogField(std::string_view k, double v) : key(k), value(v) {}
  LogField(std::string_view k, bool v) : key(k), value(v) {}
};

class Logger {
 public:
  explicit Logger(LogLevel min_level = LogLevel::kInfo, FILE* out = stderr,
                  std::string worker_id = {})
      : min_level_(min_level), out_(out), worker_id_(std::move(worker_id)) {}

  void log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields = {});
  void debug(std::string_view m, std::initializer_list<LogField> f = {}) {
    log(LogLevel::kDebug, m, f);
  }
  void info(std::string_view m, std::initializer_list<LogField> f = {}) {
    log(LogLevel::kInfo, m, f);
  }
  void warn(std::string_view m, std::initializer_list<LogField> f = {}) {
    log(LogLevel::kWarn, m, f);
  }
  void error(std::string_view m, std::initializer_list<LogField> f = {}) {
    log(LogLevel::kError, m, f);
  }
  bool enabled(LogLevel level) const { return level >= min_level_; }

 private:
  LogLevel min_level_;
  FILE* out_;
  std::string worker_id_;
  std::mutex mu_;
};

}  // namespace atw
