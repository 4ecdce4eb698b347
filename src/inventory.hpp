// SPDX-License-Identifier: Apache-2.0
// What a token holds: every key and certificate with the attributes `list`, `backup`
// and `verify` need, and which certificate and public key pair with which private key.
#pragma once

#include <p11-kit/pkcs11.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pkcs11/session.hpp"
#include "src/keys.hpp"
#include "src/ossl.hpp"

namespace p11vault {

struct TokenObject {
    CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
    CK_OBJECT_CLASS object_class = CKO_DATA;
    std::optional<CK_KEY_TYPE> key_type;          // keys only
    std::vector<std::uint8_t> id;                 // CKA_ID (may be empty)
    std::string label;                            // CKA_LABEL (may be empty)
    // Flags as the token reports them; absent when the token does not say.
    std::optional<bool> sensitive, extractable, never_extractable, always_sensitive;
    std::optional<bool> is_private, wrap_with_trusted;
    std::optional<keys::KeyDescription> description;   // keys, and certificates' public keys
    ossl::Pkey public_key;                        // when derivable from the token's attributes
    ossl::Cert certificate;                       // certificates (X.509) only
    std::vector<std::uint8_t> spki_sha256;        // when public_key is known
    // public_key comes from the object's own attributes (an RSA modulus, a CKA_EC_POINT),
    // not from a same-id public key object or certificate (EC private keys rarely carry
    // their point): only then does it tell two keys of one CKA_ID apart.
    bool own_public_key = false;
    // Pairing, as indexes into Inventory::objects.
    std::optional<std::size_t> paired_certificate;   // private/public key -> its certificate
    std::optional<std::size_t> paired_public_key;    // private key -> its public key object
    std::optional<std::size_t> paired_private_key;   // certificate/public key -> private key
};

struct Inventory {
    std::vector<TokenObject> objects;  // private keys, public keys, secret keys, certificates
    std::vector<std::size_t> indexes_of(CK_OBJECT_CLASS object_class) const;
};

// Reads every private key, public key, secret key and certificate of the session's
// token (after login, so private objects are visible) with batched, defensive attribute
// reads, and pairs them: a certificate or public key pairs with a private key of the same
// CKA_ID, else with the same public key. Never reads a private component.
//
// Public key objects' components (CKA_MODULUS, CKA_EC_POINT, ...) are read in full for
// `list`. `when_needed` (backup, verify) reads them only for a public key object whose
// CKA_ID matches no private key that has its own public key; the others pair by id alone
// and have no public_key. It also reads an RSA private key's CKA_PUBLIC_EXPONENT only when
// no certificate of its CKA_ID has the same modulus. This matters on tokens where reading
// these is not free: NSS softoken checks an integrity MAC on every read of CKA_MODULUS or
// CKA_PUBLIC_EXPONENT, ~2 ms each.
enum class PublicKeyObjects { in_full, when_needed };
Inventory read_inventory(pkcs11::Session& session, PublicKeyObjects public_key_objects = PublicKeyObjects::in_full);
// The same, with the objects' reads spread over the sessions of `pool` (--jobs).
class SessionPool;
Inventory read_inventory(SessionPool& pool, PublicKeyObjects public_key_objects);

}  // namespace p11vault
