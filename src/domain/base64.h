#pragma once
// Base64 (RFC 4648, with padding): how a dead-letter record carries a payload that is not JSON,
// and how the JetStream API carries stored messages.

#include <string>
#include <string_view>

namespace atw {

std::string base64_encode(std::string_view bytes);
// Decodes `in`, skipping what is not of the alphabet (padding, line breaks).
std::string base64_decode(std::string_view in);

}  // namespace atw
