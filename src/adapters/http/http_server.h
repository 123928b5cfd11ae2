#pragma once
// GET /metrics, /healthz (the process is alive and its pipeline not stuck) and /readyz (NATS
// and PostgreSQL reachable), served from a thread of its own (SPEC D16).
//
// The probes must answer within their timeout whatever other clients do (a liveness probe that
// times out three times restarts the pod). So the server is one thread around poll(): no client
// holds a thread, a request's head must arrive whole within `request_deadline` and within
// `max_request_bytes`, and when `max_connections` are open the oldest is closed to take the
// newest (a client that trickles a header is the one that waits longest). It answers GET (and
// HEAD) of the three paths, 404 any other path, 405 any other method, 400 or 431 what it cannot
// read, each on a connection of its own (Connection: close).
//
// Thread safety: the handlers run on the server's thread; start() and stop() on the caller's.

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "common/status.h"

namespace atw {

struct HttpAddress {
  std::string host;  // an IPv4 or IPv6 literal, or a name; "" for every address
  int port = 0;      // 0 picks a free one
};

// "host:port", "[v6]:port" or ":port" (every address). Permanent invalid_config otherwise.
Result<HttpAddress> parse_http_address(std::string_view text);

struct HttpLimits {
  size_t max_request_bytes = 8192;
  std::chrono::milliseconds request_deadline{2000};  // from accept to the response written
  size_t max_connections = 256;
};

class HttpServer {
 public:
  struct Handlers {
    std::function<std::string()> metrics;
    std::function<bool()> ready;
    std::function<bool()> alive;  // false: /healthz fails, so that the process is restarted
  };
  explicit HttpServer(Handlers handlers, HttpLimits limits = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  Status start(const HttpAddress& address);
  void stop();
  int port() const { return port_; }

 private:
  struct Connection;
  void serve();
  std::string respond(std::string_view head) const;

  Handlers handlers_;
  HttpLimits limits_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // an eventfd: stop() wakes the poll
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace atw
