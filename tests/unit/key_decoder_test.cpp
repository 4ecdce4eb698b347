// SPDX-License-Identifier: Apache-2.0
// KeyDecoder reuses one OpenSSL decoder context per key algorithm: every key still comes
// out whole and equal to the one encoded, across algorithms in any order, and a key that
// does not parse leaves the context usable for the next.
#include <gtest/gtest.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <vector>

#include "src/ossl.hpp"
#include "src/pkcs12/key_decoder.hpp"

namespace p11vault {
namespace {

ossl::Pkey generate(const char* type) {
    if (std::string(type) == "RSA-PSS") {
        ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(ossl::libctx(), "RSA-PSS", nullptr));
        EVP_PKEY* key = nullptr;
        if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), 2048) != 1 ||
            EVP_PKEY_generate(ctx.get(), &key) != 1)
            return nullptr;
        return ossl::Pkey(key);
    }
    if (std::string(type) == "RSA")
        return ossl::Pkey(EVP_PKEY_Q_keygen(ossl::libctx(), nullptr, "RSA", static_cast<size_t>(2048)));
    if (std::string(type) == "EC") return ossl::Pkey(EVP_PKEY_Q_keygen(ossl::libctx(), nullptr, "EC", "P-256"));
    return ossl::Pkey(EVP_PKEY_Q_keygen(ossl::libctx(), nullptr, type));
}

ossl::P8Info info_of(const EVP_PKEY* key) { return ossl::P8Info(EVP_PKEY2PKCS8(key)); }

// The private half, compared as OpenSSL encodes it (EVP_PKEY_eq compares public halves).
std::vector<unsigned char> private_der(const EVP_PKEY* key) {
    unsigned char* der = nullptr;
    const int length = i2d_PrivateKey(key, &der);
    std::vector<unsigned char> out(der, der + (length > 0 ? length : 0));
    OPENSSL_clear_free(der, static_cast<std::size_t>(length > 0 ? length : 0));
    return out;
}

TEST(KeyDecoder, EveryKeyComesOutWholeAcrossAlgorithmsInAnyOrder) {
    std::vector<ossl::Pkey> keys;
    for (int round = 0; round < 3; ++round)
        for (const char* type : {"RSA", "EC", "ED25519", "RSA-PSS", "X25519"}) {
            keys.push_back(generate(type));
            ASSERT_TRUE(keys.back()) << type;
        }
    pkcs12::KeyDecoder decoder;
    for (const auto& key : keys) {
        ossl::P8Info info = info_of(key.get());
        ASSERT_TRUE(info);
        ossl::Pkey decoded = decoder.decode(info.get());
        ASSERT_TRUE(decoded) << EVP_PKEY_get0_type_name(key.get());
        EXPECT_EQ(EVP_PKEY_eq(decoded.get(), key.get()), 1) << EVP_PKEY_get0_type_name(key.get());
        EXPECT_EQ(private_der(decoded.get()), private_der(key.get())) << EVP_PKEY_get0_type_name(key.get());
    }
}

TEST(KeyDecoder, AKeyThatDoesNotParseIsNullAndTheNextStillDecodes) {
    pkcs12::KeyDecoder decoder;
    ossl::Pkey first = generate("RSA");
    ossl::P8Info first_info = info_of(first.get());
    ASSERT_TRUE(decoder.decode(first_info.get()));

    // rsaEncryption over bytes that are no RSAPrivateKey.
    ossl::P8Info broken(PKCS8_PRIV_KEY_INFO_new());
    unsigned char* garbage = static_cast<unsigned char*>(OPENSSL_malloc(4));
    ASSERT_NE(garbage, nullptr);
    garbage[0] = 0x30, garbage[1] = 0x02, garbage[2] = 0x05, garbage[3] = 0x00;
    ASSERT_EQ(PKCS8_pkey_set0(broken.get(), OBJ_nid2obj(NID_rsaEncryption), 0, V_ASN1_NULL, nullptr, garbage, 4), 1);
    EXPECT_FALSE(decoder.decode(broken.get()));
    EXPECT_NE(ERR_peek_last_error(), 0u) << "the reason is on the error queue";
    ERR_clear_error();

    // An algorithm OpenSSL has no decoder for.
    ossl::P8Info unknown(PKCS8_PRIV_KEY_INFO_new());
    unsigned char* bytes = static_cast<unsigned char*>(OPENSSL_malloc(2));
    ASSERT_NE(bytes, nullptr);
    bytes[0] = 0x05, bytes[1] = 0x00;
    ASSERT_EQ(PKCS8_pkey_set0(unknown.get(), OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1), 0, V_ASN1_NULL, nullptr, bytes, 2), 1);
    EXPECT_FALSE(decoder.decode(unknown.get()));
    ERR_clear_error();

    ossl::Pkey second = generate("RSA");
    ossl::P8Info second_info = info_of(second.get());
    ossl::Pkey decoded = decoder.decode(second_info.get());
    ASSERT_TRUE(decoded);
    EXPECT_EQ(EVP_PKEY_eq(decoded.get(), second.get()), 1);
    EXPECT_EQ(private_der(decoded.get()), private_der(second.get()));
}

}  // namespace
}  // namespace p11vault
