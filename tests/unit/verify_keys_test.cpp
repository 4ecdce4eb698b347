// SPDX-License-Identifier: Apache-2.0
// verify_file keeps only the public half of each key: a file of 1,000 keys must not leave
// 1,000 clear private keys in memory after it is checked.
#include <gtest/gtest.h>

#include <openssl/core_names.h>
#include <openssl/err.h>

#include "src/keys.hpp"
#include "src/ossl.hpp"
#include "src/pkcs12/reader.hpp"
#include "src/pkcs12/writer.hpp"
#include "src/verify.hpp"
#include "tests/support/test_ca.hpp"

namespace p11vault {
namespace {

bool has_private_part(const EVP_PKEY* key) {
    BIGNUM* secret = nullptr;
    const char* name = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA ? OSSL_PKEY_PARAM_RSA_D : OSSL_PKEY_PARAM_PRIV_KEY;
    const bool found = EVP_PKEY_get_bn_param(key, name, &secret) == 1;
    BN_clear_free(secret);
    ERR_clear_error();
    return found;
}

TEST(VerifyKeys, KeepsOnlyThePublicHalfOfEveryKey) {
    ossl::Pkey rsa(EVP_PKEY_Q_keygen(ossl::libctx(), nullptr, "RSA", static_cast<size_t>(2048)));
    ossl::Pkey ec(EVP_PKEY_Q_keygen(ossl::libctx(), nullptr, "EC", "P-256"));
    ASSERT_TRUE(rsa && ec);
    ASSERT_TRUE(has_private_part(rsa.get()) && has_private_part(ec.get())) << "the check itself must see a private key";
    p11vault::testing::IssuedCert issued = p11vault::testing::TestCa::instance().issue(rsa.get(), "public only");
    X509* cert = issued.cert.get();
    const SecretBytes password = SecretBytes::from_text("public only");
    pkcs12::Writer writer(pkcs12::Profile::modern, password, 1000);
    writer.add_clear_key(keys::private_key_info_der(rsa.get()), {pkcs12::Bytes{1}, std::string("with certificate")});
    writer.add_certificate(cert, {pkcs12::Bytes{1}, std::string("with certificate")});
    writer.add_clear_key(keys::private_key_info_der(ec.get()), {pkcs12::Bytes{2}, std::string("without")});
    pkcs12::Reader reader(writer.finish(), password);

    Verification verification = verify_file(reader);
    ASSERT_EQ(verification.keys.size(), 2u);
    const EVP_PKEY* originals[] = {rsa.get(), ec.get()};
    for (std::size_t i = 0; i < 2; ++i) {
        const VerifiedKey& key = verification.keys[i];
        ASSERT_TRUE(key.public_key) << key.where;
        EXPECT_EQ(EVP_PKEY_eq(key.public_key.get(), originals[i]), 1) << key.where;
        EXPECT_FALSE(has_private_part(key.public_key.get())) << key.where << " kept its private key";
    }
    EXPECT_TRUE(verification.keys[0].certificate.has_value());
    EXPECT_FALSE(verification.keys[1].certificate.has_value());
}

// Key bags under one weak scheme make one warning that names the first few, not one line
// per bag; a single bag keeps the singular.
TEST(VerifyKeys, KeyBagsUnderOneWeakSchemeMakeOneWarning) {
    const SecretBytes password = SecretBytes::from_text("weak");
    for (std::size_t count : {1u, 2u, 4u, 6u}) {
        pkcs12::Writer writer(pkcs12::Profile::modern, password, 1000);
        for (std::size_t i = 0; i < count; ++i) {
            ossl::Pkey key(EVP_PKEY_Q_keygen(ossl::libctx(), nullptr, "EC", "P-256"));
            ASSERT_TRUE(key);
            writer.add_clear_key(keys::private_key_info_der(key.get()),
                                 {pkcs12::Bytes{static_cast<std::uint8_t>(i + 1)}, std::string("weak")});
        }
        pkcs12::Reader reader(writer.finish(), password);
        const Verification verification = verify_file(reader);
        std::vector<std::string> weak;
        for (const std::string& warning : verification.warnings)
            if (warning.find("weak scheme") != std::string::npos) weak.push_back(warning);
        ASSERT_EQ(weak.size(), 1u) << count << " bags";
        const std::string scheme = ": PBES2 PBKDF2-HMAC-SHA256 1000 it, AES-256-CBC";
        const std::string expected = count == 1   ? "key bag 1 is protected by a weak scheme"
                                     : count == 2 ? "key bag 1 and key bag 2 are protected by a weak scheme"
                                     : count == 4 ? "key bag 1, key bag 2, key bag 3 and key bag 4 are protected by a weak scheme"
                                                  : "key bag 1, key bag 2, key bag 3 and 3 more are protected by a weak scheme";
        EXPECT_EQ(weak.front(), expected + scheme);
    }
}

}  // namespace
}  // namespace p11vault
