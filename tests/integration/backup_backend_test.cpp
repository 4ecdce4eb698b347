// SPDX-License-Identifier: Apache-2.0
// `p11vault backup` where the backends differ (issue 4): Ed25519 on SoftHSM (NSS 3.87 has
// none), and on NSS softoken the token-wrap path, shown by --verbose to read no private
// component and to unwrap nothing on the host. The common tests: backup_test.cpp.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <regex>
#include <string>
#include <vector>

#include "tests/integration/backup_fixture.hpp"
#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

using nlohmann::json;

// --- SoftHSM only: Ed25519 (NSS 3.87 has none) -------------------------------------------

class BackupSoftHsmTest : public BackupTest {};

TEST_P(BackupSoftHsmTest, SensitiveEd25519CannotLeaveSoftHsm) {
    {
        auto session = token_.open_session();
        auto key = generate_ed25519(*session, {0x25}, "ed sensitive", {.sensitive = true, .extractable = true});
        if (!key) GTEST_SKIP() << "no Ed25519 on this token";
        certify(*session, *key);
    }
    const std::string out = path("ed-sensitive.p12");
    const RunResult result = backup(token_, out, {"--id", "25"});
    EXPECT_EQ(result.exit_code, 6) << result.err;
    ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
    EXPECT_NE(result.err.find("25"), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("ed sensitive"), std::string::npos) << result.err;
    EXPECT_FALSE(file_exists(out));
}

TEST_P(BackupSoftHsmTest, NonSensitiveEd25519TakesAttributeRead) {
    TestKey key;
    PkeyPtr public_key;
    IssuedCert cert;
    {
        auto session = token_.open_session();
        auto made = generate_ed25519(*session, {0x26}, "ed open", {.sensitive = false, .extractable = true});
        if (!made) GTEST_SKIP() << "no Ed25519 on this token";
        key = *made;
        public_key = public_key_from_token(*session, key.public_key);
        cert = certify(*session, key);
    }
    const std::string out = path("ed-open.p12");
    const RunResult result = backup(token_, out, {"--id", "26", "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json report = key_report(stdout_json(result), {0x26});
    EXPECT_EQ(report.at("path"), "attribute-read") << report.dump(2);
    EXPECT_EQ(report.at("type"), "Ed25519");
    const P12File file = read_p12(out);
    const P12Bag* bag = key_bag(file, {0x26});
    ASSERT_NE(bag, nullptr);
    EXPECT_EQ(EVP_PKEY_is_a(bag->key.get(), "ED25519"), 1);
    EXPECT_EQ(EVP_PKEY_eq(bag->key.get(), public_key.get()), 1);
    EXPECT_EQ(bag->friendly_name, "ed open");
    EXPECT_NE(file.find_certificate(cert.cert.get()), nullptr);
}

INSTANTIATE_TEST_SUITE_P(SoftHsm, BackupSoftHsmTest, ::testing::Values(Backend::softhsm), BackendParamName());

// --- NSS only: the token-wrap path keeps the clear key off the host ----------------------

class BackupNssTest : public BackupTest {};

// A wrap under an ephemeral key that the host then unwraps (host-reencrypt): any use of
// AES key wrap in a key operation. (The mechanism list query mentions it too; that is fine.)
const std::regex host_unwrap("C_(WrapKey|UnwrapKey|EncryptInit|DecryptInit|Encrypt|Decrypt) CKM_AES_KEY_WRAP");

// `--verbose` logs every PKCS#11 call as "p11vault: debug: C_Function DETAIL: CKR_..."
// (pkcs11/error.cpp); the detail of C_GetAttributeValue is the list of attribute names.
TEST_P(BackupNssTest, TokenWrapReadsNoPrivateComponentAndUnwrapsNothingOnTheHost) {
    // Keys without certificates: the only CKA_VALUE a backup could read is then a private one.
    make_rsa(2048, {0x01}, "rsa", /*with_cert=*/false);
    make_ec("P-256", {0x02}, "ec", /*with_cert=*/false);
    const std::string out = path("verbose.p12");
    const RunResult result = backup(token_, out, {"--all", "--json", "--verbose"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = stdout_json(result);
    for (const auto& key : document.at("keys")) EXPECT_EQ(key.at("path"), "token-wrap");

    const std::regex private_read(
        "C_GetAttributeValue .*(CKA_PRIVATE_EXPONENT|CKA_PRIME_1|CKA_PRIME_2|CKA_EXPONENT_1|CKA_EXPONENT_2|"
        "CKA_COEFFICIENT|CKA_VALUE[],])");
    std::size_t debug_lines = 0, cbc_pad_wraps = 0;
    for (const auto& line : result.err_lines()) {
        if (line.rfind("p11vault: debug: ", 0) != 0) continue;
        ++debug_lines;
        EXPECT_FALSE(std::regex_search(line, private_read)) << line;
        EXPECT_FALSE(std::regex_search(line, host_unwrap)) << line;
        if (line.rfind("p11vault: debug: C_WrapKey CKM_AES_CBC_PAD", 0) == 0 && line.find(": CKR_OK") != std::string::npos)
            ++cbc_pad_wraps;
    }
    EXPECT_GT(debug_lines, 10u) << "--verbose logged nothing:\n" << result.err;
    // Two keys, each wrapped in the token (a length query and the call itself may both log).
    EXPECT_GE(cbc_pad_wraps, 2u) << result.err;
    EXPECT_EQ(read_p12(out).keys().size(), 2u);
}

TEST_P(BackupNssTest, TokenWrapWithCertificatesReadsNoRsaComponent) {
    make_rsa(2048, {0x01}, "rsa");
    const std::string out = path("verbose-cert.p12");
    const RunResult result = backup(token_, out, {"--all", "--verbose", "--token-wrap-only"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const std::regex private_read(
        "C_GetAttributeValue .*(CKA_PRIVATE_EXPONENT|CKA_PRIME_1|CKA_PRIME_2|CKA_EXPONENT_1|CKA_EXPONENT_2|"
        "CKA_COEFFICIENT)");
    for (const auto& line : result.err_lines()) {
        EXPECT_FALSE(std::regex_search(line, private_read)) << line;
        EXPECT_FALSE(std::regex_search(line, host_unwrap)) << line;
    }
    EXPECT_NE(result.err.find("C_WrapKey CKM_AES_CBC_PAD"), std::string::npos) << result.err;
}

// What costs NSS softoken real work is done once per key (measured in design/
// extraction.md and by scripts/bench): one C_WrapKey per key (a length query would do the
// whole wrap twice), attributes read in batches, and no read of an RSA key's
// CKA_PUBLIC_EXPONENT or of a public key object's components when the key's certificate
// gives them (each read of CKA_MODULUS or CKA_PUBLIC_EXPONENT checks an integrity MAC).
TEST_P(BackupNssTest, TokenWorkIsNotRepeated) {
    Made rsa_a = make_rsa(2048, {0x01}, "rsa-a");
    Made rsa_b = make_rsa(2048, {0x02}, "rsa-b");
    Made ec = make_ec("P-256", {0x03}, "ec");
    const std::string out = path("once.p12");
    const RunResult result = backup(token_, out, {"--all", "--verbose"});
    ASSERT_EQ(result.exit_code, 0) << result.err;

    const std::regex single_attribute_read("C_GetAttributeValue \\[[A-Z0-9_]+\\]");
    std::size_t wraps = 0;
    for (const auto& line : result.err_lines()) {
        if (line.rfind("p11vault: debug: C_WrapKey", 0) == 0) {
            ++wraps;
            EXPECT_NE(line.find(": CKR_OK"), std::string::npos) << line;
        }
        if (line.rfind("p11vault: debug: C_GetAttributeValue", 0) != 0) continue;
        EXPECT_FALSE(std::regex_search(line, single_attribute_read)) << "read one attribute at a time: " << line;
        EXPECT_EQ(line.find("CKA_PUBLIC_EXPONENT"), std::string::npos) << line;
    }
    EXPECT_EQ(wraps, 3u) << result.err;

    // And the file is still right: every key is the token's key with its certificate.
    const P12File file = read_p12(out);
    ASSERT_EQ(file.keys().size(), 3u);
    for (const Made* made : {&rsa_a, &rsa_b, &ec}) expect_key_in_file(file, *made);
}

INSTANTIATE_TEST_SUITE_P(Nss, BackupNssTest, ::testing::Values(Backend::nss), BackendParamName());

}  // namespace
}  // namespace p11vault::testing
