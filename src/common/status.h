#pragma once
// Status and Result<T>: the error vocabulary of the whole worker.
//
// Every failure says whether retrying can help. The pipeline decides between ack, nak and the
// dead-letter queue from `Status::kind()` alone, never by looking at the message text.

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace atw {

enum class ErrorKind {
  kRetryable,    // the same input may succeed later (timeout, lock conflict): worth a redelivery
  kUnavailable,  // a server is down or unreachable: not the message's fault, so waiting for the
                 // server must not spend the message's deliveries (SPEC D14)
  kPermanent,    // the same input will fail again (invalid message, constraint violation)
};

class Status {
 public:
  Status() = default;  // ok

  // `type`: one of common/error_types.h for what the worker reports.
  static Status retryable(std::string_view type, std::string message) {
    return Status(ErrorKind::kRetryable, std::string(type), std::move(message));
  }
  static Status unavailable(std::string_view type, std::string message) {
    return Status(ErrorKind::kUnavailable, std::string(type), std::move(message));
  }
  static Status permanent(std::string_view type, std::string message) {
    return Status(ErrorKind::kPermanent, std::string(type), std::move(message));
  }

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }

  ErrorKind kind() const { return error_->kind; }
  // Unavailable is retryable too.
  bool retryable() const { return !ok() && error_->kind != ErrorKind::kPermanent; }
  bool unavailable() const { return !ok() && error_->kind == ErrorKind::kUnavailable; }
  bool permanent() const { return !ok() && error_->kind == ErrorKind::kPermanent; }
  // A short machine-readable class, used as a metric label and as the DLQ record's errorType
  // (e.g. "invalid_message", "db_write_failed").
  const std::string& type() const { return error_->type; }
  const std::string& message() const { return error_->message; }
  std::string to_string() const {
    return ok() ? std::string("ok") : error_->type + ": " + error_->message;
  }

 private:
  struct Error {
    ErrorKind kind;
    std::string type;
    std::string message;
  };
  Status(ErrorKind kind, std::string type, std::string message)
      : error_(Error{kind, std::move(type), std::move(message)}) {}

  std::optional<Error> error_;
};

// A value or the Status that explains why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok() && "Result built from an ok Status has no value");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace atw
