#include "adapters/postgres/pg_connection.h"

#include <fmt/format.h>
#include <poll.h>

#include <cstring>

namespace atw {

Status pg_error_status(const PGresult* result, PGconn* conn, std::string_view type) {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string message = result && *PQresultErrorMessage(result) ? PQresultErrorMessage(result)
                        : conn                                  ? PQerrorMessage(conn)
                                                                : "no connection";
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  const std::string t(type);
  if (conn == nullptr || PQstatus(conn) != CONNECTION_OK || state == nullptr) {
    return Status::unavailable(t, message);
  }
  const std::string_view s(state);
  if (s.starts_with("08") || s.starts_with("57P") || s.starts_with("53")) {
    return Status::unavailable(t, message);
  }
  if (s.starts_with("22") || s.starts_with("23")) return Status::permanent(t, message);
  return Status::retryable(t, message);
}

namespace {

// libpq's view of text parameters: one C string each, nullptr for SQL NULL.
std::vector<const char*> param_values(const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  return values;
}

}  // namespace

PgConnection::PgConnection(std::string url, int statement_timeout_ms)
    : url_(std::move(url)), statement_timeout_ms_(statement_timeout_ms) {}

bool PgConnection::connected() const {
  return conn_ && PQstatus(conn_.get()) == CONNECTION_OK;
}

Status PgConnection::ensure() {
  if (connected()) return Status();
  const std::string options = fmt::format("-c statement_timeout={}", statement_timeout_ms_);
  // Later entries override earlier ones, and the URL is expanded in place of dbname: the
  // defaults here give way to anything the operator's URL says.
  const char* keys[] = {"connect_timeout", "application_name", "options", "dbname", nullptr};
  const char* values[] = {"5", "asset-worker", options.c_str(), url_.c_str(), nullptr};
  conn_.reset(PQconnectdbParams(keys, values, 1));
  if (!connected()) {
    std::string msg = conn_ ? PQerrorMessage(conn_.get()) : "out of memory";
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    conn_.reset();
    return Status::unavailable("db_unavailable", msg);
  }
  // Server NOTICEs (e.g. "already exists, skipping" from a re-run migration) are not errors and
  // must not leak onto stderr as unstructured lines.
  PQsetNoticeProcessor(
      conn_.get(), [](void*, const char*) {}, nullptr);
  ++generation_;
  return Status();
}

Status PgConnection::failure(const PGresult* result, std::string_view type) {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  last_sqlstate_ = state ? state : "";
  return pg_error_status(result, conn_.get(), type);
}

Result<PgResult> PgConnection::exec(std::string_view type, const char* sql,
                                    const std::vector<std::optional<std::string>>& params) {
  if (Status st = ensure(); !st.ok()) return st;
  const std::vector<const char*> values = param_values(params);
  PgResult r(PQexecParams(conn_.get(), sql, static_cast<int>(values.size()), nullptr, values.data(),
                          nullptr, nullptr, 0));
  const auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return r;
  Status st = failure(r.get(), type);
  if (st.unavailable()) conn_.reset();
  return st;
}

Result<PgResult> PgConnection::exec_until(std::string_view type, const char* sql,
                                          const std::vector<std::optional<std::string>>& params,
                                          const std::atomic<bool>& stop) {
  const Status stopped = Status::unavailable(std::string(type), "stopped");
  if (stop.load()) return stopped;
  if (Status st = ensure(); !st.ok()) return st;
  const std::vector<const char*> values = param_values(params);
  if (!PQsendQueryParams(conn_.get(), sql, static_cast<int>(values.size()), nullptr, values.data(),
                         nullptr, nullptr, 0)) {
    Status st = pg_error_status(nullptr, conn_.get(), type);
    conn_.reset();
    return st;
  }
  // Every result of the statement, the first kept, until libpq says the command is over.
  PgResult first;
  while (true) {
    while (PQisBusy(conn_.get())) {
      if (stop.load()) {
        conn_.reset();
        return stopped;
      }
      pollfd p{PQsocket(conn_.get()), POLLIN, 0};
      (void)poll(&p, 1, 100);
      if (!PQconsumeInput(conn_.get())) {
        Status st = pg_error_status(nullptr, conn_.get(), type);
        conn_.reset();
        return st;
      }
    }
    PgResult next(PQgetResult(conn_.get()));
    if (!next) break;
    if (!first) first = std::move(next);
  }
  const auto status = first ? PQresultStatus(first.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return first;
  Status st = failure(first.get(), type);
  if (st.unavailable()) conn_.reset();
  return st;
}

Status PgConnection::feed_copy(std::string_view type, std::string_view data) {
  // Large chunks: libpq buffers, and one call per megabyte keeps the loop out of the profile.
  constexpr size_t kChunk = 1 << 20;
  for (size_t off = 0; off < data.size(); off += kChunk) {
    const size_t n = std::min(kChunk, data.size() - off);
    if (PQputCopyData(conn_.get(), data.data() + off, static_cast<int>(n)) != 1) {
      Status st = Status::unavailable(std::string(type), PQerrorMessage(conn_.get()));
      conn_.reset();
      return st;
    }
  }
  if (PQputCopyEnd(conn_.get(), nullptr) != 1) {
    Status st = Status::unavailable(std::string(type), PQerrorMessage(conn_.get()));
    conn_.reset();
    return st;
  }
  return Status();
}

Result<PgResult> PgConnection::run_script(std::string_view type, const std::string& sql,
                                          std::string_view copy_data) {
  if (Status st = ensure(); !st.ok()) return st;
  if (!PQsendQuery(conn_.get(), sql.c_str())) {
    Status st = pg_error_status(nullptr, conn_.get(), type);
    conn_.reset();
    return st;
  }
  // One result per statement until libpq says the request is over; after a failure the server
  // skips the rest, and what it still sends is read so the connection is ready again.
  PgResult rows;
  PgResult failed;
  bool copied = false;
  while (PGresult* next = PQgetResult(conn_.get())) {
    PgResult r(next);
    switch (PQresultStatus(r.get())) {
      case PGRES_COMMAND_OK:
      case PGRES_EMPTY_QUERY:  // ";;"
        break;
      case PGRES_COPY_OUT:
      case PGRES_COPY_BOTH:
        // Not a script's: libpq would answer with this result until the copy is read.
        conn_.reset();
        return Status::permanent(std::string(type), "a script cannot copy out");
      case PGRES_TUPLES_OK:
        rows = std::move(r);
        break;
      case PGRES_COPY_IN:
        if (copied) {
          // A caller's mistake: the server fails this COPY and skips the rest.
          (void)PQputCopyEnd(conn_.get(), "a script feeds one COPY only");
          break;
        }
        if (Status st = feed_copy(type, copy_data); !st.ok()) return st;
        copied = true;
        break;
      default:
        if (!failed) failed = std::move(r);
    }
  }
  if (failed || !connected()) {
    Status st = failure(failed.get(), type);
    if (st.unavailable()) conn_.reset();
    return st;
  }
  return rows;
}

Result<std::string> PgConnection::literal(std::string_view type, std::string_view text) {
  if (Status st = ensure(); !st.ok()) return st;
  std::unique_ptr<char, decltype(&PQfreemem)> quoted(
      PQescapeLiteral(conn_.get(), text.data(), text.size()), &PQfreemem);
  if (!quoted) return Status::permanent(std::string(type), PQerrorMessage(conn_.get()));
  return std::string(quoted.get());
}

std::string pg_text_array(const std::vector<std::string_view>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out.push_back(',');
    out.push_back('"');
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

}  // namespace atw
