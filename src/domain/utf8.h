#pragma once
// UTF-8 as Unicode defines it well-formed (§3.9): no overlong forms, no surrogates, nothing
// above U+10FFFF.

#include <cstddef>
#include <string_view>

namespace atw {

// Length of the well-formed UTF-8 sequence that starts at s[i] (a non-ASCII lead byte), or, when
// it is ill-formed, the negated length of its maximal subpart (U+FFFD substitution of maximal
// subparts), so that each broken sequence can become exactly one U+FFFD.
int utf8_sequence_length(std::string_view s, size_t i);

// True when `s` is well-formed UTF-8.
bool is_valid_utf8(std::string_view s);

}  // namespace atw
