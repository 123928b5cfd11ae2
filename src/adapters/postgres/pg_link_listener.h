#pragma once
// Listens for link changes (SPEC D7) on a connection of its own, in a thread of its own: each
// notice of migrations/003_link_change_notify.sql is posted to the pipeline's LinkChangeInbox.
// After every (re)connection the in-process cache is dropped whole, since notices sent while
// nobody listened are lost.

#include <atomic>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "adapters/postgres/pg_connection.h"
#include "common/log.h"
#include "common/secret_source.h"
#include "pipeline/link_change_inbox.h"

namespace atw {

inline constexpr const char* kLinkChangeChannel = "asset_worker_links";

// Posts one notice's payload: {"org": ..., "device": ...} or {"all": true}. False if it is
// neither.
bool post_link_notice(std::string_view payload, LinkChangeInbox& inbox);

// Sends the notice every worker's listener posts: the links of `key` changed, or those of every
// device when there is no key (`links invalidate`).
Status notify_link_change(PgConnection& db, const std::optional<DeviceKey>& key);

class PgLinkListener {
 public:
  PgLinkListener(SecretSource url, LinkChangeInbox& inbox, Logger& log);
  ~PgLinkListener();  // stops and joins the thread
  PgLinkListener(const PgLinkListener&) = delete;
  PgLinkListener& operator=(const PgLinkListener&) = delete;

  bool listening() const { return listening_.load(); }

 private:
  void run();

  SecretSource url_;
  LinkChangeInbox& inbox_;
  Logger& log_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> listening_{false};
  std::thread thread_;
};

}  // namespace atw
