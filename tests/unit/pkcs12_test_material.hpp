// SPDX-License-Identifier: Apache-2.0
// In-process PKCS#12 material for the codec's unit tests: a P-256 key, a self-signed
// certificate for it, and a PKCS12 structure's DER.
#pragma once

#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include <algorithm>
#include <string>

#include "src/ossl.hpp"
#include "src/pkcs12/reader.hpp"

namespace p11vault::testing {

inline ossl::Pkey generate_ec() { return ossl::Pkey(EVP_PKEY_Q_keygen(ossl::libctx(), nullptr, "EC", "P-256")); }

// Valid for an hour, CN = common_name, signed by `key` itself.
inline ossl::Cert self_signed(EVP_PKEY* key, const std::string& common_name) {
    ossl::Cert cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 20);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
    X509_set_pubkey(cert.get(), key);
    EXPECT_GT(X509_sign(cert.get(), key, EVP_sha256()), 0);
    return cert;
}

inline pkcs12::Bytes der_of(PKCS12* p12) {
    unsigned char* der = nullptr;
    const int length = i2d_PKCS12(p12, &der);
    EXPECT_GT(length, 0);
    pkcs12::Bytes out(der, der + std::max(length, 0));
    OPENSSL_free(der);
    return out;
}

}  // namespace p11vault::testing
