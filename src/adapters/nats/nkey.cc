// NKeys (NATS's ed25519 keys) as text: base32 of a prefix byte (its role), the key, and a CRC16.
// nats.c signs with a seed but wants the public key given beside it (natsOptions_SetNKeyFromSeed);
// the worker derives it, so that an operator mounts the seed file alone.

#include <fmt/format.h>
#include <openssl/evp.h>

#include <memory>

#include "adapters/nats/nats_connection.h"

namespace atw {

namespace {

constexpr char kBase32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr uint8_t kPrefixSeed = 18 << 3;  // 'S'

Status not_a_seed(std::string_view why) {
  return Status::permanent("invalid_config",
                           fmt::format("NATS_NKEY_SEED_FILE: not an NKey seed: {}", why));
}

// CRC-16/XMODEM, as NKeys append it (little-endian).
uint16_t crc16(const uint8_t* data, size_t n) {
  uint16_t crc = 0;
  for (size_t i = 0; i < n; ++i) {
    crc ^= static_cast<uint16_t>(data[i] << 8);
    for (int b = 0; b < 8; ++b) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

std::string base32_encode(const std::vector<uint8_t>& in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t byte : in) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push_back(kBase32[(acc >> bits) & 31]);
    }
  }
  if (bits > 0) out.push_back(kBase32[(acc << (5 - bits)) & 31]);
  return out;
}

bool base32_decode(std::string_view in, std::vector<uint8_t>& out) {
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    if (c >= '2' && c <= '7') v = c - '2' + 26;
    if (v < 0) return false;
    acc = (acc << 5) | static_cast<uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 0xFF));
    }
  }
  return true;
}

// Appends the key's CRC16 and encodes it.
std::string encode_with_crc(std::vector<uint8_t> raw) {
  const uint16_t crc = crc16(raw.data(), raw.size());
  raw.push_back(static_cast<uint8_t>(crc & 0xFF));
  raw.push_back(static_cast<uint8_t>(crc >> 8));
  return base32_encode(raw);
}

}  // namespace

Result<std::string> nkey_public_key(std::string_view seed) {
  std::vector<uint8_t> raw;
  if (!base32_decode(seed, raw) || raw.size() != 36) return not_a_seed("its length or letters");
  const uint16_t crc = crc16(raw.data(), 34);
  if (raw[34] != (crc & 0xFF) || raw[35] != (crc >> 8)) return not_a_seed("its checksum");
  if ((raw[0] & 0xF8) != kPrefixSeed) return not_a_seed("it does not start with S");
  const uint8_t role = static_cast<uint8_t>(((raw[0] & 7) << 5) | ((raw[1] & 0xF8) >> 3));
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, raw.data() + 2, 32), &EVP_PKEY_free);
  uint8_t pub[32];
  size_t pub_len = sizeof pub;
  if (!key || EVP_PKEY_get_raw_public_key(key.get(), pub, &pub_len) != 1 || pub_len != 32) {
    return not_a_seed("its key");
  }
  std::vector<uint8_t> encoded{role};
  encoded.insert(encoded.end(), pub, pub + 32);
  return encode_with_crc(std::move(encoded));
}

std::string nkey_seed(NKeyRole role, const std::array<uint8_t, 32>& raw) {
  const auto prefix = static_cast<uint8_t>(role);
  std::vector<uint8_t> encoded{static_cast<uint8_t>(kPrefixSeed | (prefix >> 5)),
                               static_cast<uint8_t>((prefix & 31) << 3)};
  encoded.insert(encoded.end(), raw.begin(), raw.end());
  return encode_with_crc(std::move(encoded));
}

}  // namespace atw
