#include "common/log.h"

#include <chrono>

#include "common/redact.h"
#include "domain/json_writer.h"
#include "domain/timestamp.h"

namespace atw {

namespace {
const char* level_name(LogLevel l) {
  switch (l) {
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
}  // namespace

void Logger::log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields) {
  if (!enabled(level)) return;
  const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  std::string line;
  line.reserve(256);
  JsonWriter w(line);
  w.begin_object().key("ts").string(format_iso_millis(Timestamp{now}));
  // Secrets never reach a log line (common/redact.h): whatever a caller passes.
  auto text = [&w](std::string_view v) {
    if (may_hold_secret(v)) {
      w.string(redact_secrets(v));
    } else {
      w.string(v);
    }
  };
  w.key("level").string(level_name(level)).key("msg");
  text(msg);
  if (!worker_id_.empty()) w.key("worker").string(worker_id_);
  for (const auto& f : fields) {
    w.key(f.key);
    std::visit(
        [&w, &text](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string_view>)
            text(v);
          else if constexpr (std::is_same_v<T, int64_t>)
            w.integer(v);
          else if constexpr (std::is_same_v<T, double>)
            w.number(v);
          else
            w.boolean(v);
        },
        f.value);
  }
  w.end_object();
  line.push_back('\n');
  std::lock_guard lock(mu_);
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

}  // namespace atw
