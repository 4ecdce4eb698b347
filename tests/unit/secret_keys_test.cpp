// SPDX-License-Identifier: Apache-2.0
// Secret keys in Java's PKCS#12 form (src/secret_keys): the PrivateKeyInfo backup writes
// is the one keytool writes (checked byte for byte against keytool's AES-256 entry), it
// decodes back to the same key and type, and what cannot go on a token says why.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "src/secret_keys.hpp"

namespace p11vault {
namespace {

SecretBytes key_of(std::size_t size, std::uint8_t first) {
    std::vector<std::uint8_t> bytes(size);
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>(first + i);
    return SecretBytes(bytes.data(), bytes.size());
}

secret_keys::DecodedSecret decode_der(const SecretBytes& der) {
    const unsigned char* p = der.data();
    PKCS8_PRIV_KEY_INFO* info = d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(der.size()));
    EXPECT_NE(info, nullptr);
    secret_keys::DecodedSecret decoded = secret_keys::decode(info);
    PKCS8_PRIV_KEY_INFO_free(info);
    return decoded;
}

TEST(SecretKeys, AnAesKeyIsWrittenAsKeytoolWritesIt) {
    // keytool -genseckey -keyalg AES -keysize 256 (JDK 17), decrypted: SEQUENCE { 0,
    // { 2.16.840.1.101.3.4.1, NULL }, OCTET STRING (32 bytes) }.
    const SecretBytes value = key_of(32, 0x10);
    const SecretBytes der = secret_keys::private_key_info_der(CKK_AES, value);
    const std::vector<std::uint8_t> header = {0x30, 0x33, 0x02, 0x01, 0x00, 0x30, 0x0c, 0x06, 0x08, 0x60, 0x86,
                                              0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x05, 0x00, 0x04, 0x20};
    ASSERT_EQ(der.size(), header.size() + 32);
    EXPECT_EQ(std::vector<std::uint8_t>(der.data(), der.data() + header.size()), header);

    const secret_keys::DecodedSecret decoded = decode_der(der);
    ASSERT_TRUE(decoded.type.has_value());
    EXPECT_EQ(decoded.type->key_type, static_cast<CK_KEY_TYPE>(CKK_AES));
    EXPECT_EQ(decoded.type->name, "AES-256");
    EXPECT_FALSE(decoded.unsupported.has_value());
    EXPECT_TRUE(decoded.value == value);
}

TEST(SecretKeys, HmacAndDes3KeysRoundTripUnderJavasOids) {
    const SecretBytes hmac = key_of(32, 0x20);
    const secret_keys::DecodedSecret generic = decode_der(secret_keys::private_key_info_der(CKK_GENERIC_SECRET, hmac));
    EXPECT_EQ(generic.algorithm_oid, "1.2.840.113549.2.9");  // HmacSHA256
    ASSERT_TRUE(generic.type.has_value());
    EXPECT_EQ(generic.type->key_type, static_cast<CK_KEY_TYPE>(CKK_GENERIC_SECRET));
    EXPECT_EQ(generic.type->name, "GENERIC-SECRET-256 (HmacSHA256)");

    const secret_keys::DecodedSecret sha512 = decode_der(secret_keys::private_key_info_der(CKK_SHA512_HMAC, hmac));
    EXPECT_EQ(sha512.algorithm_oid, "1.2.840.113549.2.11");  // HmacSHA512

    const SecretBytes des3 = key_of(24, 0x30);
    const secret_keys::DecodedSecret decoded = decode_der(secret_keys::private_key_info_der(CKK_DES3, des3));
    EXPECT_EQ(decoded.algorithm_oid, "1.3.14.3.2.17");  // what Java's AlgorithmId.get("DESede") is
    ASSERT_TRUE(decoded.type.has_value());
    EXPECT_EQ(decoded.type->name, "DES3");
    EXPECT_TRUE(decoded.value == des3);
}

TEST(SecretKeys, WhatCannotGoOnATokenSaysWhy) {
    // An AES key of 20 bytes.
    const secret_keys::DecodedSecret short_aes = decode_der(secret_keys::private_key_info_der(CKK_AES, key_of(20, 1)));
    EXPECT_EQ(short_aes.unsupported.value_or(""), "an AES key of 20 bytes (AES keys are 16, 24 or 32)");
    // A DESede key of 16 bytes (two-key 3DES, which CKK_DES3 is not).
    const secret_keys::DecodedSecret des2 = decode_der(secret_keys::private_key_info_der(CKK_DES3, key_of(16, 1)));
    EXPECT_EQ(des2.unsupported.value_or(""), "a DESede key of 16 bytes (DES3 keys are 24)");
    // A secret key type Java has no OID for here.
    EXPECT_FALSE(secret_keys::token_type(CKK_DES, 8).has_value());
    EXPECT_FALSE(secret_keys::token_type(CKK_VENDOR_DEFINED, 32).has_value());
}

}  // namespace
}  // namespace p11vault
