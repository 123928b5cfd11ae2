#include "domain/uuid.h"

#include <algorithm>
#include <cstring>

namespace atw {
namespace {

// SHA-1 (FIPS 180-1), incremental so that uuid_v5 can hash namespace + name without first
// concatenating them.
class Sha1 {
 public:
  void update(const uint8_t* data, size_t len) {
    total_ += len;
    if (used_ > 0) {
      const size_t take = std::min(len, sizeof block_ - used_);
      std::memcpy(block_ + used_, data, take);
      used_ += take;
      data += take;
      len -= take;
      if (used_ < sizeof block_) return;
      compress(block_);
      used_ = 0;
    }
    for (; len >= sizeof block_; data += sizeof block_, len -= sizeof block_) compress(data);
    std::memcpy(block_, data, len);
    used_ = len;
  }

  std::array<uint8_t, 20> finish() {
    const uint64_t bits = total_ * 8;
    static constexpr uint8_t kPad[64] = {0x80};
    // Pad with 0x80 then zeros up to 56 mod 64, leaving room for the 64-bit length.
    const size_t pad = used_ < 56 ? 56 - used_ : 120 - used_;
    update(kPad, pad);
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
    update(len, 8);
    std::array<uint8_t, 20> out;
    for (int i = 0; i < 5; ++i) {
      for (int j = 0; j < 4; ++j) out[4 * i + j] = static_cast<uint8_t>(h_[i] >> (24 - 8 * j));
    }
    return out;
  }

 private:
  static uint32_t rotl(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

  void compress(const uint8_t* p) {
    uint32_t w[80];
    for (int t = 0; t < 16; ++t, p += 4) {
      w[t] = uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
    }
    for (int t = 16; t < 80; ++t) w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4];
    for (int t = 0; t < 80; ++t) {
      uint32_t f, k;
      if (t < 20) {
        f = (b & c) | (~b & d);
        k = 0x5A827999;
      } else if (t < 40) {
        f = b ^ c ^ d;
        k = 0x6ED9EBA1;
      } else if (t < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8F1BBCDC;
      } else {
        f = b ^ c ^ d;
        k = 0xCA62C1D6;
      }
      const uint32_t tmp = rotl(a, 5) + f + e + k + w[t];
      e = d;
      d = c;
      c = rotl(b, 30);
      b = a;
      a = tmp;
    }
    h_[0] += a;
    h_[1] += b;
    h_[2] += c;
    h_[3] += d;
    h_[4] += e;
  }

  uint32_t h_[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  uint8_t block_[64] = {};
  size_t used_ = 0;
  uint64_t total_ = 0;
};

const uint8_t* bytes(std::string_view s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

}  // namespace

std::array<uint8_t, 20> sha1(std::string_view data) {
  Sha1 h;
  h.update(bytes(data), data.size());
  return h.finish();
}

std::string uuid_v5(const std::array<uint8_t, 16>& ns, std::string_view name) {
  Sha1 h;
  h.update(ns.data(), ns.size());
  h.update(bytes(name), name.size());
  const std::array<uint8_t, 20> d = h.finish();
  uint8_t u[16];
  std::memcpy(u, d.data(), 16);
  u[6] = static_cast<uint8_t>((u[6] & 0x0F) | 0x50);  // version 5
  u[8] = static_cast<uint8_t>((u[8] & 0x3F) | 0x80);  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[u[i] >> 4];
    out += kHex[u[i] & 0xF];
  }
  return out;
}

}  // namespace atw
