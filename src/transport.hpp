// SPDX-License-Identifier: Apache-2.0
// The host side of moving key bytes in and out of a token: ephemeral session keys, the
// RFC 5649 key wrap (CKM_AES_KEY_WRAP_PAD) on the host, and the first-block check that
// proves a token wrapped PKCS#8 without decrypting the key.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "p11vault/secret.hpp"
#include "pkcs11/session.hpp"

namespace p11vault::transport {

using Bytes = std::vector<std::uint8_t>;

enum class KeyUse { wrap, unwrap };

// A session (CKA_TOKEN=FALSE) secret key holding `value`, sensitive and non-extractable,
// allowed only to wrap or only to unwrap. Destroyed when the ScopedObject goes.
pkcs11::ScopedObject import_session_key(pkcs11::Session& session, CK_KEY_TYPE key_type, const SecretBytes& value,
                                        KeyUse use);

// The AES session key PBKDF2-HMAC-`prf_digest`(password, salt, iterations) of
// `key_length` bytes, computed by the token itself (C_GenerateKey with CKM_PKCS5_PBKD2):
// the same key import_session_key would import, for tokens that refuse a clear secret
// key in C_CreateObject (NSS softoken in FIPS mode answers CKR_ATTRIBUTE_VALUE_INVALID).
// `password` is the UTF-8 password, as PBES2 uses it. Same attributes as
// import_session_key; destroyed when the ScopedObject goes. `password_length_by_pointer`:
// the token reads v2.20's CK_PKCS5_PBKD2_PARAMS (TokenQuirks).
pkcs11::ScopedObject derive_session_key(pkcs11::Session& session, const SecretBytes& password,
                                        const std::vector<std::uint8_t>& salt, std::uint64_t iterations,
                                        const std::string& prf_digest, std::size_t key_length, KeyUse use,
                                        bool password_length_by_pointer);

// True when CKM_PKCS5_PBKD2 has a PRF for PBKDF2-HMAC-`prf_digest` (SHA-1 and SHA-2 but
// for SHA-512/224 and SHA-512/256): derive_session_key can be asked for it.
bool token_can_derive_with(const std::string& prf_digest);

// True for the answers with which a token refuses to take a clear secret key as such (its
// policy, not this key): then deriving the key inside the token is worth a try.
bool means_clear_key_refused(CK_RV rv);

// The mechanisms that carry a key between the host and the token under an ephemeral AES
// key (restore's host-decrypt path, backup's host-reencrypt path), in the order to try
// them. CKM_AES_CBC_PAD first: its format is the same on every token, while NSS's
// CKM_AES_KEY_WRAP_PAD is RFC 3394 with PKCS#7 padding, not RFC 5649. SoftHSM offers
// CBC_PAD but refuses it for private keys (CKR_MECHANISM_INVALID): then RFC 5649.
inline constexpr CK_MECHANISM_TYPE kCarrierMechanisms[] = {CKM_AES_CBC_PAD, CKM_AES_KEY_WRAP_PAD};

// One of kCarrierMechanisms as C_WrapKey or C_UnwrapKey takes it (CBC_PAD with a fresh
// random IV).
pkcs11::Mechanism carrier_mechanism(CK_MECHANISM_TYPE type);
// The host's half of a transfer into the token: what C_UnwrapKey under `mechanism` and
// `key` decrypts to `plain`.
Bytes carrier_encrypt(const pkcs11::Mechanism& mechanism, const SecretBytes& key, const SecretBytes& plain);
// The host's half of a transfer out of the token: what C_WrapKey under `mechanism` and
// `key` gave, decrypted. Error(failure) when it does not decrypt.
SecretBytes carrier_decrypt(const pkcs11::Mechanism& mechanism, const SecretBytes& key, const Bytes& wrapped);

// RFC 5649 AES key wrap with padding, as CKM_AES_KEY_WRAP_PAD computes it.
Bytes aes_wrap_pad(const SecretBytes& key, const SecretBytes& plain);
SecretBytes aes_unwrap_pad(const SecretBytes& key, const Bytes& wrapped);

// True when the first cipher block of `encrypted` (CBC under key/iv) starts like a DER
// PrivateKeyInfo: SEQUENCE, INTEGER version 0 or 1, SEQUENCE (AlgorithmIdentifier).
// Only that block is decrypted, and it is wiped.
bool first_block_is_private_key_info(const std::string& cipher_cbc, const SecretBytes& key, const Bytes& iv,
                                     const Bytes& encrypted);

// True for the answers that mean "this token cannot do this path for this key" (the
// caller then tries the next path), as opposed to failures that must stop the run.
bool means_path_unavailable(CK_RV rv);

}  // namespace p11vault::transport
