#pragma once
// TelemetrySink on PostgreSQL (SPEC D11, D12): one transaction per batch.
//   1. every history row of the batch in one binary COPY (repeats within the batch left out);
//   2. the batch's assets locked in id order (replicas never deadlock) and their scores read;
//   3. previous scores computed in delivery order (ScoreLedger);
//   4. one processed_messages row per message, in a second binary COPY: if any message was
//      written before (a redelivery, or a replica racing on it), its primary key (the message's
//      identity: organization, device, messageId) refuses the COPY, and the transaction is
//      rolled back and redone knowing which ones, so they write nothing and their events carry
//      the previous scores recorded the first time;
//   5. each changed asset's score updated once, to its newest value;
//   6. the health states: read after the assets are locked (2.), moved by the batch's
//      scores in the same order (late messages left out), each moved state written once; the
//      changes a message made are recorded with it (processed_messages.state_changes) and
//      returned ready to publish, and a redelivery gets the recorded ones back.
// Redeliveries are rare, so the common batch costs no duplicate lookup, and two requests to the
// server: BEGIN with 1 and 2, then 4, 5 and COMMIT (PgConnection::run_script). Both COPYs write
// their rows a page at a time (no per-row conflict check, no per-row WAL).
//
// telemetry_history may be a table another service made, with column types of its choosing:
// the history COPY is binary where the columns are the types the binary rows are (text,
// double precision, timestamps), and text (which PostgreSQL converts to any type) otherwise.
// The columns are looked up again on each new connection.
// Not thread-safe: one per connection (PgWriterPool runs several).

#include <optional>
#include <string>
#include <unordered_map>

#include "adapters/postgres/pg_connection.h"
#include "domain/health_state.h"
#include "pipeline/ports.h"

namespace atw {

// What processed_messages records of a message: each asset's score before it
// ({"assetId": score|null}) and the state changes it made (a JSON array of their events; empty:
// none, NULL in the table).
struct RecordedWrite {
  std::string previous_scores;
  std::string state_changes;
};

class PgTelemetrySink final : public TelemetrySink {
 public:
  // `worker_id` goes to processed_messages.processed_by (NULL when empty).
  explicit PgTelemetrySink(PgConnection& db, std::string worker_id = {})
      : db_(db), worker_id_(std::move(worker_id)) {}
  Result<std::vector<WriteOutcome>> write(std::span<const MessageResult> messages,
                                          Timestamp received_at) override;

 private:
  // message identity (identity_key) -> what was recorded when it was written
  using EarlierWrites = std::unordered_map<std::string, RecordedWrite>;
  Result<EarlierWrites> find_earlier_writes(std::span<const MessageResult> messages);
  Status write_in_transaction(std::span<const MessageResult> messages, Timestamp received_at,
                              const std::optional<EarlierWrites>& earlier,
                              std::vector<WriteOutcome>& outcomes);
  // Whether telemetry_history takes the binary rows (see the header), for this connection.
  Result<bool> history_takes_binary();
  // The statement that writes these health states (an upsert; ends with "; ").
  Result<std::string> health_state_upsert(const std::vector<HealthStateLedger::Row>& rows);

  PgConnection& db_;
  std::string worker_id_;
  std::string copy_buffer_;  // reused across batches
  std::optional<bool> history_binary_;
  uint64_t history_checked_on_ = 0;  // the connection generation it was checked on
};

// Appends one telemetry_history row per asset metric in PostgreSQL's binary COPY format
// (header and trailer included). Exposed for the benchmark's ceiling measurement.
void encode_history_copy(std::span<const MessageResult> messages, const std::vector<bool>& include,
                         Timestamp received_at, std::string& out);
// The same rows in COPY's text format, for columns of other types.
void encode_history_copy_text(std::span<const MessageResult> messages,
                              const std::vector<bool>& include, Timestamp received_at,
                              std::string& out);
// Whether columns of these types (format_type's names, in the COPY's column order) take
// encode_history_copy's binary rows.
bool history_columns_take_binary(const std::vector<std::string>& column_types);
// The identity of a message (SPEC D11) as one string: organization, device and messageId,
// joined by a newline (which none of them can hold).
std::string identity_key(const MessageResult& m);
// Appends one processed_messages row per included message (`recorded[i]` is what it records;
// an empty `processed_by` is NULL), in the binary COPY format.
void encode_processed_copy(std::span<const MessageResult> messages,
                           const std::vector<bool>& include,
                           const std::vector<RecordedWrite>& recorded, Timestamp received_at,
                           std::string_view processed_by, std::string& out);

}  // namespace atw
