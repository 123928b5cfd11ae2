#pragma once
// Every error type the worker reports: Status::type(), the `type` label of
// asset_worker_errors_total and a dead-letter record's errorType. Each is exported at 0 from the
// start (SPEC D16), so that rate() and alerts see the first one; a type the list lacks is still
// counted once it happens, but only from then on.

#include <array>
#include <string_view>

namespace atw::error_type {

// A message's own fault.
inline constexpr std::string_view kInvalidMessage = "invalid_message";  // SPEC D3
inline constexpr std::string_view kPublishRefused = "publish_refused";  // the stream refused it
inline constexpr std::string_view kPublishTooLarge = "publish_too_large";
// Formulas and links that cannot be used (counted; the telemetry still flows).
inline constexpr std::string_view kFormulaInvalid = "formula_invalid";
inline constexpr std::string_view kLinkUnreadable = "link_unreadable";
// The shared link cache (never fails a message: a miss instead).
inline constexpr std::string_view kCacheUnavailable = "cache_unavailable";
inline constexpr std::string_view kCacheCorrupt = "cache_corrupt";
inline constexpr std::string_view kCacheMismatch = "cache_mismatch";
// PostgreSQL.
inline constexpr std::string_view kDbUnavailable = "db_unavailable";
inline constexpr std::string_view kDbNotReady = "db_not_ready";  // schema, rights, timeouts
inline constexpr std::string_view kLinkQueryFailed = "link_query_failed";
inline constexpr std::string_view kDbWriteFailed = "db_write_failed";
inline constexpr std::string_view kWrittenBefore = "written_before";
inline constexpr std::string_view kConcurrentDuplicate = "concurrent_duplicate";
// NATS.
inline constexpr std::string_view kNatsUnavailable = "nats_unavailable";
inline constexpr std::string_view kNatsApi = "nats_api";
inline constexpr std::string_view kPublishFailed = "publish_failed";
inline constexpr std::string_view kPublishTimeout = "publish_timeout";
inline constexpr std::string_view kDlqPublishFailed = "dlq_publish_failed";
inline constexpr std::string_view kMaxDeliveriesExceeded = "max_deliveries_exceeded";
// The process itself.
inline constexpr std::string_view kOutOfMemory = "out_of_memory";

// What the worker exports at 0 (commands' own types, such as invalid_config, are not metrics).
inline constexpr std::array kAll = {
    kInvalidMessage, kPublishRefused,      kPublishTooLarge,  kFormulaInvalid,
    kLinkUnreadable, kCacheUnavailable,    kCacheCorrupt,     kCacheMismatch,
    kDbUnavailable,  kDbNotReady,          kLinkQueryFailed,  kDbWriteFailed,
    kWrittenBefore,  kConcurrentDuplicate, kNatsUnavailable,  kNatsApi,
    kPublishFailed,  kPublishTimeout,      kDlqPublishFailed, kMaxDeliveriesExceeded,
    kOutOfMemory,
};

}  // namespace atw::error_type
