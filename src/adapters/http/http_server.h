#pragma once
// GET /metrics, /healthz (the process is alive and its pipeline not stuck) and /readyz (NATS
// and PostgreSQL reachable), served from a thread of its own (SPEC D16).

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/status.h"

namespace httplib {
class Server;
}

namespace atw {

class HttpServer {
 public:
  struct Handlers {
    std::function<std::string()> metrics;
    std::function<bool()> ready;
    std::function<bool()> alive;  // false: /healthz fails, so that the process is restarted
  };
  HttpServer(Handlers handlers);
  ~HttpServer();

  // "host:port"; port 0 picks a free one (port() tells which).
  Status start(const std::string& address);
  void stop();
  int port() const { return port_; }

 private:
  Handlers handlers_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace atw
