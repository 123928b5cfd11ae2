#pragma once
// What reprocess reads and writes in PostgreSQL: what the workers wrote for each
// message, the asset types' schema versions, the corrections (one transaction per batch, with
// the run's progress), and the runs themselves.

#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "adapters/postgres/pg_connection.h"
#include "domain/metrics.h"
#include "domain/telemetry.h"
#include "domain/timestamp.h"

namespace atw {

// A message's processed_messages row.
struct ProcessedRecord {
  Timestamp processed_at;  // corrected_at once corrected
  std::string written;     // JSON {asset: score or null}: the assets it wrote
  bool corrected = false;  // `written` holds the scores reprocess gave
};

struct AssetState {
  std::string asset_type_id;
  std::optional<double> score;
  std::optional<Timestamp> score_time;  // health_score_updated_at
};

struct SchemaVersion {
  std::string asset_type_id;
  int version = 0;
  Timestamp recorded_at;
  std::string schema;  // telemetry_schema as text ("null" when NULL)
};

// One history row of a message, as reprocess changes it.
struct HistoryChange {
  std::string asset_id;
  std::string metric;
  double value = 0;
  Timestamp timestamp;
  std::string device_id;
  Quality quality = Quality::kGood;
};

struct ScoreChange {
  std::string asset_id;
  std::optional<double> score;  // nullopt: no measurement left
  std::optional<Timestamp> time;
  // Applied only while the asset's score time is at most `time` (forward only), or, for a
  // score rebuilt after its measurement went away, exactly `only_if_time`.
  std::optional<Timestamp> only_if_time;
};

struct CorrectedMessage {
  std::string organization_id, device_id, message_id;
  std::string written;  // JSON {asset: score}
};

class PgReprocessStore {
 public:
  explicit PgReprocessStore(SecretSource url) : db_(std::move(url), /*statement_timeout_ms=*/0) {}

  Status ensure() { return db_.ensure(); }

  // The processed_messages rows of these messages, by identity_key.
  Result<std::unordered_map<std::string, ProcessedRecord>> processed(
      std::span<const TelemetryMessage> messages);
  // The history rows of (asset, timestamp, device) triples: key "asset\ntimestamp-micros\ndevice".
  Result<std::unordered_map<std::string, MetricSet>> history(
      const std::vector<std::tuple<std::string, Timestamp, std::string>>& triples);
  static std::string history_key(const std::string& asset, Timestamp t, const std::string& device);
  Result<std::unordered_map<std::string, AssetState>> assets(const std::vector<std::string>& ids);
  // Every recorded version of these types (all types when empty), oldest first per type.
  Result<std::vector<SchemaVersion>> schema_versions(const std::vector<std::string>& types);
  // The newest history rows of `asset` but those of the measurements `except` (time, device):
  // their time and values; nullopt when it has none.
  Result<std::optional<std::pair<Timestamp, MetricSet>>> newest_rows(
      const std::string& asset, const std::vector<std::pair<Timestamp, std::string>>& except);

  // One batch's corrections, all or nothing, with the run's progress.
  struct Batch {
    std::vector<CorrectedMessage> messages;
    std::vector<HistoryChange> added, removed, changed;
    std::vector<ScoreChange> scores;
    std::string run_id;
    uint64_t next_sequence = 0;
    std::string counts_json;
  };
  Status begin();
  Status rollback();
  // Locks the messages' records and the assets (in id order, as the workers do).
  Status lock(const Batch& b);
  Status write_rows(const Batch& b);
  Status write_scores(const std::vector<ScoreChange>& scores);
  Status finish(const Batch& b);  // marks the messages corrected, saves progress, commits

  // Runs.
  struct Run {
    std::string id;
    std::string selection;  // JSON
    uint64_t next_sequence = 0, last_sequence = 0;
    std::string counts;  // JSON
  };
  Status start_run(const Run& run);
  Result<std::optional<Run>> unfinished_run(const std::string& selection);
  Status finish_run(const std::string& id, const std::string& counts_json);

 private:
  PgConnection db_;
};

}  // namespace atw
