#include "domain/timestamp.h"

namespace atw {
namespace {

constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kSecondsPerDay = 86'400;
constexpr int64_t kMicrosPerDay = kSecondsPerDay * kMicrosPerSecond;

// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's algorithm): exact
// for every year, and independent of the process's time zone and locale, unlike timegm/mktime.
constexpr int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;                                    // [0, 399]
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // [0, 365]
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            // [0, 146096]
  return era * 146097 + doe - 719468;
}

struct Civil {
  int64_t year;
  int month;
  int day;
};

constexpr Civil civil_from_days(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;                                       // [0, 146096]
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const int64_t mp = (5 * doy + 2) / 153;                                     // [0, 11]
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return Civil{yoe + era * 400 + (month <= 2 ? 1 : 0), month, day};
}

static_assert(days_from_civil(1970, 1, 1) == 0);
static_assert(days_from_civil(2000, 3, 1) == 11017);
static_assert(civil_from_days(-1).year == 1969 && civil_from_days(-1).day == 31);

constexpr bool is_leap(int64_t y) {
  return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

constexpr int days_in_month(int64_t y, int m) {
  constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Reads exactly `n` digits at `pos`; false if any is not a digit or the text is too short.
bool read_digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!is_digit(s[i])) return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

struct Split {
  int64_t days;
  int64_t micros_of_day;  // [0, kMicrosPerDay)
};

// Floor division, so that instants before 1970 land on the previous day with a positive time.
Split split(Timestamp t) {
  int64_t days = t.micros / kMicrosPerDay;
  int64_t rem = t.micros % kMicrosPerDay;
  if (rem < 0) {
    rem += kMicrosPerDay;
    --days;
  }
  return Split{days, rem};
}

void put(std::string& out, int64_t v, int width) {
  char buf[20];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0 || n < width);
  while (n > 0) out.push_back(buf[--n]);
}

// Date and time up to whole seconds. Years outside 0000..9999 get a sign and six digits, as
// JavaScript's toISOString writes them; RFC 3339 itself has no form for them.
std::string format_seconds(const Split& s) {
  const Civil c = civil_from_days(s.days);
  const int64_t secs = s.micros_of_day / kMicrosPerSecond;
  std::string out;
  out.reserve(32);
  if (c.year >= 0 && c.year <= 9999) {
    put(out, c.year, 4);
  } else {
    out.push_back(c.year < 0 ? '-' : '+');
    put(out, c.year < 0 ? -c.year : c.year, 6);
  }
  out.push_back('-');
  put(out, c.month, 2);
  out.push_back('-');
  put(out, c.day, 2);
  out.push_back('T');
  put(out, secs / 3600, 2);
  out.push_back(':');
  put(out, secs / 60 % 60, 2);
  out.push_back(':');
  put(out, secs % 60, 2);
  return out;
}

}  // namespace

std::optional<Timestamp> parse_rfc3339(std::string_view s) {
  // date-time = YYYY-MM-DD "T" HH:MM:SS [.frac] ("Z" / ("+" / "-") HH:MM); RFC 3339 section 5.6
  // also lets a space stand for the "T".
  int year, month, day, hour, minute, second;
  if (!read_digits(s, 0, 4, year) || s.size() < 20 || s[4] != '-' || !read_digits(s, 5, 2, month) ||
      s[7] != '-' || !read_digits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !read_digits(s, 11, 2, hour) || s[13] != ':' || !read_digits(s, 14, 2, minute) ||
      s[16] != ':' || !read_digits(s, 17, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
      minute > 59 || second > 59) {
    return std::nullopt;
  }

  size_t pos = 19;
  int64_t fraction = 0;
  if (s[pos] == '.') {
    ++pos;
    const size_t start = pos;
    int64_t scale = kMicrosPerSecond;
    for (; pos < s.size() && is_digit(s[pos]); ++pos) {
      if (scale > 1) {
        scale /= 10;
        fraction += (s[pos] - '0') * scale;
      }
    }
    if (pos == start) return std::nullopt;
  }

  if (pos >= s.size()) return std::nullopt;
  int64_t offset_seconds = 0;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int off_hour, off_minute;
    if (!read_digits(s, pos + 1, 2, off_hour) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !read_digits(s, pos + 4, 2, off_minute) || off_hour > 23 || off_minute > 59) {
      return std::nullopt;
    }
    offset_seconds = (off_hour * 3600 + off_minute * 60) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;

  // Local time minus its offset is UTC.
  const int64_t seconds = days_from_civil(year, month, day) * kSecondsPerDay + hour * 3600 +
                          minute * 60 + second - offset_seconds;
  return Timestamp{seconds * kMicrosPerSecond + fraction};
}

std::string format_rfc3339(Timestamp t) {
  const Split s = split(t);
  std::string out = format_seconds(s);
  int64_t fraction = s.micros_of_day % kMicrosPerSecond;
  if (fraction != 0) {
    int width = 6;
    while (fraction % 10 == 0) {
      fraction /= 10;
      --width;
    }
    out.push_back('.');
    put(out, fraction, width);
  }
  out.push_back('Z');
  return out;
}

std::string format_iso_millis(Timestamp t) {
  const Split s = split(t);
  std::string out = format_seconds(s);
  out.push_back('.');
  put(out, s.micros_of_day % kMicrosPerSecond / 1000, 3);
  out.push_back('Z');
  return out;
}

}  // namespace atw
