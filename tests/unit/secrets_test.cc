// What keeps secrets out of sight and connections as configured (docs/security.md): masking in
// everything printed, the NKey public key derived from a seed, and the parsers of the addresses
// that carry logins or choose where the worker listens.

#include <gtest/gtest.h>

#include "adapters/http/http_server.h"
#include "adapters/nats/nats_connection.h"
#include "common/redact.h"

namespace atw {
namespace {

TEST(Redact, PasswordsAndTokensInConnectionStringsAreMasked) {
  const std::pair<const char*, const char*> cases[] = {
      {"postgresql://worker:s3cret@db:5432/x", "postgresql://worker:***@db:5432/x"},
      {"nats://ops:s3cret@a:4222,nats://ops:s3cret@b:4222",
       "nats://ops:***@a:4222,nats://ops:***@b:4222"},
      {"tls://t0ken@nats:4222", "tls://***@nats:4222"},
      {"redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"},
      {"redis://asset-worker:s3cret@host/0", "redis://asset-worker:***@host/0"},
      {"host=db port=5432 password=s3cret user=w", "host=db port=5432 password=*** user=w"},
      {"postgresql://db/x?sslmode=verify-full&password=s3cret",
       "postgresql://db/x?sslmode=verify-full&password=***"},
      {"error: cannot reach nats://ops:s3cret@a:4222 (timeout)",
       "error: cannot reach nats://ops:***@a:4222 (timeout)"},
  };
  for (const auto& [in, out] : cases) {
    EXPECT_EQ(redact_secrets(in), out) << in;
    EXPECT_TRUE(may_hold_secret(in)) << in;
  }
}

TEST(Redact, TextWithoutSecretsStaysAsItIs) {
  for (const char* text :
       {"postgresql://postgres@127.0.0.1:5432/asset_telemetry", "nats://127.0.0.1:4222",
        "device dev-1 of org a:b sent 3 metrics", "user@example.com wrote", ""}) {
    EXPECT_EQ(redact_secrets(text), text) << text;
  }
}

TEST(NKey, ThePublicKeyIsDerivedFromTheSeedAsNatsDoes) {
  // The seed and public key the NATS client libraries test their NKey code with.
  const auto pub = nkey_public_key("SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU");
  ASSERT_TRUE(pub.ok()) << pub.status().to_string();
  EXPECT_EQ(*pub, "UCK5N7N66OBOINFXAYC2ACJQYFSOD4VYNU6APEJTAVFZB2SVHLKGEW7L");
}

TEST(NKey, WhatIsNotASeedIsRefusedWithoutEchoingIt) {
  for (const char* bad :
       {"", "UCK5N7N66OBOINFXAYC2ACJQYFSOD4VYNU6APEJTAVFZB2SVHLKGEW7L",
        "SUAMLK2ZNM35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU",
        "SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORR", "not a seed at all"}) {
    const auto pub = nkey_public_key(bad);
    ASSERT_FALSE(pub.ok()) << bad;
    EXPECT_EQ(pub.status().type(), "invalid_config");
    if (*bad != '\0') {
      EXPECT_EQ(pub.status().message().find(bad), std::string::npos);
    }
  }
}

TEST(NKey, ASeedMadeForARoleGivesAKeyOfThatRole) {
  std::array<uint8_t, 32> raw{};
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>(i * 7 + 1);
  for (const auto& [role, seed_prefix, key_prefix] :
       {std::tuple{NKeyRole::kUser, "SU", 'U'}, std::tuple{NKeyRole::kAccount, "SA", 'A'},
        std::tuple{NKeyRole::kOperator, "SO", 'O'}}) {
    const std::string seed = nkey_seed(role, raw);
    EXPECT_EQ(seed.substr(0, 2), seed_prefix);
    const auto pub = nkey_public_key(seed);
    ASSERT_TRUE(pub.ok()) << seed;
    EXPECT_EQ(pub->front(), key_prefix);
    EXPECT_EQ(pub->size(), 56u);
  }
}

TEST(HttpAddress, HostAndPortOrEveryAddress) {
  auto a = parse_http_address("127.0.0.1:8080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8080);
  a = parse_http_address(":9090");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "");
  EXPECT_EQ(a->port, 9090);
  a = parse_http_address("[::1]:8080");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "::1");
  for (const char* bad : {"127.0.0.1", "127.0.0.1:abc", "127.0.0.1:70000", "[::1:8080", ""}) {
    EXPECT_FALSE(parse_http_address(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace atw
