#pragma once
// A secret setting (a connection URL with a password, a password, a token): given as it is, or
// as a file that holds it, as Kubernetes and Docker mount secrets. A file is read again each time
// the secret is needed (each connection), so that a secret rotated in place is taken at the next
// connection without a restart.

#include <string>

#include "common/status.h"

namespace atw {

struct SecretSource {
  std::string value;  // used when `file` is empty
  std::string file;

  SecretSource() = default;
  SecretSource(std::string v) : value(std::move(v)) {}  // NOLINT(google-explicit-constructor)
  SecretSource(std::string v, std::string f) : value(std::move(v)), file(std::move(f)) {}

  // The secret now: the file's content without its trailing line break, or `value`. A file
  // that cannot be read is a permanent invalid_config error naming the file, never its content.
  Result<std::string> current() const;
};

// The content of `path` without trailing whitespace; `setting` names it in the error.
Result<std::string> read_secret_file(std::string_view setting, const std::string& path);

}  // namespace atw
