// SPDX-License-Identifier: Apache-2.0
// Secret keys (issue 20 item 2): a secretBag as Java writes it (AES, HmacSHA256, DESede
// inside an encrypted PrivateKeyInfo) restores as a sensitive, non-extractable
// CKO_SECRET_KEY with its CKA_ID and CKA_LABEL, counted in the summary, and the token's
// key computes what the file's key computes; what p11vault cannot restore is refused
// (exit 6) or skipped with --skip-unsupported, never dropped. Backup writes a token's
// extractable secret keys back into such bags and refuses non-extractable ones.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/test_pfx.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

using nlohmann::json;

constexpr const char* kAesOid = "2.16.840.1.101.3.4.1";
constexpr const char* kHmacSha256Oid = "1.2.840.113549.2.9";
constexpr const char* kDesEdeOid = "1.3.14.3.2.17";  // what Java's AlgorithmId.get("DESede") writes

pkcs11::Bytes pattern(std::size_t size, std::uint8_t start) {
    pkcs11::Bytes out(size);
    for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<std::uint8_t>(start + 7 * i);
    return out;
}

pkcs11::Bytes with_des_parity(pkcs11::Bytes key) {
    for (auto& byte : key) {
        byte &= 0xFE;
        if (__builtin_popcount(byte) % 2 == 0) byte |= 1;
    }
    return key;
}

const std::vector<PfxSecret> kJavaSecrets = {
    {kAesOid, pattern(32, 1), {'T', 'i', 'm', 'e', ' ', '1'}, "aes entry"},
    {kHmacSha256Oid, pattern(32, 2), {'T', 'i', 'm', 'e', ' ', '2'}, "hmac entry"},
    {kDesEdeOid, with_des_parity(pattern(24, 3)), {'T', 'i', 'm', 'e', ' ', '3'}, "des3 entry"},
};

// One block of zeros under `key` (ECB), computed here.
pkcs11::Bytes host_encrypt_block(const char* cipher, const pkcs11::Bytes& key, std::size_t block) {
    pkcs11::Bytes in(block, 0), out(block + 32);
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    int n = 0;
    EVP_EncryptInit_ex(ctx, EVP_get_cipherbyname(cipher), nullptr, key.data(), nullptr);
    EVP_CIPHER_CTX_set_padding(ctx, 0);
    EVP_EncryptUpdate(ctx, out.data(), &n, in.data(), static_cast<int>(in.size()));
    EVP_CIPHER_CTX_free(ctx);
    out.resize(static_cast<std::size_t>(n));
    return out;
}

class SecretKeyTest : public ::testing::Test {
protected:
    explicit SecretKeyTest(Backend backend = Backend::softhsm)
        : token_(backend), file_(token_.dir() + "/java-secrets.p12") {}

    // The one secret key of the token with this CKA_LABEL.
    CK_OBJECT_HANDLE secret_key(pkcs11::Session& session, const std::string& label) {
        pkcs11::AttributeTemplate match;
        match.add_class(CKO_SECRET_KEY).add_string(CKA_LABEL, label);
        auto found = session.find(match);
        EXPECT_EQ(found.size(), 1u) << label;
        return found.empty() ? CK_INVALID_HANDLE : found.front();
    }

    // The token's keys compute with the file's bytes: AES and DES3 encrypt a zero block
    // as the host does, HMAC-SHA256 signs as the host does.
    void expect_keys_compute(pkcs11::Session& session, const std::vector<PfxSecret>& secrets) {
        for (const PfxSecret& secret : secrets) {
            CK_OBJECT_HANDLE key = secret_key(session, secret.label);
            ASSERT_NE(key, CK_INVALID_HANDLE);
            const pkcs11::Bytes zeros(16, 0);
            if (secret.algorithm_oid == kAesOid) {
                EXPECT_EQ(session.encrypt(pkcs11::Mechanism(CKM_AES_ECB), key, zeros),
                          host_encrypt_block("AES-256-ECB", secret.value, 16));
            } else if (secret.algorithm_oid == kDesEdeOid) {
                EXPECT_EQ(session.encrypt(pkcs11::Mechanism(CKM_DES3_ECB), key, pkcs11::Bytes(8, 0)),
                          host_encrypt_block("DES-EDE3-ECB", secret.value, 8));
            } else {
                unsigned char mac[EVP_MAX_MD_SIZE];
                unsigned length = 0;
                HMAC(EVP_sha256(), secret.value.data(), static_cast<int>(secret.value.size()), zeros.data(),
                     zeros.size(), mac, &length);
                EXPECT_EQ(session.sign(pkcs11::Mechanism(CKM_SHA256_HMAC), key, zeros), pkcs11::Bytes(mac, mac + length));
            }
        }
    }

    TestToken token_;
    std::string file_;
};

TEST_F(SecretKeyTest, JavaSecretBagsRestoreAsSensitiveSecretKeysWithTheirIdentity) {
    ASSERT_NO_FATAL_FAILURE(write_test_pfx(file_, {}, kTestPassword, kJavaSecrets));
    const RunResult result = restore(token_, file_, {});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_NE(result.out.find("Restored 3 of 3 keys"), std::string::npos) << result.out;
    EXPECT_EQ(result.err.find("secretBag"), std::string::npos) << result.err;

    auto session = token_.open_session();
    const std::pair<std::string, CK_KEY_TYPE> expected[] = {
        {"aes entry", CKK_AES}, {"hmac entry", CKK_GENERIC_SECRET}, {"des3 entry", CKK_DES3}};
    for (std::size_t i = 0; i < 3; ++i) {
        CK_OBJECT_HANDLE key = secret_key(*session, expected[i].first);
        ASSERT_NE(key, CK_INVALID_HANDLE);
        EXPECT_EQ(key_type_of(*session, key), expected[i].second);
        EXPECT_EQ(id_of(*session, key), kJavaSecrets[i].id);
        EXPECT_EQ(session->get_bool(key, CKA_SENSITIVE), true);
        EXPECT_EQ(session->get_bool(key, CKA_EXTRACTABLE), false);
        EXPECT_EQ(session->get_bool(key, CKA_TOKEN), true);
        EXPECT_EQ(session->get_bool(key, CKA_PRIVATE), true);
        EXPECT_FALSE(session->get_secret(key, CKA_VALUE).has_value());
    }
    // SoftHSM leaves CKA_VALUE_LEN 0 (AES, HMAC) or absent (DES3) after C_UnwrapKey: the
    // key's bytes are checked by what it computes.
    expect_keys_compute(*session, kJavaSecrets);
}

// The same on every backend that needs nothing started (NSS softoken unwraps them).
class SecretKeyBackendTest : public SecretKeyTest, public ::testing::WithParamInterface<Backend> {
protected:
    SecretKeyBackendTest() : SecretKeyTest(GetParam()) {}
};

TEST_P(SecretKeyBackendTest, JavaSecretBagsRestoreAndComputeAsTheFilesKeys) {
    ASSERT_NO_FATAL_FAILURE(write_test_pfx(file_, {}, kTestPassword, kJavaSecrets));
    const auto before = token_.objects();
    const RunResult result = restore(token_, file_, {});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_NE(result.out.find("Restored 3 of 3 keys"), std::string::npos) << result.out;
    EXPECT_EQ(count_class(token_.objects(), CKO_SECRET_KEY), count_class(before, CKO_SECRET_KEY) + 3);
    auto session = token_.open_session();
    for (const PfxSecret& secret : kJavaSecrets) {
        CK_OBJECT_HANDLE key = secret_key(*session, secret.label);
        ASSERT_NE(key, CK_INVALID_HANDLE);
        EXPECT_EQ(session->get_bool(key, CKA_SENSITIVE), true);
        EXPECT_EQ(session->get_bool(key, CKA_EXTRACTABLE), false);
    }
    expect_keys_compute(*session, kJavaSecrets);
}

INSTANTIATE_TEST_SUITE_P(Backends, SecretKeyBackendTest, all_backends(), BackendParamName());

TEST_F(SecretKeyTest, JsonDryRunAndRecordsCountSecretKeys) {
    ASSERT_NO_FATAL_FAILURE(write_test_pfx(file_, {}, kTestPassword, kJavaSecrets));
    const auto before = token_.objects();
    const RunResult dry = restore(token_, file_, {"--dry-run"});
    ASSERT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_NE(dry.out.find("Dry run: would restore 3 of 3 keys"), std::string::npos) << dry.out;
    EXPECT_EQ(token_.objects(), before);

    const RunResult result = restore(token_, file_, {"--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json report = stdout_json(result);
    ASSERT_EQ(report.at("keys").size(), 3u) << report.dump(2);
    EXPECT_EQ(report["keys"][0]["type"], "AES-256");
    EXPECT_EQ(report["keys"][0]["status"], "restored");
    EXPECT_EQ(report["keys"][0]["path"], "host-decrypt");
    EXPECT_EQ(report["keys"][1]["type"], "GENERIC-SECRET-256 (HmacSHA256)");
    EXPECT_EQ(report["keys"][2]["type"], "DES3");
    EXPECT_EQ(count_class(token_.objects(), CKO_SECRET_KEY), 3u);

    // Restoring again: each secret key conflicts with itself, named; nothing written.
    const auto after = token_.objects();
    const RunResult again = restore(token_, file_, {});
    EXPECT_EQ(again.exit_code, 6) << again.err;
    EXPECT_NE(again.err.find("secret key id=54696d652031 label=\"aes entry\" is already on the token"),
              std::string::npos)
        << again.err;
    EXPECT_EQ(token_.objects(), after);
}

TEST_F(SecretKeyTest, ASecretP11vaultCannotRestoreIsRefusedUnlessSkipUnsupported) {
    std::vector<PfxSecret> secrets = kJavaSecrets;
    secrets.push_back({"1.3.6.1.4.1.99999.1", pattern(16, 9), {0x09}, "unknown secret"});
    ASSERT_NO_FATAL_FAILURE(write_test_pfx(file_, {}, kTestPassword, secrets));
    const auto before = token_.objects();
    const RunResult refused = restore(token_, file_, {});
    EXPECT_EQ(refused.exit_code, 6) << refused.err;
    EXPECT_NE(refused.err.find("secret bag 4 (id=09 label=\"unknown secret\"): secret key algorithm "
                               "1.3.6.1.4.1.99999.1 is not one p11vault can put on a token"),
              std::string::npos)
        << refused.err;
    EXPECT_NE(refused.err.find("nothing was written (--skip-unsupported restores the rest)"), std::string::npos);
    EXPECT_EQ(token_.objects(), before);

    const RunResult skipped = restore(token_, file_, {"--skip-unsupported"});
    ASSERT_EQ(skipped.exit_code, 0) << skipped.err;
    EXPECT_NE(skipped.out.find("Restored 3 of 4 keys"), std::string::npos) << skipped.out;
    EXPECT_NE(skipped.err.find("skipped secret bag 4"), std::string::npos) << skipped.err;
    EXPECT_EQ(count_class(token_.objects(), CKO_SECRET_KEY), 3u);
}

TEST_F(SecretKeyTest, ASecretBagNotInJavasFormIsRefusedNotDropped) {
    std::vector<PfxSecret> secrets = {kJavaSecrets[0], {"", pattern(16, 5), {0x0f}, "opaque secret"}};
    ASSERT_NO_FATAL_FAILURE(write_test_pfx(file_, {}, kTestPassword, secrets));
    const auto before = token_.objects();
    const RunResult refused = restore(token_, file_, {});
    EXPECT_EQ(refused.exit_code, 6) << refused.err;
    EXPECT_NE(refused.err.find("cannot restore bag 2 (a secretBag of type pkcs7-data, not a PKCS#8 key as Java "
                               "writes it); nothing was written"),
              std::string::npos)
        << refused.err;
    EXPECT_EQ(token_.objects(), before);

    const RunResult skipped = restore(token_, file_, {"--skip-unsupported"});
    ASSERT_EQ(skipped.exit_code, 0) << skipped.err;
    EXPECT_NE(skipped.out.find("Restored 1 of 1 key"), std::string::npos) << skipped.out;
    EXPECT_NE(skipped.err.find("skipped bag 2 (a secretBag of type pkcs7-data"), std::string::npos) << skipped.err;
}

// Generates a token secret key with C_GenerateKey.
CK_OBJECT_HANDLE generate_secret(pkcs11::Session& session, CK_MECHANISM_TYPE mechanism, CK_KEY_TYPE key_type,
                                 CK_ULONG length, const pkcs11::Bytes& id, const std::string& label, bool extractable) {
    pkcs11::AttributeTemplate t;
    t.add_class(CKO_SECRET_KEY)
        .add_key_type(key_type)
        .add_bool(CKA_TOKEN, true)
        .add_bool(CKA_PRIVATE, true)
        .add_bool(CKA_SENSITIVE, true)
        .add_bool(CKA_EXTRACTABLE, extractable)
        .add_bool(CKA_ENCRYPT, key_type != CKK_GENERIC_SECRET)
        .add_bool(CKA_SIGN, key_type == CKK_GENERIC_SECRET)
        .add_bytes(CKA_ID, id)
        .add_string(CKA_LABEL, label);
    if (length != 0) t.add_ulong(CKA_VALUE_LEN, length);
    return session.generate_key(pkcs11::Mechanism(mechanism), t);
}

TEST_F(SecretKeyTest, BackupWritesExtractableSecretKeysAndRestoreBringsThemBack) {
    pkcs11::Bytes aes_ciphertext;
    {
        auto session = token_.open_session();
        CK_OBJECT_HANDLE aes = generate_secret(*session, CKM_AES_KEY_GEN, CKK_AES, 32, {0x0a}, "backup aes", true);
        generate_secret(*session, CKM_GENERIC_SECRET_KEY_GEN, CKK_GENERIC_SECRET, 32, {0x0b}, "backup hmac", true);
        generate_secret(*session, CKM_DES3_KEY_GEN, CKK_DES3, 0, {0x0c}, "backup des3", true);
        aes_ciphertext = session->encrypt(pkcs11::Mechanism(CKM_AES_ECB), aes, pkcs11::Bytes(16, 0));
    }
    const std::string out = token_.dir() + "/secrets-backup.p12";
    const RunResult backed_up = backup(token_, out, {"--all", "--json"});
    ASSERT_EQ(backed_up.exit_code, 0) << backed_up.err;
    const json report = stdout_json(backed_up);
    ASSERT_EQ(report.at("keys").size(), 3u) << report.dump(2);
    EXPECT_EQ(report["keys"][0]["type"], "AES-256");
    EXPECT_EQ(report["keys"][0]["path"], "host-reencrypt");

    TestToken target(Backend::softhsm);
    const RunResult restored = restore(target, out, {});
    ASSERT_EQ(restored.exit_code, 0) << restored.err;
    EXPECT_NE(restored.out.find("Restored 3 of 3 keys"), std::string::npos) << restored.out;
    auto session = target.open_session();
    CK_OBJECT_HANDLE aes = secret_key(*session, "backup aes");
    ASSERT_NE(aes, CK_INVALID_HANDLE);
    EXPECT_EQ(id_of(*session, aes), pkcs11::Bytes{0x0a});
    EXPECT_EQ(session->encrypt(pkcs11::Mechanism(CKM_AES_ECB), aes, pkcs11::Bytes(16, 0)), aes_ciphertext);
    EXPECT_EQ(key_type_of(*session, secret_key(*session, "backup hmac")), static_cast<CK_KEY_TYPE>(CKK_GENERIC_SECRET));
    EXPECT_EQ(key_type_of(*session, secret_key(*session, "backup des3")), static_cast<CK_KEY_TYPE>(CKK_DES3));
}

TEST_F(SecretKeyTest, ANonExtractableSecretKeyIsRefusedUnlessSkipUnsupported) {
    {
        auto session = token_.open_session();
        generate_secret(*session, CKM_AES_KEY_GEN, CKK_AES, 16, {0x01}, "kept aes", false);
        generate_secret(*session, CKM_AES_KEY_GEN, CKK_AES, 16, {0x02}, "movable aes", true);
    }
    const std::string out = token_.dir() + "/refused.p12";
    const RunResult refused = backup(token_, out, {"--all"});
    EXPECT_EQ(refused.exit_code, 6) << refused.err;
    EXPECT_NE(refused.err.find("secret key id=01 label=\"kept aes\": the secret key is not extractable "
                               "(CKA_EXTRACTABLE=FALSE)"),
              std::string::npos)
        << refused.err;
    EXPECT_FALSE(file_exists(out));

    const RunResult skipped = backup(token_, out, {"--all", "--skip-unsupported"});
    ASSERT_EQ(skipped.exit_code, 0) << skipped.err;
    EXPECT_NE(skipped.out.find("Backed up 1 key"), std::string::npos) << skipped.out;
    EXPECT_NE(skipped.err.find("left on the token: secret key id=01"), std::string::npos) << skipped.err;

    const RunResult wrap_only = backup(token_, token_.dir() + "/wrap-only.p12", {"--label", "movable aes",
                                                                                 "--token-wrap-only"});
    EXPECT_EQ(wrap_only.exit_code, 6) << wrap_only.err;
    EXPECT_NE(wrap_only.err.find("--token-wrap-only: a secret key's bag is a PrivateKeyInfo around the key"),
              std::string::npos)
        << wrap_only.err;
}

TEST_F(SecretKeyTest, MigrateMovesAnExtractableSecretKeyAndProvesItArrived) {
    pkcs11::Bytes ciphertext;
    {
        auto session = token_.open_session();
        CK_OBJECT_HANDLE aes = generate_secret(*session, CKM_AES_KEY_GEN, CKK_AES, 16, {0x4d}, "migrated aes", true);
        ciphertext = session->encrypt(pkcs11::Mechanism(CKM_AES_ECB), aes, pkcs11::Bytes(16, 0));
    }
    TestToken target(Backend::softhsm, "secret-migrate-to");
    RunOptions options;
    add_env_entries(options, token_.env_for_child());
    const RunResult moved = run_p11vault(
        {"migrate", "--all", "--json", "--from-module", token_.module_path(), "--from-token-label", token_.label(),
         "--from-pin", "file:" + token_.write_pin_file(), "--to-module", target.module_path(), "--to-token-label",
         target.label(), "--to-pin", "file:" + target.write_pin_file()},
        options);
    ASSERT_EQ(moved.exit_code, 0) << moved.out << moved.err;
    EXPECT_EQ(stdout_json(moved).at("keys").size(), 1u) << moved.out;
    auto session = target.open_session();
    CK_OBJECT_HANDLE aes = secret_key(*session, "migrated aes");
    ASSERT_NE(aes, CK_INVALID_HANDLE);
    EXPECT_EQ(session->encrypt(pkcs11::Mechanism(CKM_AES_ECB), aes, pkcs11::Bytes(16, 0)), ciphertext);
}

TEST_F(SecretKeyTest, ListShowsSecretKeys) {
    {
        auto session = token_.open_session();
        generate_secret(*session, CKM_AES_KEY_GEN, CKK_AES, 32, {0x0d}, "listed aes", true);
    }
    RunOptions options;
    add_env_entries(options, token_.env_for_child());
    std::vector<std::string> argv = {"list"};
    for (const auto& arg : token_.cli_token_args()) argv.push_back(arg);
    argv.insert(argv.end(), {"--pin", "file:" + token_.write_pin_file(), "--json"});
    const RunResult listed = run_p11vault(argv, options);
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    EXPECT_NE(listed.out.find("listed aes"), std::string::npos) << listed.out;
    EXPECT_NE(listed.out.find("secret-key"), std::string::npos) << listed.out;
}

}  // namespace
}  // namespace p11vault::testing
