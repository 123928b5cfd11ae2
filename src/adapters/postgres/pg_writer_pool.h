#pragma once
// TelemetrySink over several PostgreSQL connections, each with a thread of its own, so that the
// transactions of consecutive batches overlap: while one commits, the next is already copying
// its rows. A write goes to the first idle lane, so a worker that keeps up uses one connection
// and only a backlog spreads over several; a lane writes its batches in order.
//
// Consistency across lanes comes from the transaction itself (PgTelemetrySink): assets are
// locked in id order, so two lanes touching the same asset take turns, and scores still move
// only forward in time whichever commits first.

#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "adapters/postgres/pg_connection.h"
#include "adapters/postgres/pg_telemetry_sink.h"
#include "pipeline/ports.h"

namespace atw {

class PgWriterPool final : public TelemetrySink {
 public:
  // `worker_id` is recorded with each message written (processed_messages.processed_by).
  PgWriterPool(const SecretSource& database_url, size_t lanes, const std::string& worker_id = {});
  ~PgWriterPool() override;
  PgWriterPool(const PgWriterPool&) = delete;
  PgWriterPool& operator=(const PgWriterPool&) = delete;

  Result<std::vector<WriteOutcome>> write(std::span<const MessageResult> messages,
                                          Timestamp received_at) override;
  PendingWrite write_async(std::span<const MessageResult> messages, Timestamp received_at) override;

  // True when every lane's connection is up (read from any thread).
  bool connected() const;

 private:
  struct Job {
    std::span<const MessageResult> messages;
    Timestamp received_at;
    std::promise<Outcome> done;
  };
  struct Lane {
    Lane(const SecretSource& url, const std::string& worker_id) : db(url), sink(db, worker_id) {}
    PgConnection db;
    PgTelemetrySink sink;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Job> jobs;
    bool stop = false;
    std::atomic<bool> up{false};
    std::atomic<int> busy{0};  // writes queued or running
    std::thread thread;
  };
  static void run(Lane& lane);

  std::vector<std::unique_ptr<Lane>> lanes_;
  size_t next_ = 0;
};

}  // namespace atw
