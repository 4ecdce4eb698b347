// SPDX-License-Identifier: Apache-2.0
// The test support itself: throw-away tokens, key helpers and the test CA, on both backends.
#include <gtest/gtest.h>
#include <openssl/x509.h>

#include <filesystem>

#include "pkcs11/error.hpp"
#include "tests/support/sanitizers.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

class TestTokenTest : public ::testing::TestWithParam<Backend> {};

TEST_P(TestTokenTest, FreshTokenIsEmptyAndRemovedAfterwards) {
    std::string dir;
    {
        TestToken token(GetParam());
        dir = token.dir();
        EXPECT_TRUE(std::filesystem::is_directory(dir));
        EXPECT_EQ(token.object_count(), 0u);
        EXPECT_TRUE(token.objects().empty());
        EXPECT_EQ(token.module_init().has_value(), GetParam() == Backend::nss);
        auto args = token.cli_token_args();
        ASSERT_GE(args.size(), 4u);
        EXPECT_EQ(args[0], "--module");
        EXPECT_EQ(args[1], token.module_path());
        EXPECT_EQ(args[args.size() - 2], "--token-label");
        EXPECT_EQ(args.back(), token.label());
        EXPECT_EQ(token.env_for_child().size(), GetParam() == Backend::softhsm ? 1u : 0u);
        std::string pin_file = token.write_pin_file();
        EXPECT_EQ(std::filesystem::status(pin_file).permissions() & std::filesystem::perms::all,
                  std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    }
    EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST_P(TestTokenTest, KeysAndCertificatesAreListedAndPaired) {
    TestToken token(GetParam());
    auto session = token.open_session();
    TestKey rsa = generate_rsa(*session, 2048, {0xa1}, "rsa key", {});
    TestKey ec = generate_ec(*session, "P-384", {0xb2}, "ec key", KeyFlags{.sensitive = true, .extractable = false});
    EXPECT_EQ(session->get_bool(ec.private_key, CKA_EXTRACTABLE), false);
    EXPECT_EQ(session->get_bool(rsa.private_key, CKA_SENSITIVE), true);
    EXPECT_EQ(session->get_bytes(rsa.private_key, CKA_ID), pkcs11::Bytes{0xa1});

    IssuedCert rsa_cert = certify(*session, rsa);
    IssuedCert ec_cert = certify(*session, ec);
    const std::vector<ObjectSummary> expected = {
        {CKO_CERTIFICATE, {0xa1}, "rsa key"}, {CKO_CERTIFICATE, {0xb2}, "ec key"},
        {CKO_PUBLIC_KEY, {0xa1}, "rsa key"},  {CKO_PUBLIC_KEY, {0xb2}, "ec key"},
        {CKO_PRIVATE_KEY, {0xa1}, "rsa key"}, {CKO_PRIVATE_KEY, {0xb2}, "ec key"},
    };
    auto sorted = expected;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(token.objects(), sorted);
    EXPECT_EQ(token.object_count(), 6u);

    // The certificates are the CA's and carry the token keys' public keys: a signature
    // made in the token verifies against the certificate.
    for (auto* pair : {&rsa, &ec}) {
        const IssuedCert& issued = pair == &rsa ? rsa_cert : ec_cert;
        EXPECT_EQ(X509_verify(issued.cert.get(), TestCa::instance().key()), 1);
        PkeyPtr from_cert(X509_get_pubkey(issued.cert.get()));
        PkeyPtr from_token = public_key_from_token(*session, pair->public_key);
        EXPECT_EQ(spki_der(from_cert.get()), spki_der(from_token.get()));
        const std::uint8_t data[] = "sign me";
        auto signature = sign_for_openssl(*session, pair->private_key, pair->key_type, data);
        EXPECT_TRUE(openssl_verify(from_cert.get(), data, signature));
        EXPECT_FALSE(openssl_verify(TestCa::instance().key(), data, signature));
    }
    EXPECT_EQ(rsa_cert.pem.rfind("-----BEGIN CERTIFICATE-----", 0), 0u);
    EXPECT_EQ(TestCa::instance().cert_der(), to_der(TestCa::instance().cert()));
}

TEST_P(TestTokenTest, Ed25519WhereTheTokenHasIt) {
    TestToken token(GetParam());
    auto session = token.open_session();
    auto key = generate_ed25519(*session, {0xed}, "ed key", KeyFlags{.sensitive = false, .extractable = true});
    if (GetParam() == Backend::nss) {
        EXPECT_FALSE(key.has_value()) << "NSS 3.87 has no Ed25519; did it gain it?";
        GTEST_SKIP() << "no Ed25519 on NSS softoken";
    }
    ASSERT_TRUE(key.has_value());
    const SoftHsmEd25519LeakIgnored softhsm_leaks_in_sign_init;
    IssuedCert cert = certify(*session, *key);
    PkeyPtr from_cert(X509_get_pubkey(cert.cert.get()));
    EXPECT_EQ(EVP_PKEY_is_a(from_cert.get(), "ED25519"), 1);
    const std::uint8_t data[] = "sign me";
    EXPECT_TRUE(openssl_verify(from_cert.get(), data, sign_for_openssl(*session, key->private_key, CKK_EC_EDWARDS, data)));
}

INSTANTIATE_TEST_SUITE_P(Backends, TestTokenTest, all_backends(), BackendParamName());

TEST(TestTokenLimits, TwoSoftHsmTokensShareOneModule) {
    TestToken first(Backend::softhsm);
    TestToken second(Backend::softhsm);
    EXPECT_NE(first.slot(), second.slot());
    EXPECT_NE(first.label(), second.label());
    EXPECT_EQ(first.module(), second.module());
    auto session = first.open_session();
    generate_ec(*session, "P-256", {1}, "only on first", {});
    EXPECT_EQ(first.object_count(), 2u);
    EXPECT_EQ(second.object_count(), 0u);
    EXPECT_THROW(TestToken(Backend::softhsm, first.label()), std::logic_error);
}

TEST(TestTokenLimits, OneNssTokenPerProcess) {
    TestToken first(Backend::nss);
    try {
        TestToken second(Backend::nss);
        FAIL() << "a second NSS TestToken was created";
    } catch (const std::logic_error& e) {
        EXPECT_NE(std::string(e.what()).find("one NSS TestToken per process"), std::string::npos);
    }
    EXPECT_NO_THROW(first.open_session());
}

TEST(TestTokenLimits, NssTokensCanFollowEachOther) {
    { TestToken first(Backend::nss); }
    TestToken second(Backend::nss);
    EXPECT_EQ(second.object_count(), 0u);
}

}  // namespace
}  // namespace p11vault::testing
