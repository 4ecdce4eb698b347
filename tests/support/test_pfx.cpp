// SPDX-License-Identifier: Apache-2.0
#include "tests/support/test_pfx.hpp"

#include <gtest/gtest.h>
#include <openssl/pkcs12.h>

namespace p11vault::testing {

namespace {

void add_attributes(PKCS12_SAFEBAG* bag, const PfxEntry& entry) {
    ASSERT_NE(bag, nullptr);
    if (!entry.id.empty()) {
        ASSERT_EQ(PKCS12_add_localkeyid(bag, const_cast<unsigned char*>(entry.id.data()), static_cast<int>(entry.id.size())),
                  1);
    }
    if (!entry.label.empty()) {
        ASSERT_EQ(PKCS12_add_friendlyname_utf8(bag, entry.label.c_str(), -1), 1);
    }
}

void add_secret(STACK_OF(PKCS12_SAFEBAG) * bags, const PfxSecret& secret, const std::string& password) {
    if (secret.algorithm_oid.empty()) {
        PKCS12_SAFEBAG* bag = PKCS12_SAFEBAG_create_secret(NID_pkcs7_data, V_ASN1_OCTET_STRING, secret.value.data(),
                                                           static_cast<int>(secret.value.size()));
        ASSERT_NE(bag, nullptr);
        ASSERT_GT(sk_PKCS12_SAFEBAG_push(bags, bag), 0);
        add_attributes(bag, PfxEntry{nullptr, nullptr, secret.id, secret.label});
        return;
    }
    PKCS8_PRIV_KEY_INFO* info = PKCS8_PRIV_KEY_INFO_new();
    auto* copy = static_cast<unsigned char*>(OPENSSL_memdup(secret.value.data(), secret.value.size()));
    ASSERT_EQ(PKCS8_pkey_set0(info, OBJ_txt2obj(secret.algorithm_oid.c_str(), 1), 0, V_ASN1_NULL, nullptr, copy,
                              static_cast<int>(secret.value.size())),
              1);
    X509_SIG* encrypted = PKCS8_encrypt(-1, EVP_aes_256_cbc(), password.c_str(), static_cast<int>(password.size()),
                                        nullptr, 0, 2048, info);
    PKCS8_PRIV_KEY_INFO_free(info);
    ASSERT_NE(encrypted, nullptr);
    unsigned char* der = nullptr;
    const int length = i2d_X509_SIG(encrypted, &der);
    X509_SIG_free(encrypted);
    ASSERT_GT(length, 0);
    PKCS12_SAFEBAG* bag = PKCS12_SAFEBAG_create_secret(NID_pkcs8ShroudedKeyBag, V_ASN1_OCTET_STRING, der, length);
    OPENSSL_free(der);
    ASSERT_NE(bag, nullptr);
    ASSERT_GT(sk_PKCS12_SAFEBAG_push(bags, bag), 0);
    add_attributes(bag, PfxEntry{nullptr, nullptr, secret.id, secret.label});
}

}  // namespace

void write_test_pfx(const std::string& path, const std::vector<PfxEntry>& entries, const std::string& password,
                    const std::vector<PfxSecret>& secrets) {
    STACK_OF(PKCS12_SAFEBAG)* bags = sk_PKCS12_SAFEBAG_new_null();
    ASSERT_NE(bags, nullptr);
    for (const PfxEntry& entry : entries) {
        if (entry.key != nullptr)
            add_attributes(PKCS12_add_key(&bags, entry.key, 0, 2048, NID_aes_256_cbc, password.c_str()), entry);
        if (entry.cert != nullptr) add_attributes(PKCS12_add_cert(&bags, entry.cert), entry);
    }
    for (const PfxSecret& secret : secrets) {
        add_secret(bags, secret, password);
        if (::testing::Test::HasFatalFailure()) return;
    }
    STACK_OF(PKCS7)* safes = nullptr;
    ASSERT_EQ(PKCS12_add_safe(&safes, bags, -1, 0, nullptr), 1);
    PKCS12* p12 = PKCS12_add_safes(safes, 0);
    ASSERT_NE(p12, nullptr);
    ASSERT_EQ(PKCS12_set_mac(p12, password.c_str(), -1, nullptr, 0, 2048, EVP_sha256()), 1);
    unsigned char* der = nullptr;
    const int length = i2d_PKCS12(p12, &der);
    ASSERT_GT(length, 0);
    write_text(path, std::string(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length)));
    OPENSSL_free(der);
    PKCS12_free(p12);
    sk_PKCS7_pop_free(safes, PKCS7_free);
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
}

}  // namespace p11vault::testing
