#pragma once
// TelemetrySink on PostgreSQL (SPEC D11, D12): one transaction per batch.
//   1. which messages are already written (processed_messages), and duplicates inside the batch;
//   2. every history row of the new messages in one binary COPY;
//   3. the batch's assets locked in id order (replicas never deadlock), previous scores read,
//      each asset's score moved forward at most once (ScoreLedger);
//   4. one processed_messages row per new message; a concurrent replica that wrote one of them
//      first makes the transaction roll back (Retryable), and the retry sees it as a duplicate.

#include <string>

#include "adapters/postgres/pg_connection.h"
#include "pipeline/ports.h"

namespace atw {

class PgTelemetrySink final : public TelemetrySink {
 public:
  explicit PgTelemetrySink(PgConnection& db) : db_(db) {}
  Result<std::vector<WriteOutcome>> write(std::span<const MessageResult> messages,
                                          Timestamp received_at) override;

 private:
  Status write_in_transaction(std::span<const MessageResult> messages, Timestamp received_at,
                              std::vector<WriteOutcome>& outcomes);
  PgConnection& db_;
  std::string copy_buffer_;  // reused across batches
};

// Appends one telemetry_history row per asset metric in PostgreSQL's binary COPY format
// (header and trailer included). Exposed for the benchmark's ceiling measurement.
void encode_history_copy(std::span<const MessageResult> messages, const std::vector<bool>& include,
                         Timestamp received_at, std::string& out);

}  // namespace atw
