#include "adapters/postgres/pg_link_listener.h"

#include <fmt/format.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "adapters/postgres/pg_connection.h"
#include "common/error_types.h"

namespace atw {

bool post_link_notice(std::string_view payload, LinkChangeInbox& inbox) {
  const auto json = nlohmann::json::parse(payload, nullptr, false);
  if (!json.is_object()) return false;
  if (json.value("all", false)) {
    inbox.post_all();
    return true;
  }
  const auto org = json.find("org");
  const auto device = json.find("device");
  if (org == json.end() || device == json.end() || !org->is_string() || !device->is_string()) {
    return false;
  }
  inbox.post(DeviceKey{org->get<std::string>(), device->get<std::string>()});
  return true;
}

Status notify_link_change(PgConnection& db, const std::optional<DeviceKey>& key) {
  const std::string payload =
      key ? nlohmann::json{{"org", key->organization_id}, {"device", key->device_id}}.dump()
          : nlohmann::json{{"all", true}}.dump();
  auto sent = db.exec(error_type::kDbUnavailable, "SELECT pg_notify($1, $2)",
                      {kLinkChangeChannel, payload});
  return sent.ok() ? Status() : sent.status();
}

PgLinkListener::PgLinkListener(SecretSource url, LinkChangeInbox& inbox, Logger& log)
    : url_(std::move(url)), inbox_(inbox), log_(log), thread_([this] { run(); }) {}

PgLinkListener::~PgLinkListener() {
  stop_.store(true);
  thread_.join();
}

void PgLinkListener::run() {
  PgConnection db(url_);
  uint64_t listening_on = 0;  // the connection generation LISTEN was sent on
  while (!stop_.load()) {
    if (db.generation() != listening_on || !db.connected()) {
      listening_.store(false);
      if (Status st = db.ensure(); !st.ok()) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        continue;
      }
      if (auto r = db.exec(error_type::kDbUnavailable,
                           fmt::format("LISTEN {}", kLinkChangeChannel).c_str());
          !r.ok()) {
        log_.warn("cannot listen for link changes", {{"error", r.status().message()}});
        db.reset();
        std::this_thread::sleep_for(std::chrono::seconds(1));
        continue;
      }
      listening_on = db.generation();
      listening_.store(true);
      inbox_.post_reset();
      log_.info("listening for link changes", {{"channel", kLinkChangeChannel}});
    }
    // Wakes up for stop_ twice a second.
    auto notices = db.wait_for_notifications(std::chrono::milliseconds(500));
    if (!notices.ok()) {
      log_.warn("link-change listener lost its connection; the in-process cache will be dropped",
                {{"error", notices.status().message()}});
      continue;
    }
    for (const std::string& payload : *notices) {
      if (!post_link_notice(payload, inbox_)) {
        log_.warn("ignored a link-change notice", {{"payload", payload}});
      }
    }
  }
}

}  // namespace atw
