#include "common/redact.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>

namespace atw {

namespace {

constexpr std::string_view kMask = "***";
constexpr std::string_view kPasswordKey = "password=";

bool is_scheme_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '-' || c == '.';
}

// Ends a URL's authority: its path, query or fragment, a list's comma, or the text around it.
bool ends_authority(char c) {
  return c == '/' || c == '?' || c == '#' || c == ',' || c == '"' || c == '\'' || c == ' ' ||
         c == '\t' || c == '\n' || c == '\r' || c == '>' || c == ')' || c == ']' || c == '}';
}

// NATS URLs take a token as their user alone.
bool token_scheme(std::string_view scheme) {
  constexpr std::array<std::string_view, 4> kSchemes = {"nats", "tls", "ws", "wss"};
  std::string lower(scheme);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return std::find(kSchemes.begin(), kSchemes.end(), lower) != kSchemes.end();
}

bool ends_value(char c) {
  return c == ' ' || c == '&' || c == '\'' || c == '"' || c == '\t' || c == '\n' || c == '\r' ||
         c == ',' || c == ';';
}

// Masks the userinfo secrets of every URL in `text`.
std::string redact_urls(std::string_view text) {
  std::string out;
  size_t copied = 0;
  for (size_t sep = text.find("://"); sep != std::string_view::npos;
       sep = text.find("://", sep + 3)) {
    size_t scheme_start = sep;
    while (scheme_start > 0 && is_scheme_char(text[scheme_start - 1])) --scheme_start;
    const size_t start = sep + 3;
    size_t end = start;
    while (end < text.size() && !ends_authority(text[end])) ++end;
    const std::string_view authority = text.substr(start, end - start);
    const size_t at = authority.rfind('@');
    if (at == std::string_view::npos) continue;
    const std::string_view userinfo = authority.substr(0, at);
    const size_t colon = userinfo.find(':');
    size_t mask_from = 0;
    if (colon != std::string_view::npos) {
      mask_from = start + colon + 1;
    } else if (token_scheme(text.substr(scheme_start, sep - scheme_start))) {
      mask_from = start;
    } else {
      continue;  // a user name alone is no secret
    }
    out.append(text.substr(copied, mask_from - copied)).append(kMask);
    copied = start + at;
  }
  out.append(text.substr(copied));
  return out;
}

// Masks every `password=value` (libpq's keyword form and URI query, any case).
std::string redact_passwords(std::string text) {
  for (size_t pos = 0;;) {
    auto it = std::search(text.begin() + static_cast<std::ptrdiff_t>(pos), text.end(),
                          kPasswordKey.begin(), kPasswordKey.end(), [](char a, char b) {
                            return std::tolower(static_cast<unsigned char>(a)) == b;
                          });
    if (it == text.end()) break;
    const size_t value = static_cast<size_t>(it - text.begin()) + kPasswordKey.size();
    size_t end = value;
    if (end < text.size() && text[end] == '\'') {  // libpq's quoted form
      for (++end; end < text.size() && text[end] != '\''; ++end) {
        if (text[end] == '\\') ++end;
      }
      if (end < text.size()) ++end;
    } else {
      while (end < text.size() && !ends_value(text[end])) ++end;
    }
    text.replace(value, end - value, kMask);
    pos = value + kMask.size();
  }
  return text;
}

}  // namespace

bool may_hold_secret(std::string_view text) {
  if (text.find("://") != std::string_view::npos) return true;
  return std::search(text.begin(), text.end(), kPasswordKey.begin(), kPasswordKey.end(),
                     [](char a, char b) {
                       return std::tolower(static_cast<unsigned char>(a)) == b;
                     }) != text.end();
}

std::string redact_secrets(std::string_view text) {
  if (!may_hold_secret(text)) return std::string(text);
  return redact_passwords(redact_urls(text));
}

}  // namespace atw
