#include "domain/quality.h"

#include <cctype>

namespace atw {

namespace {

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  }
  return true;
}

}  // namespace

std::string_view quality_name(Quality q) {
  switch (q) {
    case Quality::kGood:
      return "good";
    case Quality::kUncertain:
      return "uncertain";
    case Quality::kBad:
      return "bad";
  }
  return "bad";
}

std::optional<Quality> parse_quality(std::string_view text) {
  // Longest first: "uncertain" is not "bad", but both start no other name.
  if (starts_with_nocase(text, "uncertain")) return Quality::kUncertain;
  if (starts_with_nocase(text, "good")) return Quality::kGood;
  if (starts_with_nocase(text, "bad")) return Quality::kBad;
  return std::nullopt;
}

std::optional<Quality> quality_of_status_code(uint64_t code) {
  if (code > 0xFFFFFFFFu) return std::nullopt;
  switch (code >> 30) {
    case 0:
      return Quality::kGood;
    case 1:
      return Quality::kUncertain;
    default:
      return Quality::kBad;
  }
}

}  // namespace atw
