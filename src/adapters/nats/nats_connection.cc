#include "adapters/nats/nats_connection.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "common/error_types.h"

namespace atw {

namespace {
std::string nats_error(natsStatus s) {
  const char* last = nats_GetLastError(nullptr);
  return fmt::format("{}{}{}", natsStatus_GetText(s), last && *last ? ": " : "", last ? last : "");
}
}  // namespace

std::vector<std::string> split_servers(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

Status NatsConnection::configure() {
  const NatsSecurity& sec = settings_.security;
  auto refused = [](natsStatus st, std::string_view what) {
    return Status::permanent("invalid_config", fmt::format("NATS {}: {}", what, nats_error(st)));
  };
  natsStatus s = NATS_OK;
  if (sec.tls()) {
    if ((s = natsOptions_SetSecure(opts_.get(), true)) != NATS_OK) return refused(s, "TLS");
  }
  if (!sec.ca_file.empty() &&
      (s = natsOptions_LoadCATrustedCertificates(opts_.get(), sec.ca_file.c_str())) != NATS_OK) {
    return refused(s, "CA file " + sec.ca_file);
  }
  if (!sec.cert_file.empty() &&
      (s = natsOptions_LoadCertificatesChain(opts_.get(), sec.cert_file.c_str(),
                                             sec.key_file.c_str())) != NATS_OK) {
    return refused(s, "certificate " + sec.cert_file + " and key " + sec.key_file);
  }
  if (!sec.tls_server_name.empty() &&
      (s = natsOptions_SetExpectedHostname(opts_.get(), sec.tls_server_name.c_str())) != NATS_OK) {
    return refused(s, "TLS server name");
  }
  if (!sec.user.empty()) {
    auto password = sec.password.current();
    if (!password.ok()) return password.status();
    if ((s = natsOptions_SetUserInfo(opts_.get(), sec.user.c_str(), password->c_str())) !=
        NATS_OK) {
      return refused(s, "user");
    }
  }
  if (!sec.token.value.empty() || !sec.token.file.empty()) {
    auto token = sec.token.current();
    if (!token.ok()) return token.status();
    if ((s = natsOptions_SetToken(opts_.get(), token->c_str())) != NATS_OK)
      return refused(s, "token");
  }
  if (!sec.nkey_seed_file.empty()) {
    auto seed = read_secret_file("NATS_NKEY_SEED_FILE", sec.nkey_seed_file);
    if (!seed.ok()) return seed.status();
    auto pub = nkey_public_key(*seed);
    if (!pub.ok()) return pub.status();
    if ((s = natsOptions_SetNKeyFromSeed(opts_.get(), pub->c_str(), sec.nkey_seed_file.c_str())) !=
        NATS_OK) {
      return refused(s, "NKey seed file " + sec.nkey_seed_file);
    }
  }
  if (!sec.creds_file.empty() && (s = natsOptions_SetUserCredentialsFromFiles(
                                      opts_.get(), sec.creds_file.c_str(), nullptr)) != NATS_OK) {
    return refused(s, "credentials file " + sec.creds_file);
  }
  return Status();
}

Result<std::unique_ptr<NatsConnection>> NatsConnection::connect(
    const NatsSettings& settings, Logger& log, std::chrono::milliseconds initial_wait) {
  std::unique_ptr<NatsConnection> c(new NatsConnection(settings, log));
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  c->opts_.reset(opts);
  std::vector<const char*> urls;
  for (const auto& u : c->settings_.servers) urls.push_back(u.c_str());
  if (s == NATS_OK)
    s = natsOptions_SetServers(c->opts_.get(), urls.data(), static_cast<int>(urls.size()));
  if (s == NATS_OK) s = natsOptions_SetName(c->opts_.get(), c->settings_.name.c_str());
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(c->opts_.get(), -1);
  if (s == NATS_OK)
    s = natsOptions_SetReconnectWait(c->opts_.get(), settings.reconnect_wait.count());
  if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(c->opts_.get(), 32 * 1024 * 1024);
  if (s == NATS_OK) s = natsOptions_SetMaxPendingMsgs(c->opts_.get(), 1'000'000);
  if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(c->opts_.get(), on_disconnected, c.get());
  if (s == NATS_OK) s = natsOptions_SetReconnectedCB(c->opts_.get(), on_reconnected, c.get());
  if (s == NATS_OK) s = natsOptions_SetErrorHandler(c->opts_.get(), on_error, c.get());
  if (s == NATS_OK) s = natsOptions_SetClosedCB(c->opts_.get(), on_closed, c.get());
  if (s != NATS_OK) return Status::permanent("invalid_config", nats_error(s));
  if (Status st = c->configure(); !st.ok()) return st;

  // One attempt first, which says why it failed: a server that refuses the login or the TLS
  // handshake refuses it every time, so that is final. Only servers that cannot be reached are
  // waited for, by nats.c's own retries.
  natsConnection* conn = nullptr;
  s = natsConnection_Connect(&conn, c->opts_.get());
  c->conn_.reset(conn);
  if (s == NATS_OK) return c;
  const std::string why = nats_error(s);
  // A protocol error here is the server closing a connection it had accepted: a TLS handshake
  // it refused (no client certificate), a login it did not get in time.
  if (s == NATS_NOT_PERMITTED || s == NATS_SSL_ERROR || s == NATS_CONNECTION_AUTH_FAILED ||
      s == NATS_PROTOCOL_ERROR) {
    return Status::permanent("nats_refused", fmt::format("NATS refused the connection: {}", why));
  }
  c->closed_ = false;
  s = natsOptions_SetRetryOnFailedConnect(c->opts_.get(), true, on_connected, c.get());
  if (s == NATS_OK) {
    conn = nullptr;
    s = natsConnection_Connect(&conn, c->opts_.get());
    c->conn_.reset(conn);
  }
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
    return Status::unavailable(error_type::kNatsUnavailable, nats_error(s));
  }
  const auto deadline = std::chrono::steady_clock::now() + initial_wait;
  while (!c->connected()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::unavailable(
          error_type::kNatsUnavailable,
          fmt::format("cannot reach {} ({})", fmt::join(settings.servers, ","), why));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return c;
}

NatsConnection::~NatsConnection() {
  closing_.store(true);
  if (conn_ != nullptr) {
    natsConnection_Close(conn_.get());
    std::unique_lock lock(closed_mu_);
    closed_cv_.wait_for(lock, std::chrono::seconds(5), [this] { return closed_; });
    lock.unlock();
    conn_.reset();
  }
}

void NatsConnection::on_closed(natsConnection*, void* closure) {
  auto* self = static_cast<NatsConnection*>(closure);
  std::lock_guard lock(self->closed_mu_);
  self->closed_ = true;
  self->closed_cv_.notify_all();
}

bool NatsConnection::connected() const {
  return conn_ != nullptr && natsConnection_Status(conn_.get()) == NATS_CONN_STATUS_CONNECTED;
}

void NatsConnection::on_disconnected(natsConnection*, void* closure) {
  auto* self = static_cast<NatsConnection*>(closure);
  if (!self->closing_.load()) self->log_.warn("nats disconnected");
}

void NatsConnection::on_reconnected(natsConnection*, void* closure) {
  auto* self = static_cast<NatsConnection*>(closure);
  self->generation_.fetch_add(1);
  self->log_.info("nats reconnected");
}

void NatsConnection::on_connected(natsConnection*, void* closure) {
  static_cast<NatsConnection*>(closure)->log_.info("nats connected");
}

void NatsConnection::on_error(natsConnection* nc, natsSubscription*, natsStatus err,
                              void* closure) {
  // The server's own words: a permissions violation names the subject it refused.
  const char* text = nullptr;
  (void)natsConnection_GetLastError(nc, &text);
  auto* self = static_cast<NatsConnection*>(closure);
  if (err == NATS_NOT_PERMITTED) {
    self->last_refusal_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count() |
                                 1);  // never 0
  }
  self->log_.warn(err == NATS_NOT_PERMITTED
                      ? "nats refused an operation: the worker's user lacks a permission"
                      : "nats async error",
                  {{"status", natsStatus_GetText(err)}, {"error", text != nullptr ? text : ""}});
}

bool NatsConnection::refused_within(std::chrono::milliseconds window) const {
  const int64_t at = last_refusal_ns_.load();
  if (at == 0) return false;
  const auto since =
      std::chrono::steady_clock::now().time_since_epoch() - std::chrono::steady_clock::duration(at);
  return since < window;
}

Status NatsConnection::flush(std::chrono::milliseconds timeout) {
  const natsStatus s = natsConnection_FlushTimeout(conn_.get(), timeout.count());
  if (s == NATS_OK) return Status();
  return Status::unavailable(error_type::kNatsUnavailable, nats_error(s));
}

std::string NatsConnection::new_inbox() {
  natsInbox* inbox = nullptr;
  natsInbox_Create(&inbox);
  std::string out = inbox ? std::string(inbox) : std::string("_INBOX.fallback");
  natsInbox_Destroy(inbox);
  return out;
}

namespace {

// A subscription nats.c made (`made`: its status), with no pending limits.
Result<SubscriptionPtr> unlimited(natsStatus made, natsSubscription* raw,
                                  const std::string& subject) {
  SubscriptionPtr sub(raw);
  if (made == NATS_OK) made = natsSubscription_SetPendingLimits(raw, -1, -1);
  if (made != NATS_OK) {
    return Status::unavailable(error_type::kNatsUnavailable,
                               fmt::format("subscribe {}: {}", subject, nats_error(made)));
  }
  return sub;
}

}  // namespace

Result<SubscriptionPtr> NatsConnection::subscribe_sync(const std::string& subject) {
  natsSubscription* raw = nullptr;
  const natsStatus s = natsConnection_SubscribeSync(&raw, conn_.get(), subject.c_str());
  return unlimited(s, raw, subject);
}

Result<SubscriptionPtr> NatsConnection::subscribe_async(const std::string& subject,
                                                        natsMsgHandler handler, void* closure) {
  natsSubscription* raw = nullptr;
  const natsStatus s =
      natsConnection_Subscribe(&raw, conn_.get(), subject.c_str(), handler, closure);
  return unlimited(s, raw, subject);
}

Status NatsConnection::publish(const std::string& subject, std::string_view data,
                               const std::string& reply) {
  const natsStatus s =
      reply.empty() ? natsConnection_Publish(conn_.get(), subject.c_str(), data.data(),
                                             static_cast<int>(data.size()))
                    : natsConnection_PublishRequest(conn_.get(), subject.c_str(), reply.c_str(),
                                                    data.data(), static_cast<int>(data.size()));
  if (s == NATS_OK) return Status();
  return Status::unavailable(error_type::kNatsUnavailable, natsStatus_GetText(s));
}

natsStatus NatsConnection::publish(natsMsg* message) {
  return natsConnection_PublishMsg(conn_.get(), message);
}

Result<JetStreamContextPtr> NatsConnection::jetstream() {
  jsCtx* js = nullptr;
  const natsStatus s = natsConnection_JetStream(&js, conn_.get(), nullptr);
  if (s != NATS_OK) {
    return Status::unavailable(error_type::kNatsUnavailable,
                               fmt::format("JetStream context: {}", nats_error(s)));
  }
  return JetStreamContextPtr(js);
}

int64_t NatsConnection::max_payload() const {
  return natsConnection_GetMaxPayload(conn_.get());
}

Result<std::string> NatsConnection::api(const std::string& subject, const std::string& body) {
  natsMsg* reply = nullptr;
  const natsStatus s =
      natsConnection_Request(&reply, conn_.get(), subject.c_str(), body.data(),
                             static_cast<int>(body.size()), settings_.request_timeout.count());
  if (s != NATS_OK) {
    return Status::unavailable(error_type::kNatsUnavailable,
                               fmt::format("{}: {}", subject, nats_error(s)));
  }
  const MessagePtr owned(reply);
  std::string text(natsMsg_GetData(reply), static_cast<size_t>(natsMsg_GetDataLength(reply)));
  const auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_object() && json.contains("error")) {
    const auto& e = json["error"];
    const int code = e.value("code", 500);
    const std::string msg =
        fmt::format("{}: {} (err_code {})", subject, e.value("description", std::string("error")),
                    e.value("err_code", 0));
    if (code >= 400 && code < 500) return Status::permanent(error_type::kNatsApi, msg);
    return Status::unavailable(error_type::kNatsApi, msg);
  }
  return text;
}

}  // namespace atw
