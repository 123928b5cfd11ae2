#include "adapters/http/http_server.h"

#include <httplib.h>

namespace atw {

HttpServer::HttpServer(Handlers handlers)
    : handlers_(std::move(handlers)), server_(std::make_unique<httplib::Server>()) {}

HttpServer::~HttpServer() {
  stop();
}

Status HttpServer::start(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return Status::permanent("invalid_config", "HTTP_ADDR must be host:port, got " + address);
  }
  std::string host = address.substr(0, colon);
  if (host.empty()) host = "0.0.0.0";
  const int port = std::atoi(address.c_str() + colon + 1);

  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(handlers_.metrics(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    const bool alive = !handlers_.alive || handlers_.alive();
    res.status = alive ? 200 : 503;
    res.set_content(alive ? "ok\n" : "stalled\n", "text/plain");
  });
  server_->Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    const bool ready = handlers_.ready();
    res.status = ready ? 200 : 503;
    res.set_content(ready ? "ready\n" : "not ready\n", "text/plain");
  });
  port_ =
      port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (port_ < 0) return Status::permanent("invalid_config", "cannot listen on " + address);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return Status();
}

void HttpServer::stop() {
  if (thread_.joinable()) {
    server_->stop();
    thread_.join();
  }
}

}  // namespace atw
