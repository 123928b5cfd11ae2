#pragma once
// What a NATS deployment's security needs that no Debian package makes: NKeys, and the JWTs of
// operator mode (an operator signs accounts, an account signs its users), minted here with
// nats.c's own signing (nats_Sign) and the worker's NKey encoding, so that the tests run a real
// nats-server in operator mode without `nsc`.

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "adapters/nats/nats_connection.h"

namespace atw::testing {

struct NKeyPair {
  std::string seed;               // "SO...", "SA...", "SU..."
  std::string public_key;         // "O...", "A...", "U..."
  std::array<uint8_t, 32> raw{};  // the ed25519 seed itself, for signing
};
NKeyPair make_nkey(NKeyRole role);

// The JWTs of operator mode (version 2 claims): self-signed operator; an account with
// JetStream enabled and `revocations` (user public key -> revoked-before time, seconds); a user
// allowed to publish and subscribe to the given subjects.
std::string operator_jwt(const NKeyPair& op);
std::string account_jwt(const NKeyPair& op, const NKeyPair& account,
                        const std::map<std::string, int64_t>& revocations = {});
// The system account nats-server needs in operator mode (no JetStream of its own).
std::string system_account_jwt(const NKeyPair& op, const NKeyPair& account);
std::string user_jwt(const NKeyPair& account, const NKeyPair& user,
                     const std::vector<std::string>& publish,
                     const std::vector<std::string>& subscribe);
// A credentials file's text: the user's JWT and seed, as nsc writes it.
std::string creds_file(const std::string& jwt, const std::string& user_seed);

// The quoted subjects of one permission list of deploy/nats/asset-worker-permissions.conf:
// `block` ("ASSET_WORKER", ...), `direction` ("publish" or "subscribe").
std::vector<std::string> shipped_permissions(const std::string& block,
                                             const std::string& direction);

}  // namespace atw::testing
