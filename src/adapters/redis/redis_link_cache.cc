#include "adapters/redis/redis_link_cache.h"

#include <charconv>
#include <cstdint>
#include <optional>

#include "common/error_types.h"
#include "domain/link_cache_codec.h"

namespace atw {

namespace {

// The whole of `text` as a number in [low, high]; nullopt otherwise.
std::optional<int> whole_number(std::string_view text, int low, int high) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < low ||
      value > high) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

Result<RedisAddress> parse_redis_url(std::string_view url) {
  RedisAddress a;
  constexpr std::string_view kScheme = "redis://";
  if (url.starts_with("rediss://")) {
    return Status::permanent(
        "invalid_config",
        "REDIS_URL: rediss:// (TLS) is not supported: this build's hiredis (Debian 12's 0.14) has"
        " no TLS. Reach Redis through a local TLS proxy (stunnel, a sidecar) at redis://127.0.0.1,"
        " or run Redis on the worker's loopback; see docs/security.md");
  }
  if (!url.starts_with(kScheme)) {
    return Status::permanent("invalid_config", "REDIS_URL must start with redis://");
  }
  url.remove_prefix(kScheme.size());
  if (auto at = url.rfind('@'); at != std::string_view::npos) {
    std::string_view auth = url.substr(0, at);
    if (auto colon = auth.find(':'); colon != std::string_view::npos) {
      a.user = std::string(auth.substr(0, colon));
      auth.remove_prefix(colon + 1);
    }
    a.password = std::string(auth);
    url.remove_prefix(at + 1);
  }
  if (auto slash = url.find('/'); slash != std::string_view::npos) {
    if (const std::string_view db = url.substr(slash + 1); !db.empty()) {
      const auto number = whole_number(db, 0, INT32_MAX);
      if (!number) return Status::permanent("invalid_config", "REDIS_URL: database must be >= 0");
      a.db = *number;
    }
    url = url.substr(0, slash);
  }
  if (auto colon = url.rfind(':'); colon != std::string_view::npos) {
    const auto port = whole_number(url.substr(colon + 1), 1, 65535);
    if (!port) return Status::permanent("invalid_config", "REDIS_URL: port must be 1..65535");
    a.port = *port;
    url = url.substr(0, colon);
  }
  if (!url.empty()) a.host = std::string(url);
  return a;
}

RedisLinkCache::RedisLinkCache(SecretSource url, RedisCacheSettings settings,
                               WorkerMetrics& metrics, Logger& log)
    : url_(std::move(url)), settings_(settings), metrics_(metrics), log_(log) {}

namespace {
timeval to_timeval(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000),
                 static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}
}  // namespace

bool RedisLinkCache::ensure() {
  if (ctx_) return true;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_attempt_) return false;
  next_attempt_ = now + settings_.retry_interval;
  // Read at each connect: a password rotated in REDIS_URL_FILE is taken here.
  auto url = url_.current();
  auto parsed = url.ok() ? parse_redis_url(*url) : Result<RedisAddress>(url.status());
  if (!parsed.ok()) {
    log_.warn("redis not connected: its address cannot be read",
              {{"error", parsed.status().message()}});
    metrics_.set_up(Server::kRedis, false);
    metrics_.add_error(error_type::kCacheUnavailable);
    return false;
  }
  const RedisAddress& address = *parsed;
  const timeval tv = to_timeval(settings_.timeout);
  ctx_.reset(redisConnectWithTimeout(address.host.c_str(), address.port, tv));
  if (!ctx_ || ctx_->err) {
    if (ctx_) log_.warn("redis connect failed", {{"error", ctx_->errstr}});
    ctx_.reset();
    metrics_.set_up(Server::kRedis, false);
    metrics_.add_error(error_type::kCacheUnavailable);
    return false;
  }
  redisSetTimeout(ctx_.get(), tv);
  redisEnableKeepAlive(ctx_.get());
  if (!address.password.empty()) {
    Reply r(static_cast<redisReply*>(
        address.user.empty()
            ? redisCommand(ctx_.get(), "AUTH %b", address.password.data(), address.password.size())
            : redisCommand(ctx_.get(), "AUTH %b %b", address.user.data(), address.user.size(),
                           address.password.data(), address.password.size())));
    if (!r || r->type == REDIS_REPLY_ERROR) {
      if (r) refusal_.assign(r->str, r->len);
      fail("redis auth failed", r.get());
      return false;
    }
  }
  if (address.db != 0) {
    Reply r(static_cast<redisReply*>(redisCommand(ctx_.get(), "SELECT %d", address.db)));
    if (!r || r->type == REDIS_REPLY_ERROR) {
      if (r) refusal_.assign(r->str, r->len);
      fail("redis select failed", r.get());
      return false;
    }
  }
  log_.info("redis connected", {{"host", address.host}, {"port", address.port}});
  metrics_.set_up(Server::kRedis, true);
  return true;
}

void RedisLinkCache::fail(const char* what, const redisReply* reply) {
  // The server's own words where it gave some (a NOPERM names the command or key the ACL
  // refused), else the connection's error.
  const std::string why = reply != nullptr && reply->type == REDIS_REPLY_ERROR
                              ? std::string(reply->str, reply->len)
                          : ctx_ && ctx_->errstr[0] ? std::string(ctx_->errstr)
                                                    : std::string("unexpected reply");
  log_.warn(what, {{"error", why}});
  ctx_.reset();  // a context with an error cannot be reused; reconnect later
  metrics_.set_up(Server::kRedis, false);
  metrics_.add_error(error_type::kCacheUnavailable);
}

Status RedisLinkCache::check_login() {
  refusal_.clear();
  next_attempt_ = {};
  if (!ensure()) {
    if (refusal_.empty()) return Status();  // not reachable: a miss for now, never a stop
    return Status::permanent("cache_refused", refusal_);
  }
  Reply r(static_cast<redisReply*>(redisCommand(ctx_.get(), "PING")));
  if (r && r->type == REDIS_REPLY_ERROR) {
    std::string why(r->str, r->len);
    fail("redis refused the worker", r.get());
    return Status::permanent("cache_refused", why);
  }
  return Status();
}

RedisLinkCache::Reply RedisLinkCache::command_on_keys(std::string_view command,
                                                      std::span<const DeviceKey> keys) {
  std::vector<std::string> names;
  names.reserve(keys.size());
  for (const auto& k : keys) names.push_back(link_cache_key(k));
  std::vector<const char*> argv{command.data()};
  std::vector<size_t> argl{command.size()};
  argv.reserve(names.size() + 1);
  argl.reserve(names.size() + 1);
  for (const auto& n : names) {
    argv.push_back(n.data());
    argl.push_back(n.size());
  }
  return Reply(static_cast<redisReply*>(
      redisCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(), argl.data())));
}

std::vector<std::optional<LinkSet>> RedisLinkCache::get_many(std::span<const DeviceKey> keys) {
  std::vector<std::optional<LinkSet>> out(keys.size());
  if (keys.empty() || !ensure()) return out;
  const Reply r = command_on_keys("MGET", keys);
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != keys.size()) {
    fail("redis MGET failed", r.get());
    return out;
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    const redisReply* e = r->element[i];
    if (e->type != REDIS_REPLY_STRING) continue;
    auto parsed = parse_link_set(std::string_view(e->str, e->len), keys[i]);
    if (parsed.ok()) {
      out[i] = std::move(parsed).value();
    } else {
      // cache_corrupt or cache_mismatch: a miss, and overwritten once the store has answered.
      metrics_.add_error(parsed.status().type());
    }
  }
  return out;
}

void RedisLinkCache::put_many(std::span<const DeviceKey> keys, std::span<const LinkSet> sets) {
  if (keys.empty() || !ensure()) return;
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string key = link_cache_key(keys[i]);
    const std::string value = serialize_link_set(keys[i], sets[i]);
    const auto ttl = sets[i].links.empty() ? settings_.empty_ttl : settings_.ttl;
    const std::string ttl_text = std::to_string(ttl.count());
    const char* argv[] = {"SET", key.data(), value.data(), "EX", ttl_text.data()};
    const size_t argl[] = {3, key.size(), value.size(), 2, ttl_text.size()};
    if (redisAppendCommandArgv(ctx_.get(), 5, argv, argl) != REDIS_OK) {
      fail("redis SET failed");
      return;
    }
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx_.get(), &raw) != REDIS_OK) {
      fail("redis SET failed");
      return;
    }
    Reply reply(static_cast<redisReply*>(raw));
    if (reply && reply->type == REDIS_REPLY_ERROR) {
      fail("redis SET failed", reply.get());  // the rest of the replies go with the connection
      return;
    }
  }
}

void RedisLinkCache::invalidate(std::span<const DeviceKey> keys) {
  if (keys.empty() || !ensure()) return;
  const Reply r = command_on_keys("DEL", keys);
  if (!r || r->type == REDIS_REPLY_ERROR) fail("redis DEL failed", r.get());
}

void RedisLinkCache::invalidate_all() {
  if (!ensure()) return;
  std::string cursor = "0";
  do {
    Reply r(static_cast<redisReply*>(redisCommand(ctx_.get(), "SCAN %s MATCH %b* COUNT 1000",
                                                  cursor.c_str(), kLinkCacheKeyPrefix.data(),
                                                  kLinkCacheKeyPrefix.size())));
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      fail("redis SCAN failed", r.get());
      return;
    }
    cursor.assign(r->element[0]->str, r->element[0]->len);
    const redisReply* keys = r->element[1];
    if (keys->elements == 0) continue;
    std::vector<const char*> argv{"UNLINK"};
    std::vector<size_t> argl{6};
    for (size_t i = 0; i < keys->elements; ++i) {
      argv.push_back(keys->element[i]->str);
      argl.push_back(keys->element[i]->len);
    }
    Reply done(static_cast<redisReply*>(
        redisCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(), argl.data())));
    if (!done || done->type == REDIS_REPLY_ERROR) {
      fail("redis UNLINK failed", done.get());
      return;
    }
  } while (cursor != "0");
}

}  // namespace atw
