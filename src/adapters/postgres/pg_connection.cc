#include "adapters/postgres/pg_connection.h"

#include <fmt/format.h>
#include <poll.h>

#include <algorithm>
#include <cstring>

#include "common/error_types.h"

namespace atw {

namespace {

// What the server answers when it is there but not ready for the worker (SPEC D14): the schema
// or the rights are not what the worker needs, or it cannot take the work now. Never one
// message's fault, so waited out like an outage.
//   42    syntax error or access rule violation: an undefined table, column or function, a
//         missing privilege, a wrong object type (a view where a table should be)
//   25006 read-only transaction (a standby, or default_transaction_read_only)
//   57014 statement timeout; 55P03 lock timeout; 55006 object in use
//   53    insufficient resources (too many connections, disk full, out of memory)
//   57P   shutting down, or not accepting connections yet
//   3D000 no such database; 28 invalid authorization
//   58    system error (I/O)
//   22P03 a binary COPY the column types do not take; 23502 a NOT NULL column the worker does
//         not fill: both say the table is not the one the worker writes, whatever the data
bool not_ready(std::string_view s) {
  return s.starts_with("42") || s == "25006" || s == "57014" || s == "55P03" || s == "55006" ||
         s.starts_with("53") || s.starts_with("57P") || s == "3D000" || s.starts_with("28") ||
         s.starts_with("58") || s == "22P03" || s == "23502";
}

// What to do about it, for the log line.
std::string_view not_ready_hint(std::string_view s) {
  if (s == "42P01" || s == "42703" || s == "42883") {
    return " (the schema is not the worker's yet: run `asset-worker migrate`)";
  }
  if (s == "42501") return " (grant the worker's role the rights docs/adopting.md lists)";
  if (s == "22P03" || s == "23502") {
    return " (the table's columns are not what the worker writes: see docs/adopting.md)";
  }
  return "";
}

}  // namespace

Status pg_error_status(const PGresult* result, PGconn* conn, std::string_view type) {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string message = result && *PQresultErrorMessage(result) ? PQresultErrorMessage(result)
                        : conn                                  ? PQerrorMessage(conn)
                                                                : "no connection";
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  if (conn == nullptr || PQstatus(conn) != CONNECTION_OK || state == nullptr) {
    return Status::unavailable(type, message);
  }
  return pg_sqlstate_status(state, std::move(message), type);
}

Status pg_sqlstate_status(std::string_view sqlstate, std::string message, std::string_view type) {
  const std::string_view s = sqlstate;
  if (s.starts_with("08")) return Status::unavailable(type, message);
  if (not_ready(s)) {
    return Status::unavailable(error_type::kDbNotReady,
                               fmt::format("{} [SQLSTATE {}]{}", message, s, not_ready_hint(s)));
  }
  if (s.starts_with("22") || s.starts_with("23")) return Status::permanent(type, message);
  return Status::retryable(type, message);
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

namespace {
// What libpq and the server say when they refuse a login (see login_refused()).
constexpr std::string_view kLoginRefusals[] = {"authentication failed",
                                               "no password supplied",
                                               "pg_hba.conf",
                                               "does not exist",
                                               "certificate verify failed",
                                               "does not match host name",
                                               "root certificate file",
                                               "SSL off",
                                               "server does not support SSL"};
}  // namespace

PgConnection::PgConnection(SecretSource url, int statement_timeout_ms)
    : url_(std::move(url)), statement_timeout_ms_(statement_timeout_ms) {}

bool PgConnection::connected() const {
  return conn_ && PQstatus(conn_.get()) == CONNECTION_OK;
}

Status PgConnection::ensure() {
  if (connected()) return Status();
  // DateStyle and TimeZone fix the text form of the timestamps the worker reads as text
  // (parse_pg_timestamp); they change nothing the worker writes.
  const std::string options = fmt::format(
      "-c statement_timeout={} -c DateStyle=ISO,YMD -c TimeZone=UTC", statement_timeout_ms_);
  // Later entries override earlier ones, and the URL is expanded in place of dbname: the
  // defaults here give way to anything the operator's URL says.
  auto url = url_.current();
  if (!url.ok()) return Status::unavailable(error_type::kDbUnavailable, url.status().message());
  const char* keys[] = {"connect_timeout", "application_name", "options", "dbname", nullptr};
  const char* values[] = {"5", "asset-worker", options.c_str(), url->c_str(), nullptr};
  conn_.reset(PQconnectdbParams(keys, values, 1));
  if (!connected()) {
    std::string msg = conn_ ? PQerrorMessage(conn_.get()) : "out of memory";
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    login_refused_ =
        (conn_ && PQconnectionNeedsPassword(conn_.get())) ||
        std::any_of(std::begin(kLoginRefusals), std::end(kLoginRefusals),
                    [&msg](std::string_view m) { return msg.find(m) != std::string::npos; });
    conn_.reset();
    return Status::unavailable(error_type::kDbUnavailable, msg);
  }
  // Server NOTICEs (e.g. "already exists, skipping" from a re-run migration) are not errors and
  // must not leak onto stderr as unstructured lines.
  PQsetNoticeProcessor(
      conn_.get(), [](void*, const char*) {}, nullptr);
  // A URL with options of its own replaces the ones above: the two that matter are set here.
  const char* date_style = PQparameterStatus(conn_.get(), "DateStyle");
  const char* time_zone = PQparameterStatus(conn_.get(), "TimeZone");
  if (date_style == nullptr || !std::string_view(date_style).starts_with("ISO") ||
      time_zone == nullptr || std::string_view(time_zone) != "UTC") {
    PgResult set(PQexec(conn_.get(), "SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'"));
    if (!set || PQresultStatus(set.get()) != PGRES_COMMAND_OK) {
      Status st = pg_error_status(set.get(), conn_.get(), error_type::kDbUnavailable);
      conn_.reset();
      return st;
    }
  }
  login_refused_ = false;
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
  auto results = run_script_results(type, sql, copy_data);
  if (!results.ok()) return results.status();
  if (results->empty()) return PgResult();
  return std::move(results->back());
}

Result<std::vector<PgResult>> PgConnection::run_script_results(std::string_view type,
                                                               const std::string& sql,
                                                               std::string_view copy_data) {
  if (Status st = ensure(); !st.ok()) return st;
  if (!PQsendQuery(conn_.get(), sql.c_str())) {
    Status st = pg_error_status(nullptr, conn_.get(), type);
    conn_.reset();
    return st;
  }
  // One result per statement until libpq says the request is over; after a failure the server
  // skips the rest, and what it still sends is read so the connection is ready again.
  std::vector<PgResult> rows;
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
        rows.push_back(std::move(r));
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

Result<std::vector<std::string>> PgConnection::wait_for_notifications(
    std::chrono::milliseconds timeout) {
  std::vector<std::string> payloads;
  if (!conn_) return Status::unavailable(error_type::kDbUnavailable, "not connected");
  pollfd readable{PQsocket(conn_.get()), POLLIN, 0};
  if (poll(&readable, 1, static_cast<int>(timeout.count())) < 0) return payloads;  // a signal
  if (PQconsumeInput(conn_.get()) == 0) {
    Status lost = Status::unavailable(error_type::kDbUnavailable, PQerrorMessage(conn_.get()));
    conn_.reset();
    return lost;
  }
  using Notification = std::unique_ptr<PGnotify, decltype(&PQfreemem)>;
  while (Notification n{PQnotifies(conn_.get()), &PQfreemem}) payloads.emplace_back(n->extra);
  return payloads;
}

Status PgConnection::ping() {
  auto r = exec(error_type::kDbUnavailable, "SELECT 1");
  return r.ok() ? Status() : r.status();
}

}  // namespace atw
