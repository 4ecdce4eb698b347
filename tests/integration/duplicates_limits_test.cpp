// SPDX-License-Identifier: Apache-2.0
// Identities and limits that protect the token (issue 19, items 4 and 10): different keys
// under one localKeyID or CKA_ID are refused (restore exit 4, backup exit 6) unless
// --renumber-duplicate-ids gives them new ids; files with more keys and certificates
// than --max-objects or a friendlyName longer than --max-label-length are exit 4.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <openssl/bn.h>
#include <openssl/pkcs12.h>

#include <string>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_pfx.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

// A bag of a hand-made PKCS#12 file: a key (PBES2 AES-256) or a certificate, with a
// localKeyID and a friendlyName when not empty.
using Bag = PfxEntry;

void write_pfx(const std::string& path, const std::vector<Bag>& entries) { write_test_pfx(path, entries); }

// SHA-1 of the RSA modulus: the id NSS and pkcs11-tool give a key.
pkcs11::Bytes sha1_of_modulus(const EVP_PKEY* key) {
    BIGNUM* n = nullptr;
    EXPECT_EQ(EVP_PKEY_get_bn_param(key, "n", &n), 1);
    std::vector<unsigned char> modulus(static_cast<std::size_t>(BN_num_bytes(n)));
    BN_bn2bin(n, modulus.data());
    BN_free(n);
    pkcs11::Bytes digest(20);
    EXPECT_EQ(EVP_Digest(modulus.data(), modulus.size(), digest.data(), nullptr, EVP_sha1(), nullptr), 1);
    return digest;
}

class DuplicatesLimitsTest : public ::testing::TestWithParam<Backend> {
protected:
    DuplicatesLimitsTest() : token_(GetParam()) {
        // Something on the token before each run, so "unchanged" is not just "empty".
        auto session = token_.open_session();
        certify(*session, generate_ec(*session, "P-256", {0xbb}, "bystander"));
    }

    std::string path(const std::string& name) const { return token_.dir() + "/" + name; }

    TestToken token_;
};

TEST_P(DuplicatesLimitsTest, DifferentKeysUnderOneLocalKeyIdAreExit4AndChangeNothing) {
    const HostCredential first = make_host_credential(token_.dir(), "first", "RSA");
    const HostCredential second = make_host_credential(token_.dir(), "second", "RSA");
    const std::string file = path("duplicate-ids.p12");
    write_pfx(file, {{first.key.get(), nullptr, {0x07}, "first"}, {second.key.get(), nullptr, {0x07}, "second"}});
    const auto before = token_.objects();
    for (const char* mode : {"--dry-run", "--json"}) {
        const RunResult result = restore(token_, file, {mode});
        EXPECT_EQ(result.exit_code, 4) << mode << ": " << result.err;
        ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
        EXPECT_NE(result.err.find("id 07 is shared by different keys: key bag 1"), std::string::npos) << result.err;
        EXPECT_NE(result.err.find(", key bag 2"), std::string::npos) << result.err;
        EXPECT_NE(result.err.find("--renumber-duplicate-ids"), std::string::npos) << result.err;
        EXPECT_EQ(token_.objects(), before);
    }
}

TEST_P(DuplicatesLimitsTest, RenumberingGivesEachKeyTheSha1OfItsPublicKeyAndEachSigns) {
    const HostCredential first = make_host_credential(token_.dir(), "first", "RSA");
    const HostCredential second = make_host_credential(token_.dir(), "second", "RSA");
    const std::string file = path("duplicate-ids.p12");
    // The second key has its certificate, under the same shared localKeyID: it must pair
    // by public key, not with the first bag's id.
    write_pfx(file, {{first.key.get(), nullptr, {0x07}, "first"},
                     {second.key.get(), nullptr, {0x07}, "second"},
                     {nullptr, second.cert.get(), {0x07}, "second"}});
    // Text output: the change is a warning line per key.
    const RunResult text = restore(token_, file, {"--renumber-duplicate-ids", "--dry-run"});
    EXPECT_EQ(text.exit_code, 0) << text.err;
    EXPECT_NE(text.err.find("p11vault: warning: key bag 2: CKA_ID " + hex(sha1_of_modulus(second.key.get())) +
                            " instead of the file's 07, which a different key shares"),
              std::string::npos)
        << text.err;

    const RunResult result = restore(token_, file, {"--renumber-duplicate-ids", "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const auto document = stdout_json(result);
    ASSERT_EQ(document.at("keys").size(), 2u);
    const HostCredential* credentials[] = {&first, &second};
    auto session = token_.open_session();
    for (std::size_t i = 0; i < 2; ++i) {
        const auto& key = document.at("keys")[i];
        const pkcs11::Bytes expected = sha1_of_modulus(credentials[i]->key.get());
        EXPECT_EQ(key.at("id"), hex(expected));
        EXPECT_EQ(key.at("renumbered_from"), "07");
        EXPECT_EQ(key.at("status"), "restored");
        const auto handles = find_objects(*session, CKO_PRIVATE_KEY, expected);
        ASSERT_EQ(handles.size(), 1u) << "private keys with id " << hex(expected);
        EXPECT_TRUE(token_key_signs_for(*session, handles[0], credentials[i]->key.get())) << "key " << i;
    }
    // The certificate went with its own key and took the key's new id.
    EXPECT_TRUE(document.at("keys")[0].at("certificate_subject").is_null());
    EXPECT_FALSE(document.at("keys")[1].at("certificate_subject").is_null());
    const auto certificates = find_objects(*session, CKO_CERTIFICATE, sha1_of_modulus(second.key.get()));
    ASSERT_EQ(certificates.size(), 1u);
    EXPECT_EQ(X509_cmp(certificate_from_token(*session, certificates[0]).get(), second.cert.get()), 0);
    EXPECT_TRUE(find_objects(*session, CKO_PRIVATE_KEY, pkcs11::Bytes{0x07}).empty());
}

TEST_P(DuplicatesLimitsTest, LongFriendlyNameIsExit4UnlessTheLimitIsRaised) {
    const HostCredential credential = make_host_credential(token_.dir(), "long", "RSA");
    const std::string file = path("long-label.p12");
    const std::string label(257, 'x');  // one byte over the default limit
    write_pfx(file, {{credential.key.get(), nullptr, {0x31}, label}, {nullptr, credential.cert.get(), {0x31}, ""}});
    const auto before = token_.objects();
    const RunResult refused = restore(token_, file, {});
    EXPECT_EQ(refused.exit_code, 4) << refused.err;
    ASSERT_EQ(refused.err_lines().size(), 1u) << refused.err;
    EXPECT_NE(refused.err.find("key bag 1: friendlyName is 257 bytes (UTF-8), longer than the label limit of 256"),
              std::string::npos)
        << refused.err;
    EXPECT_NE(refused.err.find("--max-label-length"), std::string::npos) << refused.err;
    EXPECT_EQ(refused.err.find(label), std::string::npos) << "the label is repeated in the error";
    EXPECT_EQ(token_.objects(), before);

    const RunResult raised = restore(token_, file, {"--max-label-length", "257"});
    ASSERT_EQ(raised.exit_code, 0) << raised.err;
    auto session = token_.open_session();
    EXPECT_EQ(label_of(*session, find_one(*session, CKO_PRIVATE_KEY, {0x31})), label);
}

TEST_P(DuplicatesLimitsTest, MoreObjectsThanTheLimitIsExit4UnlessTheLimitIsRaised) {
    const HostCredential credential = make_host_credential(token_.dir(), "many", "RSA");
    const HostCredential other = make_host_credential(token_.dir(), "other", "RSA");
    const std::string file = path("many-objects.p12");
    // 1 key + 1,000 certificates: one object over the default limit of 1,000.
    std::vector<Bag> bags = {{credential.key.get(), nullptr, {0x41}, "many"},
                             {nullptr, credential.cert.get(), {0x41}, "many"}};
    for (int i = 0; i < 999; ++i) bags.push_back({nullptr, other.cert.get(), {}, ""});
    write_pfx(file, bags);
    const auto before = token_.objects();
    const RunResult refused = restore(token_, file, {});
    EXPECT_EQ(refused.exit_code, 4) << refused.err;
    ASSERT_EQ(refused.err_lines().size(), 1u) << refused.err;
    EXPECT_NE(refused.err.find("certificate bag 1000: the file holds more than 1000 keys and certificates"),
              std::string::npos)
        << refused.err;
    EXPECT_NE(refused.err.find("--max-objects"), std::string::npos) << refused.err;
    EXPECT_EQ(token_.objects(), before);

    const RunResult raised = restore(token_, file, {"--max-objects", "1001"});
    ASSERT_EQ(raised.exit_code, 0) << raised.err;
    // The key, its public key, its certificate and the other certificate (written once).
    EXPECT_EQ(token_.objects().size(), before.size() + 4);
}

INSTANTIATE_TEST_SUITE_P(Backends, DuplicatesLimitsTest, all_backends(), BackendParamName());

// Two different keys under one CKA_ID on a token: backup refuses to write a file that
// would restore them under one id. (SoftHSM: NSS softoken keeps one key per CKA_ID.)
TEST(DuplicateIdsOnTheToken, BackupRefusesDifferentKeysUnderOneIdWithExit6) {
    TestToken token(Backend::softhsm);
    {
        auto session = token.open_session();
        certify(*session, generate_rsa(*session, 2048, {0x09}, "first of 09"));
        generate_rsa(*session, 2048, {0x09}, "second of 09");
        certify(*session, generate_rsa(*session, 2048, {0x0a}, "alone"));
    }
    const std::string out = token.dir() + "/duplicates.p12";
    const RunResult refused = backup(token, out, {"--all"});
    EXPECT_EQ(refused.exit_code, 6) << refused.err;
    ASSERT_EQ(refused.err_lines().size(), 1u) << refused.err;
    EXPECT_NE(refused.err.find("2 private keys share CKA_ID 09 and are different keys: label=\"first of 09\" RSA-2048"),
              std::string::npos)
        << refused.err;
    EXPECT_NE(refused.err.find("label=\"second of 09\""), std::string::npos) << refused.err;
    EXPECT_EQ(refused.err.find("alone"), std::string::npos) << refused.err;
    EXPECT_FALSE(file_exists(out));
    // One of them at a time is a consistent file.
    const RunResult one = backup(token, out, {"--label", "first of 09"});
    EXPECT_EQ(one.exit_code, 0) << one.err;
}

// migrate --renumber-duplicate-ids: the source's duplicates arrive under their SHA-1 ids.
TEST(DuplicateIdsOnTheToken, MigrateRenumbersThemOnTheTargetWhenAsked) {
    TestToken source(Backend::softhsm, "dupes-from");
    TestToken target(Backend::softhsm, "dupes-to");
    std::vector<pkcs11::Bytes> expected_ids;
    {
        auto session = source.open_session();
        for (const char* label : {"first of 09", "second of 09"}) {
            const TestKey key = generate_rsa(*session, 2048, {0x09}, label);
            expected_ids.push_back(sha1_of_modulus(public_key_from_token(*session, key.public_key).get()));
        }
    }
    const std::string pin = source.write_pin_file();
    std::vector<std::string> args = {"migrate", "--all", "--json", "--from-token-label", source.label(), "--from-pin",
                                     "file:" + pin, "--to-token-label", target.label(), "--to-pin", "file:" + pin};
    RunOptions options;
    for (const auto& entry : source.env_for_child()) {
        const auto eq = entry.find('=');
        options.env[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
    options.env["P11VAULT_MODULE"] = source.module_path();
    const auto before = target.objects();
    const RunResult refused = run_p11vault(args, options);
    EXPECT_EQ(refused.exit_code, 6) << refused.err;
    EXPECT_NE(refused.err.find("share CKA_ID 09"), std::string::npos) << refused.err;
    EXPECT_EQ(target.objects(), before);

    args.push_back("--renumber-duplicate-ids");
    const RunResult moved = run_p11vault(args, options);
    ASSERT_EQ(moved.exit_code, 0) << moved.err;
    const auto document = stdout_json(moved);
    ASSERT_EQ(document.at("keys").size(), 2u);
    auto session = target.open_session();
    for (const pkcs11::Bytes& id : expected_ids) EXPECT_EQ(find_objects(*session, CKO_PRIVATE_KEY, id).size(), 1u);
    for (const auto& key : document.at("keys")) EXPECT_EQ(key.at("renumbered_from"), "09");
}

}  // namespace
}  // namespace p11vault::testing
