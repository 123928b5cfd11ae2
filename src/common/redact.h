#pragma once
// Secrets out of what the worker prints: every log line, error message and record goes through
// redact_secrets, so that a password or token in a connection string never reaches a log, a
// terminal or the DLQ (docs/security.md).

#include <string>
#include <string_view>

namespace atw {

// `text` with what a connection string can hold secretly replaced by "***": a URL's password
// (scheme://user:password@host), a NATS URL's token (nats://token@host, also tls://, ws://,
// wss://), and libpq's `password=...` (keyword form and URI query). Everything else stays.
std::string redact_secrets(std::string_view text);

// Whether redact_secrets could change `text` (a cheap look for its markers).
bool may_hold_secret(std::string_view text);

}  // namespace atw
