#include "support/nats_auth.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nats/nats.h>
#include <openssl/evp.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "domain/base64.h"
#include "support/servers.h"

#ifndef ATW_SOURCE_DIR
#error "ATW_SOURCE_DIR must name the source tree (for deploy/)"
#endif

namespace atw::testing {

namespace {

std::string base64url(std::string_view bytes) {
  std::string s = base64_encode(bytes);
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}

int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// header.claims.signature, signed by `issuer` (ed25519; nats.c's nats_Sign takes user seeds
// only).
std::string sign(nlohmann::json claims, const NKeyPair& issuer) {
  std::random_device rd;
  claims["jti"] = fmt::format("{:08X}{:08X}{:08X}", rd(), rd(), rd());
  claims["iat"] = now_seconds();
  const std::string body =
      base64url(R"({"typ":"JWT","alg":"ed25519-nkey"})") + "." + base64url(claims.dump());
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, issuer.raw.data(), 32),
      &EVP_PKEY_free);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  unsigned char signature[64];
  size_t length = sizeof signature;
  const bool signed_ok =
      key && ctx && EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) == 1 &&
      EVP_DigestSign(ctx.get(), signature, &length,
                     reinterpret_cast<const unsigned char*>(body.data()), body.size()) == 1;
  EXPECT_TRUE(signed_ok) << "ed25519 signing failed";
  return body + "." +
         base64url(std::string(reinterpret_cast<const char*>(signature), signed_ok ? length : 0));
}

}  // namespace

NKeyPair make_nkey(NKeyRole role) {
  std::array<uint8_t, 32> raw{};
  std::random_device rd;
  for (auto& b : raw) b = static_cast<uint8_t>(rd());
  NKeyPair pair;
  pair.raw = raw;
  pair.seed = nkey_seed(role, raw);
  auto pub = nkey_public_key(pair.seed);
  EXPECT_TRUE(pub.ok()) << pub.status().to_string();
  pair.public_key = pub.ok() ? *pub : "";
  return pair;
}

std::string operator_jwt(const NKeyPair& op) {
  return sign({{"iss", op.public_key},
               {"sub", op.public_key},
               {"name", "test-operator"},
               {"nats", {{"type", "operator"}, {"version", 2}}}},
              op);
}

std::string account_jwt(const NKeyPair& op, const NKeyPair& account,
                        const std::map<std::string, int64_t>& revocations) {
  nlohmann::json nats = {{"limits",
                          {{"subs", -1},
                           {"data", -1},
                           {"payload", -1},
                           {"imports", -1},
                           {"exports", -1},
                           {"wildcards", true},
                           {"conn", -1},
                           {"leaf", -1},
                           {"mem_storage", -1},
                           {"disk_storage", -1},
                           {"streams", -1},
                           {"consumer", -1}}},
                         {"default_permissions",
                          {{"pub", nlohmann::json::object()}, {"sub", nlohmann::json::object()}}},
                         {"type", "account"},
                         {"version", 2}};
  if (!revocations.empty()) nats["revocations"] = revocations;
  return sign(
      {{"iss", op.public_key}, {"sub", account.public_key}, {"name", "TELEMETRY"}, {"nats", nats}},
      op);
}

std::string system_account_jwt(const NKeyPair& op, const NKeyPair& account) {
  const nlohmann::json nats = {
      {"limits", {{"subs", -1}, {"data", -1}, {"payload", -1}, {"conn", -1}, {"wildcards", true}}},
      {"type", "account"},
      {"version", 2}};
  return sign(
      {{"iss", op.public_key}, {"sub", account.public_key}, {"name", "SYS"}, {"nats", nats}}, op);
}

std::string user_jwt(const NKeyPair& account, const NKeyPair& user,
                     const std::vector<std::string>& publish,
                     const std::vector<std::string>& subscribe) {
  nlohmann::json nats = {{"pub", nlohmann::json::object()},
                         {"sub", nlohmann::json::object()},
                         {"subs", -1},
                         {"data", -1},
                         {"payload", -1},
                         {"type", "user"},
                         {"version", 2}};
  if (!publish.empty()) nats["pub"]["allow"] = publish;
  if (!subscribe.empty()) nats["sub"]["allow"] = subscribe;
  return sign({{"iss", account.public_key},
               {"sub", user.public_key},
               {"name", "asset-worker"},
               {"nats", nats}},
              account);
}

std::string creds_file(const std::string& jwt, const std::string& user_seed) {
  return fmt::format(
      "-----BEGIN NATS USER JWT-----\n{}\n------END NATS USER JWT------\n\n"
      "************************* IMPORTANT *************************\n"
      "NKEY Seed printed below can be used to sign and prove identity.\n"
      "NKEYs are sensitive and should be treated as secrets.\n\n"
      "-----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n\n"
      "*************************************************************\n",
      jwt, user_seed);
}

std::vector<std::string> shipped_permissions(const std::string& block,
                                             const std::string& direction) {
  const std::string text =
      read_file(std::string(ATW_SOURCE_DIR) + "/deploy/nats/asset-worker-permissions.conf");
  std::vector<std::string> out;
  size_t at = text.find("\n" + block + " = {");
  if (at == std::string::npos) {
    ADD_FAILURE() << "no block " << block << " in deploy/nats/asset-worker-permissions.conf";
    return out;
  }
  at = text.find(direction + ":", at);
  const size_t open = text.find('[', at);
  const size_t close = text.find(']', open);
  for (size_t q = text.find('"', open); q < close; q = text.find('"', q + 1)) {
    const size_t end = text.find('"', q + 1);
    out.push_back(text.substr(q + 1, end - q - 1));
    q = end;
  }
  return out;
}

}  // namespace atw::testing
