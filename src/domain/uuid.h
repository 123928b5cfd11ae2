#pragma once
// Name-based UUIDs (RFC 4122 version 5, SHA-1) for deterministic event ids (SPEC D13).

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace atw {

std::array<uint8_t, 20> sha1(std::string_view data);

// RFC 4122 §4.3 with SHA-1; `ns` is the 16-byte namespace UUID. Lower-case canonical text.
std::string uuid_v5(const std::array<uint8_t, 16>& ns, std::string_view name);

}  // namespace atw
