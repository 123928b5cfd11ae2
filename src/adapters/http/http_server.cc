#include "adapters/http/http_server.h"

#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <memory>

namespace atw {

namespace {

using SteadyClock = std::chrono::steady_clock;

Status invalid(std::string message) {
  return Status::permanent("invalid_config", std::move(message));
}

std::string_view reason(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    default:
      return "Service Unavailable";
  }
}

std::string response(int code, std::string_view content_type, std::string_view body,
                     bool with_body) {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
      code, reason(code), content_type, body.size(), code == 405 ? "Allow: GET, HEAD\r\n" : "");
  if (with_body) out.append(body);
  return out;
}

// The end of a request's head (past its blank line), or npos while it is not all there.
size_t head_end(std::string_view in) {
  const size_t crlf = in.find("\r\n\r\n");
  if (crlf != std::string_view::npos) return crlf + 4;
  const size_t lf = in.find("\n\n");
  return lf == std::string_view::npos ? lf : lf + 2;
}

}  // namespace

Result<HttpAddress> parse_http_address(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return invalid(fmt::format("HTTP_ADDR must be host:port, got \"{}\"", text));
  }
  HttpAddress a;
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find_first_of("[]:") != std::string_view::npos) {
    return invalid(fmt::format("HTTP_ADDR must be host:port or [v6]:port, got \"{}\"", text));
  }
  a.host = std::string(host);
  const std::string_view port = text.substr(colon + 1);
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), a.port);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || a.port < 0 ||
      a.port > 65535) {
    return invalid(fmt::format("HTTP_ADDR's port must be a number 0..65535, got \"{}\"", port));
  }
  return a;
}

struct HttpServer::Connection {
  int fd = -1;
  SteadyClock::time_point deadline;
  std::string in;
  std::string out;
  size_t written = 0;
  bool responding = false;
};

HttpServer::HttpServer(Handlers handlers, HttpLimits limits)
    : handlers_(std::move(handlers)), limits_(limits) {}

HttpServer::~HttpServer() {
  stop();
}

Status HttpServer::start(const HttpAddress& address) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(address.port);
  if (const int e = getaddrinfo(address.host.empty() ? nullptr : address.host.c_str(), port.c_str(),
                                &hints, &found);
      e != 0) {
    return invalid(fmt::format("HTTP_ADDR {}: {}", address.host, gai_strerror(e)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(found, &freeaddrinfo);
  std::string why = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    const int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 512) == 0) {
      listen_fd_ = fd;
      break;
    }
    why = std::strerror(errno);
    close(fd);
  }
  if (listen_fd_ < 0) {
    return invalid(fmt::format("cannot listen on {}:{}: {}", address.host, address.port, why));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  thread_ = std::thread([this] { serve(); });
  return Status();
}

void HttpServer::stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true);
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
  thread_.join();
  close(listen_fd_);
  close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
}

std::string HttpServer::respond(std::string_view head) const {
  // The request line: METHOD SP target SP version.
  const std::string_view line = head.substr(0, head.find_first_of("\r\n"));
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || !line.substr(sp2 + 1).starts_with("HTTP/")) {
    return response(400, "text/plain", "bad request\n", true);
  }
  const std::string_view method = line.substr(0, sp1);
  std::string_view path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  path = path.substr(0, path.find('?'));
  const bool head_only = method == "HEAD";
  if (method != "GET" && !head_only) {
    return response(405, "text/plain", "method not allowed\n", true);
  }
  if (path == "/metrics") {
    return response(200, "text/plain; version=0.0.4; charset=utf-8", handlers_.metrics(),
                    !head_only);
  }
  if (path == "/healthz") {
    const bool alive = !handlers_.alive || handlers_.alive();
    return response(alive ? 200 : 503, "text/plain", alive ? "ok\n" : "stalled\n", !head_only);
  }
  if (path == "/readyz") {
    const bool ready = handlers_.ready();
    return response(ready ? 200 : 503, "text/plain", ready ? "ready\n" : "not ready\n", !head_only);
  }
  return response(404, "text/plain", "not found\n", !head_only);
}

void HttpServer::serve() {
  // In accept order: the front is the oldest, closed first when the server is full.
  std::deque<Connection> connections;
  std::vector<pollfd> fds;
  char buffer[4096];
  while (!stopping_.load()) {
    auto now = SteadyClock::now();
    std::erase_if(connections, [now](const Connection& c) {
      if (c.deadline > now) return false;
      close(c.fd);
      return true;
    });
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    auto wait = std::chrono::milliseconds(1000);
    for (const Connection& c : connections) {
      fds.push_back({c.fd, static_cast<short>(c.responding ? POLLOUT : POLLIN), 0});
      wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(c.deadline - now));
    }
    if (poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(wait.count(), 0))) < 0) {
      continue;  // EINTR
    }
    if (fds[0].revents != 0) break;
    now = SteadyClock::now();
    // Connections before the new ones, so that fds[i + 2] is connections[i].
    for (size_t i = 0; i < connections.size(); ++i) {
      Connection& c = connections[i];
      const short events = fds[i + 2].revents;
      if (events == 0) continue;
      if (!c.responding) {
        const ssize_t n = recv(c.fd, buffer, sizeof buffer, 0);
        if (n <= 0) {
          if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
          c.deadline = now;  // the client went away
          continue;
        }
        c.in.append(buffer, static_cast<size_t>(n));
        const size_t end = head_end(c.in);
        if (end != std::string::npos && end <= limits_.max_request_bytes) {
          c.out = respond(std::string_view(c.in).substr(0, end));
          c.responding = true;
        } else if (c.in.size() > limits_.max_request_bytes) {
          c.out = response(431, "text/plain", "request too large\n", true);
          c.responding = true;
        }
      } else {
        const ssize_t n =
            send(c.fd, c.out.data() + c.written, c.out.size() - c.written, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) {
          c.deadline = now;
          continue;
        }
        c.written += static_cast<size_t>(n);
        if (c.written == c.out.size()) {
          shutdown(c.fd, SHUT_WR);
          c.deadline = now;  // done: closed at the top of the loop
        }
      }
    }
    if (fds[1].revents & POLLIN) {
      while (true) {
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        if (connections.size() >= limits_.max_connections) {
          close(connections.front().fd);
          connections.pop_front();
        }
        connections.push_back(Connection{fd, now + limits_.request_deadline, {}, {}, 0, false});
      }
    }
  }
  for (const Connection& c : connections) close(c.fd);
}

}  // namespace atw
