// SPDX-License-Identifier: Apache-2.0
// Whether a key object on a token is a given key, asked without reading any secret: by
// the public half the object shows (an RSA modulus, an EC point), else by a signature the
// token makes with it that the expected public key verifies. Restore proves each key it
// unwrapped on the token this way (the host never saw the clear key), its planning asks
// it of a key already on the token, and the write check of every private key it writes.
#pragma once

#include <openssl/evp.h>

#include <optional>

#include "pkcs11/session.hpp"

namespace p11vault {

// Whether the key object `handle` shows `expected` as its public half: RSA by its
// modulus (an RSA-PSS `expected` too), other types by the public key its attributes
// give. nullopt when it shows none (a private EC key rarely holds CKA_EC_POINT).
std::optional<bool> shows_public_key(pkcs11::Session& session, CK_OBJECT_HANDLE handle, const EVP_PKEY* expected);

// The mechanism proves_by_signature signs with for a key type (CKM_ECDSA, CKM_DSA,
// CKM_EDDSA, CKM_SHA256_RSA_PKCS), for asking first whether the token offers it.
CK_MECHANISM_TYPE proof_signature_mechanism(CK_KEY_TYPE key_type, const EVP_PKEY* expected);

// Signs a fixed message with the private key `handle` (which needs CKA_SIGN) and
// verifies the signature on the host with `expected`: true when it verifies. A PKCS#11
// failure throws (Pkcs11Error names the call), so a token that cannot sign is never
// mistaken for a different key.
bool proves_by_signature(pkcs11::Session& session, CK_OBJECT_HANDLE handle, CK_KEY_TYPE key_type,
                         const EVP_PKEY* expected);

}  // namespace p11vault
