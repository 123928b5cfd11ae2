#pragma once
// Numbers as JavaScript prints them, so that an event's number reads the same to every consumer.

#include <string>

namespace atw {

// Appends Number.prototype.toString() of `v` (ECMA-262 Number::toString): the shortest digits
// that round-trip, in plain notation for exponents in [-7, 21) and as `1.5e+21` outside; "null"
// for NaN and the infinities (JSON has neither), "0" for -0.
void append_js_number(std::string& out, double v);

}  // namespace atw
