#pragma once
// The one owner of a libpq connection. Reconnects lazily: a call made while the server is down
// fails as Unavailable, and the next call tries to connect again.
//
// Not thread-safe: one PgConnection per thread.

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/secret_source.h"
#include "common/status.h"

namespace atw {

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

struct PgConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};

// Maps a failed result (or a broken connection) to the worker's error kinds:
// connection and server-shutdown classes are Unavailable, data and constraint classes
// (22, 23) Permanent, everything else Retryable.
Status pg_error_status(const PGresult* result, PGconn* conn, std::string_view type);
// The part of pg_error_status that needs no server: the kind of an error the server reported
// with `sqlstate` ("23505") on a connection that is still up. `message` is the server's text;
// the not-ready classes (schema, rights, timeouts, resources) come back as db_not_ready with the
// SQLSTATE and what to do appended, every other one as `type`.
Status pg_sqlstate_status(std::string_view sqlstate, std::string message, std::string_view type);

class PgConnection {
 public:
  // `url` is a libpq URI or key=value string, or a file that holds one (DATABASE_URL_FILE),
  // read again at every connect so that a rotated password is taken at the next connection.
  // `statement_timeout_ms` bounds every statement.
  explicit PgConnection(SecretSource url, int statement_timeout_ms = 30000);

  // Connects if needed. Unavailable when the server cannot be reached or refuses the login.
  Status ensure();
  // Whether the last failed connect was the server (or libpq's TLS check) refusing this login:
  // no or a wrong password, no pg_hba.conf entry, no such role or database, a server
  // certificate that fails verification. At start that is a setting to fix, not an outage to
  // wait out. Read off libpq's and the server's messages in English (lc_messages C or en).
  bool login_refused() const { return login_refused_; }
  bool connected() const;
  // Asks the server a trivial question: how an idle connection finds out the server is gone.
  Status ping();
  // Counts successful (re)connections; a change tells listeners that notices may be lost.
  uint64_t generation() const { return generation_; }
  void reset() { conn_.reset(); }

  // Every call that runs SQL names first the error type it fails with (`failure_type`, one of
  // common/error_types.h: what the failure counts as in metrics and dead letters); the kind
  // (unavailable, retryable, permanent) comes from the server's answer (pg_error_status).
  //
  // Runs a statement with text parameters (nullopt is SQL NULL).
  Result<PgResult> exec(std::string_view failure_type, const char* sql,
                        const std::vector<std::optional<std::string>>& params = {});
  // exec, for a statement that may run long: waits in slices of a tenth of a second and gives
  // up, dropping the connection (the server then ends the statement by itself), once `stop` is
  // set; fails at once if it already is.
  Result<PgResult> exec_until(std::string_view failure_type, const char* sql,
                              const std::vector<std::optional<std::string>>& params,
                              const std::atomic<bool>& stop);
  // Runs `sql`, statements separated by semicolons, in one request (the simple query protocol):
  // one round trip for all of them, where exec takes one each. A COPY ... FROM STDIN among them
  // is fed `copy_data` (already in the COPY format; at most one COPY may be). The statements
  // after a failed one do not run.
  // Returns the last result with rows (empty if none had rows), or the first failure.
  Result<PgResult> run_script(std::string_view failure_type, const std::string& sql,
                              std::string_view copy_data = {});
  // The same, returning the result of every statement that returns rows (a SELECT, even of no
  // rows), in statement order.
  Result<std::vector<PgResult>> run_script_results(std::string_view failure_type,
                                                   const std::string& sql,
                                                   std::string_view copy_data = {});
  // `text` as a quoted SQL literal for run_script, which takes no parameters.
  Result<std::string> literal(std::string_view failure_type, std::string_view text);

  // The SQLSTATE of the last statement the server refused ("23505"), empty if it gave none.
  const std::string& last_sqlstate() const { return last_sqlstate_; }

  // For a connection that LISTENs: waits up to `timeout` for the server to send something and
  // returns the payloads of the notifications that came (none when it timed out).
  // Unavailable, and the connection dropped, when the connection is lost.
  Result<std::vector<std::string>> wait_for_notifications(std::chrono::milliseconds timeout);

 private:
  // pg_error_status of a failed result, remembering its SQLSTATE.
  Status failure(const PGresult* result, std::string_view type);
  // Streams `data` to a COPY the server is waiting on, and ends it.
  Status feed_copy(std::string_view failure_type, std::string_view data);

  SecretSource url_;
  int statement_timeout_ms_;
  std::unique_ptr<PGconn, PgConnDeleter> conn_;
  uint64_t generation_ = 0;
  std::string last_sqlstate_;
  bool login_refused_ = false;
};

// `{"a","b\"c"}`: a text[] literal for a parameter.
std::string pg_text_array(const std::vector<std::string_view>& items);

}  // namespace atw
