#pragma once
// The one owner of the nats.c connection, and the JetStream API calls the worker needs
// (SPEC D1, D2). nats.c reconnects by itself, forever; callbacks arrive on its threads and only
// log and flip an atomic flag.

#include <nats/nats.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "common/secret_source.h"
#include "common/status.h"

namespace atw {

// How the worker proves who it is to NATS, and how it checks the servers: one login at most
// (a URL's own user:password@ or token@ counts as one), TLS where any setting of it is given or
// a server URL is tls://. All through nats.c's own options; see docs/security.md.
struct NatsSecurity {
  std::string user;  // with `password`: a user/password login
  SecretSource password;
  SecretSource token;
  std::string nkey_seed_file;       // an NKey seed ("SU..."); its public key is derived from it
  std::string creds_file;           // a user JWT and its seed (operator mode), read at each connect
  std::string ca_file;              // TLS: the CA the servers' certificates are checked against
  std::string cert_file, key_file;  // TLS: this client's certificate and key (mutual TLS)
  std::string tls_server_name;      // TLS: the name the server's certificate must hold

  bool tls() const {
    return !ca_file.empty() || !cert_file.empty() || !key_file.empty() || !tls_server_name.empty();
  }
};

struct NatsSettings {
  std::vector<std::string> servers{"nats://127.0.0.1:4222"};
  std::string name = "asset-worker";
  NatsSecurity security;
  std::chrono::milliseconds reconnect_wait{500};
  std::chrono::milliseconds request_timeout{5000};  // JetStream API calls
};

// The public key ("U...") of an NKey seed ("SU..."), derived as NATS does (ed25519, base32 with
// a CRC16). Permanent invalid_config when the text is not a seed.
Result<std::string> nkey_public_key(std::string_view seed);
// The role an NKey's text starts with ('O', 'A', 'U' for its public key).
enum class NKeyRole : uint8_t { kOperator = 14 << 3, kAccount = 0, kUser = 20 << 3 };
// The seed of an NKey of `role` whose ed25519 seed is `raw` (for tests and tooling).
std::string nkey_seed(NKeyRole role, const std::array<uint8_t, 32>& raw);

struct SubscriptionDeleter {
  void operator()(natsSubscription* sub) const {
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
  }
};
using SubscriptionPtr = std::unique_ptr<natsSubscription, SubscriptionDeleter>;

struct MessageDeleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
using MessagePtr = std::unique_ptr<natsMsg, MessageDeleter>;

struct JetStreamContextDeleter {
  void operator()(jsCtx* js) const { jsCtx_Destroy(js); }
};
using JetStreamContextPtr = std::unique_ptr<jsCtx, JetStreamContextDeleter>;

// The messages of one publish, one PubAck wait or one fetch, destroyed together when the call
// ends. nats.c hands every destroyed message to its collector thread and wakes that thread
// whenever it is idle: destroyed one at a time between other work, they woke it about every
// other message, a cost per message (docs/benchmarks.md). Destroyed together, they wake it a
// few times per batch.
using MessageGroup = std::vector<MessagePtr>;

// Splits "nats://a:4222,nats://b:4222".
std::vector<std::string> split_servers(std::string_view list);

class NatsConnection {
 public:
  // Returns once connected; while the servers cannot be reached it keeps trying in the
  // background and the call fails with Unavailable after `initial_wait`. A server that refuses
  // the login or the TLS handshake, and settings nats.c refuses (a file that cannot be read),
  // fail at once, Permanent ("nats_refused" / "invalid_config"), with nats.c's reason.
  static Result<std::unique_ptr<NatsConnection>> connect(const NatsSettings& settings, Logger& log,
                                                         std::chrono::milliseconds initial_wait);
  ~NatsConnection();
  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  // Publishes `data` to `subject` (with `reply` as its reply subject when given), buffered:
  // Unavailable with nats.c's reason when it cannot be.
  Status publish(const std::string& subject, std::string_view data, const std::string& reply = {});
  // Publishes a message built with its headers (natsMsg_Create); the caller still owns it.
  // nats.c's status, so that the caller can tell NATS_MAX_PAYLOAD (the message's own fault).
  natsStatus publish(natsMsg* message);
  bool connected() const;
  // Bumped on each reconnect: server-side pull requests made before it are gone.
  uint64_t generation() const { return generation_.load(); }
  // Whether the server refused an operation for want of a permission within the last `window`
  // (its -ERR names the subject; on_error logs it). Readiness fails meanwhile: a worker whose
  // user cannot pull, publish or ack is connected but cannot do its work.
  bool refused_within(std::chrono::milliseconds window) const;

  // A JetStream API request ($JS.API.*); returns the JSON reply, or the API's error as a
  // Status (type "nats_api", Permanent for 4xx client errors, else Unavailable).
  Result<std::string> api(const std::string& subject, const std::string& body);
  // The largest message the connected server accepts, headers included (0 when not connected).
  int64_t max_payload() const;
  // Flushes what is buffered and waits for the server's PONG.
  Status flush(std::chrono::milliseconds timeout);

  // Creates an inbox prefix unique to this process: "_INBOX.<nuid>".
  static std::string new_inbox();
  // A synchronous subscription to `subject` with no pending limits: its callers bound what can
  // arrive by what they asked for.
  Result<SubscriptionPtr> subscribe_sync(const std::string& subject);
  // A subscription whose messages `handler` gets on a nats.c thread (tools only: the worker
  // reads every subscription itself), with no pending limits.
  Result<SubscriptionPtr> subscribe_async(const std::string& subject, natsMsgHandler handler,
                                          void* closure);
  // A JetStream context over this connection.
  Result<JetStreamContextPtr> jetstream();

 private:
  NatsConnection(NatsSettings settings, Logger& log) : settings_(std::move(settings)), log_(log) {}
  static void on_disconnected(natsConnection* nc, void* closure);
  static void on_reconnected(natsConnection* nc, void* closure);
  static void on_connected(natsConnection* nc, void* closure);
  static void on_error(natsConnection* nc, natsSubscription* sub, natsStatus err, void* closure);
  static void on_closed(natsConnection* nc, void* closure);
  // Applies settings_ to opts_; Permanent invalid_config with the reason when nats.c refuses one.
  Status configure();

  NatsSettings settings_;
  Logger& log_;
  struct OptionsDeleter {
    void operator()(natsOptions* o) const { natsOptions_Destroy(o); }
  };
  struct ConnectionDeleter {  // after natsConnection_Close and its closed callback
    void operator()(natsConnection* c) const { natsConnection_Destroy(c); }
  };
  std::unique_ptr<natsOptions, OptionsDeleter> opts_;
  std::unique_ptr<natsConnection, ConnectionDeleter> conn_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> closing_{false};         // no disconnect warnings for our own close
  std::atomic<int64_t> last_refusal_ns_{0};  // steady clock; 0: never
  // nats.c runs the callbacks on a thread of its own, after natsConnection_Close has returned;
  // the closed callback comes last, so the destructor waits for it before freeing `this`.
  std::mutex closed_mu_;
  std::condition_variable closed_cv_;
  bool closed_ = false;
};

}  // namespace atw
