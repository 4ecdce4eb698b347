// SPDX-License-Identifier: Apache-2.0
// A host test CA (OpenSSL, EC P-256, one per process) that certifies keys living in a
// test token, and a helper that stores certificates on the token.
//
// The public key is read from the token object (CKA_MODULUS/CKA_PUBLIC_EXPONENT or
// CKA_EC_PARAMS/CKA_EC_POINT) and rebuilt with EVP_PKEY_fromdata; this deliberately does
// not use src/keys.hpp, so the tests of that code do not depend on it.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <span>
#include <string>

#include "pkcs11/session.hpp"
#include "tests/support/test_keys.hpp"

namespace p11vault::testing {

struct PkeyFree {
    void operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }
};
struct X509Free {
    void operator()(X509* cert) const noexcept { X509_free(cert); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

// DER and PEM of a certificate.
pkcs11::Bytes to_der(const X509* cert);
std::string to_pem(const X509* cert);
// DER SubjectPublicKeyInfo of a key.
pkcs11::Bytes spki_der(const EVP_PKEY* key);

struct IssuedCert {
    X509Ptr cert;
    pkcs11::Bytes der;
    std::string pem;
};

class TestCa {
public:
    // The process-wide CA, made on first use.
    static TestCa& instance();

    X509* cert() const { return cert_.get(); }
    EVP_PKEY* key() const { return key_.get(); }
    const pkcs11::Bytes& cert_der() const { return cert_der_; }
    const std::string& cert_pem() const { return cert_pem_; }

    // An end-entity certificate (CN = common_name, digitalSignature) for `subject`.
    IssuedCert issue(EVP_PKEY* subject, const std::string& common_name) const;

private:
    TestCa();
    PkeyPtr key_;
    X509Ptr cert_;
    pkcs11::Bytes cert_der_;
    std::string cert_pem_;
};

// The public key of a token key object (public or private) that exposes its public
// attributes: RSA, EC P-256/384/521, Ed25519. Throws when they are missing.
PkeyPtr public_key_from_token(pkcs11::Session& session, CK_OBJECT_HANDLE object);

// C_CreateObject of a CKO_CERTIFICATE / CKC_X_509 token object with CKA_VALUE,
// CKA_SUBJECT, CKA_ISSUER, CKA_SERIAL_NUMBER, CKA_ID and CKA_LABEL.
CK_OBJECT_HANDLE add_certificate(pkcs11::Session& session, const X509* cert, const pkcs11::Bytes& id,
                                 const std::string& label);

// Signs `data` with a token private key so that openssl_verify() can check it: RSA with
// CKM_SHA256_RSA_PKCS, EC with CKM_ECDSA over a host SHA-256 (SoftHSM has no
// CKM_ECDSA_SHA256) turned from r||s into DER, Ed25519 with CKM_EDDSA.
pkcs11::Bytes sign_for_openssl(pkcs11::Session& session, CK_OBJECT_HANDLE private_key, CK_KEY_TYPE key_type,
                               std::span<const std::uint8_t> data);
// Verifies such a signature with OpenSSL (SHA-256 for RSA and EC, pure Ed25519).
bool openssl_verify(EVP_PKEY* public_key, std::span<const std::uint8_t> data, std::span<const std::uint8_t> signature);

// Issues a certificate for `key` (CN = its label) and stores it with the key's CKA_ID
// and CKA_LABEL.
IssuedCert certify(pkcs11::Session& session, const TestKey& key);

}  // namespace p11vault::testing
