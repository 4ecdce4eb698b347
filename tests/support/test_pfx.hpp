// SPDX-License-Identifier: Apache-2.0
// PKCS#12 files made in-process for restore tests, with exactly the bags a test needs:
// any key with any certificate (even one that does not match), any localKeyID or none,
// any friendlyName. `openssl pkcs12 -export` cannot: it always takes the certificate's
// SHA-1 as the localKeyID and pairs key and certificate itself.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <string>
#include <vector>

#include "pkcs11/attributes.hpp"
#include "tests/support/cli_helpers.hpp"

namespace p11vault::testing {

struct PfxEntry {
    EVP_PKEY* key = nullptr;   // a key bag (may be null)
    X509* cert = nullptr;      // a certificate bag (may be null)
    pkcs11::Bytes id;          // localKeyID on both (none when empty)
    std::string label;         // friendlyName on both (none when empty)
};

// A secret key as Java's PKCS12KeyStore writes it: a secretBag (secretTypeId
// pkcs8ShroudedKeyBag) holding the EncryptedPrivateKeyInfo of PrivateKeyInfo {0,
// {algorithm_oid, NULL}, value}. An empty algorithm_oid makes a secretBag of another
// form: secretTypeId pkcs7-data, the value as a plain OCTET STRING.
struct PfxSecret {
    std::string algorithm_oid;  // "2.16.840.1.101.3.4.1" (AES), "1.2.840.113549.2.9" (HmacSHA256), ...
    pkcs11::Bytes value;
    pkcs11::Bytes id;
    std::string label;
};

// Key bags PBES2 AES-256 (2048 iterations), certificate bags in the clear, one safe,
// SHA-256 MAC; secret bags after the entries. Fails the test (ASSERT) when OpenSSL
// refuses; call it inside ASSERT_NO_FATAL_FAILURE.
void write_test_pfx(const std::string& path, const std::vector<PfxEntry>& entries,
                    const std::string& password = kTestPassword, const std::vector<PfxSecret>& secrets = {});

}  // namespace p11vault::testing
