#include "domain/uuid.h"

#include <gtest/gtest.h>

#include <string>

namespace atw {
namespace {

std::string hex(const std::array<uint8_t, 20>& d) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d) {
    s += kHex[b >> 4];
    s += kHex[b & 0xF];
  }
  return s;
}

constexpr std::array<uint8_t, 16> kDnsNamespace = {0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
                                                   0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
constexpr std::array<uint8_t, 16> kUrlNamespace = {0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1,
                                                   0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};

TEST(Sha1, FipsVectors) {
  EXPECT_EQ(hex(sha1("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(hex(sha1("")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(hex(sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(hex(sha1(std::string(1'000'000, 'a'))), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  EXPECT_EQ(hex(sha1("The quick brown fox jumps over the lazy dog")),
            "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
}

TEST(Sha1, LengthsAroundBlockAndPaddingBoundaries) {
  // Expected values from Python's hashlib over bytes (i * 7) % 256.
  struct Case {
    size_t n;
    const char* digest;
  };
  const Case cases[] = {
      {55, "aecd1643c9903b9bae8cb94f53c50f8a4e18605b"},
      {56, "f5d65c621c02cc8e785159feff8088e3072da1bc"},
      {63, "4952f0fe097e4d6410ae9eab4855aa836caf3bff"},
      {64, "1e17ae1fc093e5daca033553c97a5192ca164486"},
      {65, "ac44f5dbe3e9b5d2733fc9537fcad715c3c20bc3"},
      {119, "b4a4e69060d0b1e7e8ebbf7041a4211c63438b57"},
      {120, "b651390c2996406336a3f6647e4b590c18cdd6f8"},
      {128, "516846cd40bd1fe431119c3b0a0f362957992ee8"},
  };
  for (const auto& c : cases) {
    std::string data;
    for (size_t i = 0; i < c.n; ++i) data += static_cast<char>((i * 7) % 256);
    EXPECT_EQ(hex(sha1(data)), c.digest) << c.n;
  }
}

TEST(UuidV5, Rfc4122KnownValues) {
  // Python: uuid.uuid5(uuid.NAMESPACE_DNS, "python.org").
  EXPECT_EQ(uuid_v5(kDnsNamespace, "python.org"), "886313e1-3b8a-5372-9b90-0c9aee199e5d");
  EXPECT_EQ(uuid_v5(kUrlNamespace, "https://example.com/\xC3\xA9"),
            "20ecd233-a9e7-5067-a96f-fd6600ca3fda");
}

TEST(UuidV5, CanonicalShapeVersionAndVariant) {
  const std::string u = uuid_v5(kDnsNamespace, "anything");
  ASSERT_EQ(u.size(), 36u);
  for (size_t i : {8u, 13u, 18u, 23u}) EXPECT_EQ(u[i], '-');
  EXPECT_EQ(u[14], '5');
  EXPECT_NE(std::string("89ab").find(u[19]), std::string::npos);
  for (char c : u) EXPECT_TRUE(c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
}

TEST(UuidV5, NamespaceAndNameBothMatter) {
  EXPECT_EQ(uuid_v5(kDnsNamespace, "a"), uuid_v5(kDnsNamespace, "a"));
  EXPECT_NE(uuid_v5(kDnsNamespace, "a"), uuid_v5(kDnsNamespace, "b"));
  EXPECT_NE(uuid_v5(kDnsNamespace, "a"), uuid_v5(kUrlNamespace, "a"));
}

}  // namespace
}  // namespace atw
