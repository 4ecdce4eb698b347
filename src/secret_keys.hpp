// SPDX-License-Identifier: Apache-2.0
// Secret keys (AES, HMAC, DES3) between PKCS#11 and PKCS#12 as Java writes them: a
// secretBag holding an encrypted PrivateKeyInfo whose algorithm is the key's own OID
// (AES 2.16.840.1.101.3.4.1, HmacSHA256 1.2.840.113549.2.9, DESede 1.3.14.3.2.17) and
// whose privateKey is the key's bytes. Nothing here talks to a token.
#pragma once

#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#include <optional>
#include <string>
#include <vector>

#include "p11vault/secret.hpp"
#include "pkcs11/session.hpp"

namespace p11vault::secret_keys {

struct SecretKeyType {
    CK_KEY_TYPE key_type = CKK_GENERIC_SECRET;
    std::string name;  // "AES-256", "DES3", "GENERIC-SECRET-256 (HmacSHA256)"
};

// The key inside a secret bag's PrivateKeyInfo.
struct DecodedSecret {
    std::string algorithm_oid;  // "2.16.840.1.101.3.4.1"
    std::optional<SecretKeyType> type;  // nullopt: p11vault does not know this algorithm
    std::optional<std::string> unsupported;  // why it cannot go on a token (unknown OID, bad length)
    SecretBytes value;
};
DecodedSecret decode(const PKCS8_PRIV_KEY_INFO* info);

// The type of a token secret key, named as decode() names it (generic secrets and the
// PKCS#11 HMAC key types as HMAC keys); nullopt for types p11vault cannot back up.
std::optional<SecretKeyType> token_type(CK_KEY_TYPE key_type, std::size_t value_length);

// DER PrivateKeyInfo { 0, { OID of `key_type`, NULL }, value } as Java reads it
// (generic secrets and HMAC keys as HmacSHA256, or the HMAC of their PKCS#11 type).
SecretBytes private_key_info_der(CK_KEY_TYPE key_type, const SecretBytes& value);

// Why the token cannot hold and use a key of this type (nullopt: it can), from its
// mechanism list.
std::optional<std::string> unsupported_on_token(const SecretKeyType& type,
                                                const pkcs11::MechanismList& mechanisms);

// The usage attributes a restored secret key gets: encrypt/decrypt for AES and DES3,
// sign/verify for HMAC keys.
void add_usage(CK_KEY_TYPE key_type, pkcs11::AttributeTemplate& out);

}  // namespace p11vault::secret_keys
