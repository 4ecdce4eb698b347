// SPDX-License-Identifier: Apache-2.0
// Conversion between OpenSSL keys and PKCS#11 key attributes, for RSA, DSA, EC (every
// curve OpenSSL knows, named or explicit: ec_curves.hpp) and EdDSA (Ed25519/Ed448). Nothing here talks to a token.
#pragma once

#include <p11-kit/pkcs11.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pkcs11/attributes.hpp"
#include "pkcs11/session.hpp"
#include "src/ossl.hpp"

namespace p11vault::keys {

using Bytes = std::vector<std::uint8_t>;

// What a key is, for messages, listings and records: "RSA-2048", "EC-P256", "Ed25519".
struct KeyDescription {
    CK_KEY_TYPE key_type = CKK_RSA;
    std::string algorithm;   // "RSA", "EC", "Ed25519", "Ed448", or an OID text for unknown ones
    unsigned bits = 0;       // modulus bits, or field size for EC/EdDSA
    std::string curve;       // "P-256", "brainpoolP256r1", "Ed25519" (CurveInfo::display), "" for RSA/DSA
    std::string name() const;  // "RSA-2048", "DSA-1024", "EC-P256", "EC-brainpoolP256r1", "Ed25519"
};

// Describes an OpenSSL key. Throws Error(bad_input) for key types p11vault cannot
// represent on a PKCS#11 token.
KeyDescription describe(const EVP_PKEY* key);

// Attributes to read from a token public or private key object to rebuild its public key.
const std::vector<CK_ATTRIBUTE_TYPE>& public_attribute_types();

// The public key of a token object from its public attributes (CKA_KEY_TYPE plus
// CKA_MODULUS/CKA_PUBLIC_EXPONENT, or CKA_EC_PARAMS/CKA_EC_POINT). Empty when the
// attributes are not there (e.g. a private EC key without CKA_EC_POINT).
ossl::Pkey public_key_from_attributes(const pkcs11::AttributeValues& values);

// CKA_KEY_TYPE and the public components of `key`, as a public key object needs them.
void add_public_attributes(const EVP_PKEY* key, pkcs11::AttributeTemplate& out);
// CKA_KEY_TYPE and every private component of `key` (as secrets), for C_CreateObject of
// a private key. RSA includes the public components too.
void add_private_attributes(const EVP_PKEY* key, pkcs11::AttributeTemplate& out);
// The raw public point 04||X||Y of an EC key (NSS softoken's CKA_NSS_DB on unwrap).
Bytes ec_public_point(const EVP_PKEY* key);
// The public value y of a DSA key, big-endian (NSS softoken's CKA_NSS_DB on unwrap).
Bytes dsa_public_value(const EVP_PKEY* key);

// DER SubjectPublicKeyInfo, and its SHA-256.
Bytes spki_der(const EVP_PKEY* key);
Bytes spki_sha256(const EVP_PKEY* key);
bool same_public_key(const EVP_PKEY* a, const EVP_PKEY* b);
// The public half of `key` alone (its SubjectPublicKeyInfo decoded again).
ossl::Pkey public_only(const EVP_PKEY* key);
// Whether `key` is RSA (or RSA-PSS) with this modulus (big-endian, as CKA_MODULUS; leading zeros allowed).
bool has_rsa_modulus(const EVP_PKEY* key, const Bytes& modulus);

}  // namespace p11vault::keys

namespace p11vault::keys {

// The private key of a token object whose components are readable (CKA_SENSITIVE=FALSE):
// RSA CKA_MODULUS..CKA_COEFFICIENT, EC/EdDSA CKA_EC_PARAMS + CKA_VALUE (the public key,
// when known, completes EC keys). Components arrive and leave as secrets.
ossl::Pkey private_key_from_components(CK_KEY_TYPE key_type, const pkcs11::AttributeValues& public_values,
                                       const std::map<CK_ATTRIBUTE_TYPE, SecretBytes>& secrets,
                                       const EVP_PKEY* public_key);
// The private component attribute types of a key type.
std::vector<CK_ATTRIBUTE_TYPE> private_component_types(CK_KEY_TYPE key_type);

// DER PrivateKeyInfo of `key`, as a secret.
SecretBytes private_key_info_der(const EVP_PKEY* key);
// Length of the DER element at the start of `data` (KWP unwrap output may carry padding
// bytes after it); 0 when it does not start with a complete DER element.
std::size_t der_element_length(const std::uint8_t* data, std::size_t size);

}  // namespace p11vault::keys
