// SPDX-License-Identifier: Apache-2.0
// EC domain parameters as PKCS#11 carries them (CKA_EC_PARAMS: DER ECParameters, a named
// curve's OID or explicit parameters) and as OpenSSL keys carry them. Every curve OpenSSL
// knows is handled the same way; whether a token takes a curve is the token's to say.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "p11vault/secret.hpp"
#include "src/ossl.hpp"

namespace p11vault::keys {

struct CurveInfo {
    // "P-256" for NIST curves, else OpenSSL's name ("brainpoolP256r1", "secp256k1");
    // "P-256 (explicit parameters)" for explicit parameters of a known curve, "explicit
    // parameters" for others.
    std::string display;
    unsigned bits = 0;  // of the group order
    bool explicit_parameters = false;
};

// The DER ECParameters of an EC key, as it carries them: its curve's OID, or explicit
// parameters when it was read from a file that had them.
std::vector<std::uint8_t> ec_params_der(const EVP_PKEY* key);
// The curve of an EC key; nullopt when the key carries no readable group.
std::optional<CurveInfo> ec_curve_of(const EVP_PKEY* key);
// The curve of DER ECParameters (CKA_EC_PARAMS); nullopt when they are not EC parameters
// OpenSSL can read.
std::optional<CurveInfo> ec_curve_from_params(const std::vector<std::uint8_t>& params);

// The NID of CKA_EC_PARAMS holding a curve OID, or for EdDSA on older tokens a
// PrintableString ("edwards25519"); NID_undef otherwise (explicit parameters included).
int curve_nid_from_params(const std::vector<std::uint8_t>& params);

// An EC key on the domain of DER ECParameters with this public point (uncompressed or
// compressed octets; may be null when `private_value` is given: OpenSSL derives it) and,
// when given, this private scalar (big-endian). Throws Error(bad_input) when they do not
// make a key.
ossl::Pkey ec_key_from_params(const std::vector<std::uint8_t>& params, const std::vector<std::uint8_t>* point,
                              const SecretBytes* private_value);

}  // namespace p11vault::keys
