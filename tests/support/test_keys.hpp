// SPDX-License-Identifier: Apache-2.0
// Key pairs generated in a test token through p11vault's own PKCS#11 layer.
//
// Every template sets CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE and CKA_EXTRACTABLE
// explicitly: SoftHSM's defaults (SENSITIVE=FALSE, EXTRACTABLE=FALSE) differ from other
// tokens', and a test must say which kind of key it is about.
#pragma once

#include <p11-kit/pkcs11.h>

#include <optional>
#include <string>

#include "pkcs11/session.hpp"

namespace p11vault::testing {

struct KeyFlags {
    bool sensitive = true;
    bool extractable = true;
};

struct TestKey {
    CK_OBJECT_HANDLE private_key = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE public_key = CK_INVALID_HANDLE;
    CK_KEY_TYPE key_type = CKK_RSA;
    pkcs11::Bytes id;
    std::string label;
};

TestKey generate_rsa(pkcs11::Session& session, unsigned bits, pkcs11::Bytes id, std::string label,
                     KeyFlags flags = {});
// curve: "P-256", "P-384", "P-521", "secp256k1", "brainpoolP256r1", "brainpoolP384r1" or
// "brainpoolP512r1" (OpenSSL group names but for the NIST curves).
TestKey generate_ec(pkcs11::Session& session, const std::string& curve, pkcs11::Bytes id, std::string label,
                    KeyFlags flags = {});
// Empty when the token has no CKM_EC_EDWARDS_KEY_PAIR_GEN (NSS 3.87):
//   auto key = generate_ed25519(...); if (!key) GTEST_SKIP() << "no Ed25519 on this token";
std::optional<TestKey> generate_ed25519(pkcs11::Session& session, pkcs11::Bytes id, std::string label,
                                        KeyFlags flags = {});

// DER OBJECT IDENTIFIER of a curve, as CKA_EC_PARAMS holds it ("P-256", ..., "Ed25519").
pkcs11::Bytes ec_params_for(const std::string& curve);
// The inverse; empty for curves the helpers do not know.
std::string curve_for(const pkcs11::Bytes& ec_params);

// An AES session key (CKA_TOKEN=FALSE) for wrap/unwrap tests. `sensitive` and
// `extractable` as given; CKA_WRAP, CKA_UNWRAP, CKA_ENCRYPT, CKA_DECRYPT all TRUE.
CK_OBJECT_HANDLE generate_aes_session_key(pkcs11::Session& session, unsigned bytes = 32, bool sensitive = true,
                                          bool extractable = false);

}  // namespace p11vault::testing
