#include "domain/utf8.h"

#include <cstdint>
#include <cstring>

namespace atw {

int utf8_sequence_length(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  int need;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return -1;  // stray continuation byte, overlong C0/C1, or F5..FF
  }
  int len = 1;
  for (int k = 0; k < need; ++k, lo = 0x80, hi = 0xBF) {
    if (i + len >= s.size()) return -len;
    const auto b = static_cast<unsigned char>(s[i + len]);
    if (b < lo || b > hi) return -len;
    ++len;
  }
  return len;
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // ASCII is the common case: skip it eight bytes at a time.
    while (i + 8 <= s.size()) {
      uint64_t word;
      std::memcpy(&word, s.data() + i, 8);
      if (word & 0x8080808080808080ULL) break;
      i += 8;
    }
    if (i >= s.size()) break;
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const int len = utf8_sequence_length(s, i);
    if (len < 0) return false;
    i += static_cast<size_t>(len);
  }
  return true;
}

}  // namespace atw
