#include "domain/js_number.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace atw {

void append_js_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  if (v == 0) {  // also -0, which JavaScript prints as "0"
    out += '0';
    return;
  }
  if (v < 0) {
    out += '-';
    v = -v;
  }
  if (v < 1e15 && v == std::floor(v)) {
    // Whole numbers (scores, counts) are common and print exactly as integers, several times
    // faster than the shortest-digits search.
    char buf[24];
    const auto res = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v));
    out.append(buf, res.ptr);
    return;
  }
  if (v >= 1e-6 && v < 1e15) {
    // Most readings: the shortest round-trip form, when it comes out in plain notation, is
    // JavaScript's (the same digits, laid out the same way in this range). When the scientific
    // form is shorter (1.5e-05), it is laid out below.
    char plain[32];
    const auto res = std::to_chars(plain, plain + sizeof plain, v);
    if (std::find(plain, res.ptr, 'e') == res.ptr) {
      out.append(plain, res.ptr);
      return;
    }
  }
  // Shortest round-trip scientific form: d[.ddd]e±XX.
  char sci[32];
  const auto res = std::to_chars(sci, sci + sizeof sci, v, std::chars_format::scientific);
  char digits[24];
  int k = 0;
  const char* p = sci;
  for (; p < res.ptr && *p != 'e'; ++p) {
    if (*p != '.') digits[k++] = *p;
  }
  int exp10 = 0;
  std::from_chars(p + (p[1] == '+' ? 2 : 1), res.ptr, exp10);
  const int n = exp10 + 1;  // v = 0.digits × 10^n
  if (k <= n && n <= 21) {
    out.append(digits, static_cast<size_t>(k));
    out.append(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out.append(digits, static_cast<size_t>(n));
    out += '.';
    out.append(digits + n, static_cast<size_t>(k - n));
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-n), '0');
    out.append(digits, static_cast<size_t>(k));
  } else {
    out += digits[0];
    if (k > 1) {
      out += '.';
      out.append(digits + 1, static_cast<size_t>(k - 1));
    }
    out += n - 1 >= 0 ? "e+" : "e-";
    char e[8];
    const auto er = std::to_chars(e, e + sizeof e, std::abs(n - 1));
    out.append(e, er.ptr);
  }
}

}  // namespace atw
