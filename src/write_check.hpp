// SPDX-License-Identifier: Apache-2.0
// Trust, then verify every write: some tokens ignore parts of the template they are
// given (openCryptoki 3.8's C_UnwrapKey leaves a key CKA_SENSITIVE=FALSE and
// CKA_EXTRACTABLE=TRUE whatever it was asked). After each object p11vault creates, the
// attributes the contract promises are read back; what a token got wrong and allows to
// be changed is repaired with C_SetAttributeValue, anything else fails the run (which
// then rolls back like any other failure).
#pragma once

#include <openssl/evp.h>

#include <string>
#include <vector>

#include "pkcs11/session.hpp"

namespace p11vault {

// What one created object must be.
struct WrittenObject {
    CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
    // The template it was created with: every contract attribute in it (class, key type,
    // CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_ID, CKA_LABEL and the
    // public values: modulus, exponent, EC parameters and point, certificate value) must
    // read back as given.
    const pkcs11::AttributeTemplate* requested = nullptr;
    // For private keys: the key whose public half the object must have (may be null).
    const EVP_PKEY* public_key = nullptr;
    std::string description;   // "private key id=01 label=\"CA\"", for messages
    std::string created_by;    // "C_UnwrapKey", "C_CreateObject"
};

// Reads the object back and repairs it where the token allows. Returns the attributes
// that had to be repaired (empty when the token did as asked). Throws Error (exit 5)
// naming the object, the attribute, what the token holds and what it answered when the
// attribute cannot be repaired, or when a sensitive key's secret value can be read.
std::vector<std::string> check_written_object(pkcs11::Session& session, const WrittenObject& object);

}  // namespace p11vault
