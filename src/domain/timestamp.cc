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

// Reads exactly `n` digits at `pos` (at most 9 for an int, 18 for an int64_t); false if any is
// not a digit or the text is too short.
template <typename Int>
bool read_digits(std::string_view s, size_t pos, size_t n, Int& out) {
  if (pos + n > s.size()) return false;
  Int v = 0;
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

// Reads the digits at `pos` (one or more) as a fraction of a second: digits past microseconds
// are truncated. Advances `pos`.
bool read_fraction(std::string_view s, size_t& pos, int64_t& micros) {
  const size_t start = pos;
  int64_t scale = kMicrosPerSecond;
  micros = 0;
  for (; pos < s.size() && is_digit(s[pos]); ++pos) {
    if (scale > 1) {
      scale /= 10;
      micros += (s[pos] - '0') * scale;
    }
  }
  return pos > start;
}

// The instant, saturated just inside the infinities: PostgreSQL holds instants up to 294276 AD,
// about 30 years more than microseconds since 1970 fit in 64 bits. Past that, every comparison
// with a measurement's time still comes out the same.
Timestamp saturated(int64_t seconds, int64_t micros) {
  int64_t total = 0;
  if (__builtin_mul_overflow(seconds, kMicrosPerSecond, &total) ||
      __builtin_add_overflow(total, micros, &total)) {
    return Timestamp{seconds < 0 ? kInfinitePast.micros + 1 : kInfiniteFuture.micros - 1};
  }
  if (total == kInfinitePast.micros) ++total;
  if (total == kInfiniteFuture.micros) --total;
  return Timestamp{total};
}

struct CivilTime {
  int64_t year = 0;
  int month = 1, day = 1, hour = 0, minute = 0, second = 0;
  int64_t fraction = 0;        // microseconds
  int64_t offset_seconds = 0;  // local time minus UTC

  bool valid() const {
    return month >= 1 && month <= 12 && day >= 1 && day <= days_in_month(year, month) &&
           hour <= 23 && minute <= 59 && second <= 59;
  }
  Timestamp instant() const {
    const int64_t seconds = days_from_civil(year, month, day) * kSecondsPerDay +
                            int64_t{hour} * 3600 + int64_t{minute} * 60 + second - offset_seconds;
    return saturated(seconds, fraction);
  }
};

// "-MM-DD" then a date-time separator (one of `separators`) and "HH:MM:SS[.frac]", from `pos`
// (just after the year). Advances `pos` past what it read.
bool read_date_and_time(std::string_view s, size_t& pos, std::string_view separators,
                        CivilTime& t) {
  if (pos + 15 > s.size() || s[pos] != '-' || !read_digits(s, pos + 1, 2, t.month) ||
      s[pos + 3] != '-' || !read_digits(s, pos + 4, 2, t.day) ||
      separators.find(s[pos + 6]) == std::string_view::npos ||
      !read_digits(s, pos + 7, 2, t.hour) || s[pos + 9] != ':' ||
      !read_digits(s, pos + 10, 2, t.minute) || s[pos + 12] != ':' ||
      !read_digits(s, pos + 13, 2, t.second)) {
    return false;
  }
  pos += 15;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    if (!read_fraction(s, pos, t.fraction)) return false;
  }
  return true;
}

// RFC 3339's zone: "Z" or "+HH:MM" / "-HH:MM", ending the text.
bool read_rfc3339_zone(std::string_view s, size_t pos, CivilTime& t) {
  if (pos >= s.size()) return false;
  if (s[pos] == 'Z' || s[pos] == 'z') return pos + 1 == s.size();
  if (s[pos] != '+' && s[pos] != '-') return false;
  int off_hour, off_minute;
  if (pos + 6 != s.size() || !read_digits(s, pos + 1, 2, off_hour) || s[pos + 3] != ':' ||
      !read_digits(s, pos + 4, 2, off_minute) || off_hour > 23 || off_minute > 59) {
    return false;
  }
  t.offset_seconds =
      (int64_t{off_hour} * 3600 + int64_t{off_minute} * 60) * (s[pos] == '-' ? -1 : 1);
  return true;
}

// RFC 3339 after the year at `pos`.
std::optional<Timestamp> rfc3339_after_year(std::string_view s, size_t pos, int64_t year) {
  CivilTime t;
  t.year = year;
  // RFC 3339 section 5.6 lets a space stand for the "T".
  if (!read_date_and_time(s, pos, "Tt ", t) || !read_rfc3339_zone(s, pos, t) || !t.valid()) {
    return std::nullopt;
  }
  return t.instant();
}

}  // namespace

std::optional<Timestamp> parse_rfc3339(std::string_view s) {
  // date-time = YYYY-MM-DD "T" HH:MM:SS [.frac] ("Z" / ("+" / "-") HH:MM)
  int year;
  if (!read_digits(s, 0, 4, year)) return std::nullopt;
  return rfc3339_after_year(s, 4, year);
}

std::optional<Timestamp> parse_instant(std::string_view s) {
  if (s == "infinity") return kInfiniteFuture;
  if (s == "-infinity") return kInfinitePast;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    int64_t year;
    if (!read_digits(s, 1, 6, year)) return std::nullopt;
    return rfc3339_after_year(s, 7, s[0] == '-' ? -year : year);
  }
  return parse_rfc3339(s);
}

std::string format_instant(Timestamp t) {
  if (t == kInfiniteFuture) return "infinity";
  if (t == kInfinitePast) return "-infinity";
  return format_rfc3339(t);
}

std::optional<Timestamp> parse_pg_timestamp(std::string_view s) {
  if (s == "infinity") return kInfiniteFuture;
  if (s == "-infinity") return kInfinitePast;
  CivilTime t;
  // The year: four digits or more.
  size_t pos = 0;
  while (pos < s.size() && is_digit(s[pos])) ++pos;
  if (pos < 4 || pos > 9 || !read_digits(s, 0, pos, t.year)) return std::nullopt;
  bool bc = false;
  if (s.size() == pos + 6 || (s.size() == pos + 9 && s.substr(pos + 6) == " BC")) {
    // A date alone.
    if (s[pos] != '-' || !read_digits(s, pos + 1, 2, t.month) || s[pos + 3] != '-' ||
        !read_digits(s, pos + 4, 2, t.day)) {
      return std::nullopt;
    }
    bc = s.size() == pos + 9;
  } else {
    if (!read_date_and_time(s, pos, " T", t)) return std::nullopt;
    // The zone, when the column has one: +HH, +HH:MM or +HH:MM:SS.
    if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
      const int sign = s[pos] == '-' ? -1 : 1;
      int h = 0, m = 0, sec = 0;
      if (!read_digits(s, pos + 1, 2, h)) return std::nullopt;
      pos += 3;
      if (pos < s.size() && s[pos] == ':') {
        if (!read_digits(s, pos + 1, 2, m)) return std::nullopt;
        pos += 3;
        if (pos < s.size() && s[pos] == ':') {
          if (!read_digits(s, pos + 1, 2, sec)) return std::nullopt;
          pos += 3;
        }
      }
      if (m > 59 || sec > 59) return std::nullopt;
      t.offset_seconds = sign * (int64_t{h} * 3600 + int64_t{m} * 60 + sec);
    }
    if (s.substr(pos) == " BC") {
      bc = true;
    } else if (pos != s.size()) {
      return std::nullopt;
    }
  }
  // 1 BC is the year 0 of the proleptic calendar, 2 BC the year -1.
  if (bc) {
    if (t.year == 0) return std::nullopt;
    t.year = 1 - t.year;
  }
  if (!t.valid()) return std::nullopt;
  return t.instant();
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
