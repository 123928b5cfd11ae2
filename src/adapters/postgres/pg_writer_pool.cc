#include "adapters/postgres/pg_writer_pool.h"

namespace atw {

PgWriterPool::PgWriterPool(const SecretSource& database_url, size_t lanes,
                           const std::string& worker_id) {
  for (size_t i = 0; i < std::max<size_t>(lanes, 1); ++i) {
    lanes_.push_back(std::make_unique<Lane>(database_url, worker_id));
    Lane& lane = *lanes_.back();
    lane.thread = std::thread([&lane] { run(lane); });
  }
}

PgWriterPool::~PgWriterPool() {
  for (auto& lane : lanes_) {
    {
      std::lock_guard lock(lane->mu);
      lane->stop = true;
    }
    lane->cv.notify_one();
    lane->thread.join();
  }
}

void PgWriterPool::run(Lane& lane) {
  (void)lane.db.ensure();
  lane.up.store(lane.db.connected());
  while (true) {
    Job job;
    {
      std::unique_lock lock(lane.mu);
      lane.cv.wait(lock, [&] { return lane.stop || !lane.jobs.empty(); });
      if (lane.jobs.empty()) return;  // stopping, and nothing left to write
      job = std::move(lane.jobs.front());
      lane.jobs.pop_front();
    }
    auto outcome = lane.sink.write(job.messages, job.received_at);
    lane.up.store(lane.db.connected());
    lane.busy.fetch_sub(1);
    job.done.set_value(std::move(outcome));
  }
}

TelemetrySink::PendingWrite PgWriterPool::write_async(std::span<const MessageResult> messages,
                                                      Timestamp received_at) {
  // The first idle lane, so that a stream that keeps up writes on one connection (no lanes
  // taking turns on the same assets' locks); only a backlog spreads over several.
  Lane* chosen = nullptr;
  for (auto& lane : lanes_) {
    if (lane->busy.load() == 0) {
      chosen = lane.get();
      break;
    }
  }
  if (chosen == nullptr) {
    chosen = lanes_[next_].get();
    next_ = (next_ + 1) % lanes_.size();
  }
  Lane& lane = *chosen;
  lane.busy.fetch_add(1);
  Job job{messages, received_at, {}};
  PendingWrite answer(job.done.get_future());
  {
    std::lock_guard lock(lane.mu);
    lane.jobs.push_back(std::move(job));
  }
  lane.cv.notify_one();
  return answer;
}

Result<std::vector<WriteOutcome>> PgWriterPool::write(std::span<const MessageResult> messages,
                                                      Timestamp received_at) {
  return write_async(messages, received_at).take();
}

bool PgWriterPool::connected() const {
  for (const auto& lane : lanes_) {
    if (!lane->up.load()) return false;
  }
  return true;
}

}  // namespace atw
