#include "adapters/postgres/history_maintenance.h"

#include <fmt/format.h>

#include <cstdlib>

namespace atw {

std::string describe(const HistoryAction& a) {
  if (a.action == "created") {
    if (a.rows == 0) return fmt::format("created {}", a.relation);
    return fmt::format("created {} (moved {} rows into it from the default partition)", a.relation,
                       a.rows);
  }
  if (a.action == "dropped") return fmt::format("dropped {}", a.relation);
  if (a.action == "deleted") {
    return fmt::format("deleted {} rows from {} (older than the retention)", a.rows, a.relation);
  }
  if (a.action == "skipped") return "skipped: another session is maintaining the history now";
  return fmt::format("{} {} {}", a.action, a.relation, a.rows);
}

std::string summarize(const std::vector<HistoryAction>& actions, const HistorySettings& s) {
  int created = 0, dropped = 0;
  int64_t moved = 0, deleted = 0;
  for (const HistoryAction& a : actions) {
    if (a.action == "skipped") {
      return "history not maintained: another session (a worker replica?) is doing it now";
    }
    if (a.action == "created") {
      ++created;
      moved += a.rows;
    } else if (a.action == "dropped") {
      ++dropped;
    } else if (a.action == "deleted") {
      deleted += a.rows;
    }
  }
  const std::string retention =
      s.retention_days > 0 ? fmt::format("retention {} days", s.retention_days) : "no retention";
  return fmt::format(
      "history maintained: {} partitions created ({} rows moved), {} dropped, {} rows deleted "
      "(partitions {} days ahead, {})",
      created, moved, dropped, deleted, s.ahead_days, retention);
}

HistoryMaintenance::HistoryMaintenance(SecretSource database_url, HistorySettings settings)
    : db_(std::move(database_url), /*statement_timeout_ms=*/0), settings_(settings) {}

Result<std::vector<HistoryAction>> HistoryMaintenance::run() {
  // Interruptible, so that stop() is heard while the server works (or never answers).
  auto result = db_.exec_until(
      "history_maintenance",
      "SELECT action, coalesce(relation, ''), coalesce(row_count, 0)"
      " FROM telemetry_history_maintain($1::int, $2::int)",
      {std::to_string(settings_.ahead_days), std::to_string(settings_.retention_days)}, stopping_);
  if (!result.ok()) return result.status();
  std::vector<HistoryAction> actions;
  actions.reserve(static_cast<size_t>(PQntuples(result->get())));
  for (int row = 0; row < PQntuples(result->get()); ++row) {
    actions.push_back({PQgetvalue(result->get(), row, 0), PQgetvalue(result->get(), row, 1),
                       std::strtoll(PQgetvalue(result->get(), row, 2), nullptr, 10)});
  }
  return actions;
}

}  // namespace atw
