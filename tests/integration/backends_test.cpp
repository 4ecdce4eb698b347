// SPDX-License-Identifier: Apache-2.0
// Every PKCS#11 implementation the suite can run (issue 18): SoftHSM, NSS softoken,
// openCryptoki's soft token, tpm2-pkcs11 on a TPM simulator, a card-like SoftHSM and
// SoftHSM through the p11-kit proxy. Per backend and key type: backup, verify against the
// token, restore (after the originals are gone) with signatures checked against the
// original certificate, the flags of the restored key, a second restore's conflict; what
// each token reports about itself; and what tpm2-pkcs11 refuses. docs/tokens.md is the
// table these tests back.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <openssl/pkcs12.h>

#include <algorithm>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_pfx.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

using nlohmann::json;

enum class KeyType { rsa2048, rsa3072, p256, p384, ed25519 };

std::string key_type_name(KeyType type) {
    switch (type) {
        case KeyType::rsa2048: return "rsa2048";
        case KeyType::rsa3072: return "rsa3072";
        case KeyType::p256: return "p256";
        case KeyType::p384: return "p384";
        case KeyType::ed25519: return "ed25519";
    }
    return "unknown";
}

// The signing mechanism the test's signature needs (sign_for_openssl).
CK_MECHANISM_TYPE signing_mechanism(KeyType type) {
    switch (type) {
        case KeyType::rsa2048:
        case KeyType::rsa3072: return CKM_RSA_PKCS;
        case KeyType::p256:
        case KeyType::p384: return CKM_ECDSA;
        case KeyType::ed25519: return CKM_EDDSA;
    }
    return CKM_RSA_PKCS;
}

CK_MECHANISM_TYPE generation_mechanism(KeyType type) {
    switch (type) {
        case KeyType::rsa2048:
        case KeyType::rsa3072: return CKM_RSA_PKCS_KEY_PAIR_GEN;
        case KeyType::p256:
        case KeyType::p384: return CKM_EC_KEY_PAIR_GEN;
        case KeyType::ed25519: return CKM_EC_EDWARDS_KEY_PAIR_GEN;
    }
    return CKM_RSA_PKCS_KEY_PAIR_GEN;
}

// What p11vault does with a key of each backend (measured; docs/tokens.md). Empty: the
// backend cannot generate that key type at all.
struct Expected {
    std::optional<std::string> backup_path;   // nothing: backup refuses (exit 6)
    std::optional<std::string> restore_path;  // nothing: restore refuses (exit 6)
};

// Keys are generated CKA_SENSITIVE=TRUE, CKA_EXTRACTABLE=TRUE unless the backend can
// export only non-sensitive ones (then the key is made non-sensitive, as an operator
// would have to, and leaves by attribute-read). tpm2-pkcs11 refuses SENSITIVE and
// EXTRACTABLE together ("Cannot mark object both extractable AND sensitive",
// CKR_ATTRIBUTE_VALUE_INVALID): its keys are made as a TPM makes them, not extractable.
KeyFlags key_flags(Backend backend, KeyType type) {
    if (backend == Backend::tpm2) return {.sensitive = true, .extractable = false};
    const bool non_sensitive = backend == Backend::softhsm_cardlike ||
                               (type == KeyType::ed25519 && (backend == Backend::softhsm || backend == Backend::proxy));
    return {.sensitive = !non_sensitive, .extractable = true};
}

Expected expected_paths(Backend backend, KeyType type) {
    switch (backend) {
        case Backend::softhsm:
        case Backend::proxy:
            if (type == KeyType::ed25519) return {"attribute-read", "host-decrypt"};
            return {"host-reencrypt", "host-decrypt"};
        case Backend::nss: return {"token-wrap", "token-unwrap"};
        case Backend::opencryptoki: return {"token-wrap", "token-unwrap"};
        case Backend::tpm2: return {std::nullopt, std::nullopt};
        case Backend::softhsm_cardlike: return {"attribute-read", "host-decrypt"};
    }
    return {};
}

bool read_bool(pkcs11::Session& session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
    const std::optional<bool> value = session.get_bool(object, type);
    if (!value) throw std::runtime_error("a boolean attribute of the key is not readable");
    return *value;
}

// `p11vault list --json` of the token (list takes no --password).
RunResult list_token(const TestToken& token) {
    std::vector<std::string> args = {"list", "--json", "--pin", "file:" + token.write_pin_file()};
    const auto token_args = token.cli_token_args();
    args.insert(args.end(), token_args.begin(), token_args.end());
    RunOptions options;
    add_env_entries(options, token.env_for_child());
    return run_p11vault(args, options);
}

class BackendKeyTest : public ::testing::TestWithParam<std::tuple<Backend, KeyType>> {
protected:
    Backend backend() const { return std::get<0>(GetParam()); }
    KeyType key_type() const { return std::get<1>(GetParam()); }

    void SetUp() override {
        P11VAULT_REQUIRE_BACKEND(backend());
        token_.emplace(backend());
    }

    // Generates the key and its certificate on the token, or nothing (skipping the test)
    // when the token has no mechanism for the type.
    std::optional<IssuedCert> make_key() {
        auto session = token_->open_session();
        // By the mechanism list: SoftHSM's C_GetMechanismInfo (and C_GenerateKeyPair)
        // still answer for mechanisms its slots.mechanisms leaves out of the list.
        const auto offered = token_->module()->mechanisms(token_->slot());
        for (CK_MECHANISM_TYPE needed : {generation_mechanism(key_type()), signing_mechanism(key_type())}) {
            if (std::none_of(offered.begin(), offered.end(), [&](const auto& entry) { return entry.type == needed; }))
                return std::nullopt;
        }
        const KeyFlags flags = key_flags(backend(), key_type());
        switch (key_type()) {
            case KeyType::rsa2048: key_ = generate_rsa(*session, 2048, {0x0b, 0x01}, "backends key", flags); break;
            case KeyType::rsa3072: key_ = generate_rsa(*session, 3072, {0x0b, 0x01}, "backends key", flags); break;
            case KeyType::p256: key_ = generate_ec(*session, "P-256", {0x0b, 0x01}, "backends key", flags); break;
            case KeyType::p384: key_ = generate_ec(*session, "P-384", {0x0b, 0x01}, "backends key", flags); break;
            case KeyType::ed25519: {
                auto made = generate_ed25519(*session, {0x0b, 0x01}, "backends key", flags);
                if (!made) return std::nullopt;
                key_ = *made;
                break;
            }
        }
        return certify(*session, key_);
    }

    std::string path(const std::string& name) const { return token_->dir() + "/" + name; }

    std::optional<TestToken> token_;
    TestKey key_;
};

// Backup, verify against the token, remove the originals, restore, sign: the restored
// key's signature verifies with the original certificate, and it is sensitive and not
// extractable. A dry run before the restore exits as the restore will and writes
// nothing. Then a second restore of the same file conflicts (exit 6) and changes nothing.
TEST_P(BackendKeyTest, BackupVerifyRestoreSignAndConflict) {
    const std::optional<IssuedCert> cert = make_key();
    if (!cert) GTEST_SKIP() << backend_name(backend()) << " cannot generate or sign with " << key_type_name(key_type());
    const Expected expected = expected_paths(backend(), key_type());
    const std::string file = path("backup.p12");

    const RunResult backed_up = backup(*token_, file, {"--all", "--json"});
    if (!expected.backup_path) {
        EXPECT_EQ(backed_up.exit_code, 6) << backed_up.out << backed_up.err;
        return;
    }
    ASSERT_EQ(backed_up.exit_code, 0) << backed_up.err;
    const json backup_report = stdout_json(backed_up);
    ASSERT_EQ(backup_report.at("keys").size(), 1u) << backup_report.dump(2);
    EXPECT_EQ(backup_report.at("keys")[0].at("path"), *expected.backup_path) << backup_report.dump(2);

    // Verify after write: the file holds what the token holds.
    const RunResult verified = run_with_token(*token_, "verify", {"--in", file, "--json"});
    ASSERT_EQ(verified.exit_code, 0) << verified.out << verified.err;
    EXPECT_EQ(stdout_json(verified).at("token_comparison").at("matched"), 1) << verified.out;

    {
        auto session = token_->open_session();
        for (CK_OBJECT_CLASS object_class : {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_CERTIFICATE})
            for (CK_OBJECT_HANDLE object : find_objects(*session, object_class, key_.id)) session->destroy_object(object);
    }
    ASSERT_EQ(token_->object_count(), 0u);

    // The dry run decides as the real run will, and writes nothing.
    const RunResult dry = restore(*token_, file, {"--dry-run"});
    EXPECT_EQ(dry.exit_code, expected.restore_path ? 0 : 6) << dry.out << dry.err;
    EXPECT_EQ(token_->object_count(), 0u) << "the dry run wrote to the token";

    const RunResult restored = restore(*token_, file, {"--json"});
    if (!expected.restore_path) {
        EXPECT_EQ(restored.exit_code, 6) << restored.out << restored.err;
        return;
    }
    ASSERT_EQ(restored.exit_code, 0) << restored.err;
    const json report = stdout_json(restored);
    ASSERT_EQ(report.at("keys").size(), 1u) << report.dump(2);
    EXPECT_EQ(report.at("keys")[0].at("path"), *expected.restore_path) << report.dump(2);
    {
        auto session = token_->open_session();
        const CK_OBJECT_HANDLE key = find_one(*session, CKO_PRIVATE_KEY, key_.id);
        EXPECT_TRUE(token_key_signs_for(*session, key, X509_get0_pubkey(cert->cert.get())))
            << "the restored key's signature does not verify with the original certificate";
        EXPECT_TRUE(read_bool(*session, key, CKA_SENSITIVE)) << "restored key is not CKA_SENSITIVE";
        EXPECT_FALSE(read_bool(*session, key, CKA_EXTRACTABLE)) << "restored key is CKA_EXTRACTABLE";
    }

    const auto before = token_->objects();
    const RunResult again = restore(*token_, file, {});
    EXPECT_EQ(again.exit_code, 6) << again.err;
    EXPECT_NE(again.err.find("--on-conflict"), std::string::npos) << again.err;
    EXPECT_EQ(token_->objects(), before);
}

std::string key_test_name(const ::testing::TestParamInfo<std::tuple<Backend, KeyType>>& info) {
    return backend_name(std::get<0>(info.param)) + "_" + key_type_name(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendKeyTest,
                         ::testing::Combine(every_backend(),
                                            ::testing::Values(KeyType::rsa2048, KeyType::rsa3072, KeyType::p256,
                                                              KeyType::p384, KeyType::ed25519)),
                         key_test_name);

// ---------------------------------------------------------------------------------------
// What each implementation reports about itself (C_GetInfo, C_GetTokenInfo), as `list`
// shows it: the strings a quirk table keys on.

struct Identity {
    std::string module_manufacturer;
    std::string module_description;
    std::string token_manufacturer;
    std::string token_model;
};

Identity expected_identity(Backend backend) {
    switch (backend) {
        case Backend::softhsm:
        case Backend::softhsm_cardlike:
            return {"SoftHSM", "Implementation of PKCS11", "SoftHSM project", "SoftHSM v2"};
        case Backend::nss:
            return {"Mozilla Foundation", "NSS Internal Crypto Services", "Mozilla Foundation", "NSS 3"};
        case Backend::opencryptoki: return {"IBM", "Meta PKCS11 LIBRARY", "IBM Corp.", "IBM SoftTok"};
        case Backend::tpm2: return {"tpm2-software.github.io", "TPM2.0 Cryptoki", "IBM", "SW   TPM"};
        case Backend::proxy:
            return {"PKCS#11 Kit", "PKCS#11 Kit Proxy Module", "SoftHSM project", "SoftHSM v2"};
    }
    return {};
}

class BackendTest : public ::testing::TestWithParam<Backend> {
protected:
    void SetUp() override {
        P11VAULT_REQUIRE_BACKEND(GetParam());
        token_.emplace(GetParam());
    }
    std::optional<TestToken> token_;
};

TEST_P(BackendTest, ListReportsTheModuleAndTokenStrings) {
    const RunResult listed = list_token(*token_);
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    const json document = stdout_json(listed);
    const Identity expected = expected_identity(GetParam());
    EXPECT_EQ(document.at("module").at("path"), token_->module_path());
    EXPECT_EQ(document.at("module").at("manufacturer"), expected.module_manufacturer) << document.at("module");
    EXPECT_EQ(document.at("module").at("description"), expected.module_description) << document.at("module");
    EXPECT_EQ(document.at("token").at("label"), token_->label());
    EXPECT_EQ(document.at("token").at("manufacturer"), expected.token_manufacturer) << document.at("token");
    EXPECT_EQ(document.at("token").at("model"), expected.token_model) << document.at("token");
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendTest, every_backend(), BackendParamName());

// ---------------------------------------------------------------------------------------
// tpm2-pkcs11: no wrap or unwrap mechanism, and C_CreateObject of a private key answers
// CKR_ATTRIBUTE_VALUE_INVALID, so neither p11vault path can put a key in; the token's own
// tool can (`tpm2_ptool import`), and list and verify work against what it put there.

// `openssl pkcs12 -export` of a host RSA key and its TestCa certificate.
std::string openssl_file(const std::string& dir, const HostCredential& credential) {
    const std::string file = dir + "/host.p12";
    const RunResult made = run_tool({"openssl", "pkcs12", "-export", "-inkey", credential.key_path, "-in",
                                     credential.cert_path, "-name", "host key", "-out", file, "-passout",
                                     std::string("env:") + kPasswordVariable});
    if (made.exit_code != 0) throw std::runtime_error("openssl pkcs12 -export failed: " + made.err);
    return file;
}

class Tpm2Test : public ::testing::Test {
protected:
    void SetUp() override {
        P11VAULT_REQUIRE_BACKEND(Backend::tpm2);
        token_.emplace(Backend::tpm2);
    }
    std::optional<TestToken> token_;
};

TEST_F(Tpm2Test, RestoreAndDryRunAreRefusedNamingTpm2PtoolImportAndChangeNothing) {
    const HostCredential credential = make_host_credential(token_->dir(), "host", "RSA");
    const std::string file = openssl_file(token_->dir(), credential);
    const auto before = token_->objects();
    for (const std::vector<std::string>& args : {std::vector<std::string>{"--dry-run"}, std::vector<std::string>{}}) {
        SCOPED_TRACE(args.empty() ? "restore" : "restore --dry-run");
        const RunResult result = restore(*token_, file, args);
        EXPECT_EQ(result.exit_code, 6) << result.out << result.err;
        EXPECT_NE(result.err.find("tpm2_ptool import"), std::string::npos) << result.err;
        EXPECT_EQ(token_->objects(), before);
    }
}

// A PKCS#12 file of the key and certificate with localKeyID = `id` (PBES2/AES key bag,
// SHA-256 MAC, 2048 iterations), written in-process: `openssl pkcs12 -export` always
// takes the certificate's SHA-1 as the localKeyID.
void write_p12_with_id(const std::string& path, EVP_PKEY* key, X509* cert, const pkcs11::Bytes& id) {
    write_test_pfx(path, {{key, cert, id, "host key"}});
}

TEST_F(Tpm2Test, ListShowsAKeyImportedWithTpm2PtoolAndVerifyMatchesItsFile) {
    const HostCredential credential = make_host_credential(token_->dir(), "host", "RSA");
    // tpm2_ptool import --id takes text and stores its bytes as the CKA_ID.
    const std::string id_text = "host-key-1";
    const pkcs11::Bytes id_bytes(id_text.begin(), id_text.end());
    const std::string id = hex(id_bytes);
    const std::string file = token_->dir() + "/host.p12";
    ASSERT_NO_FATAL_FAILURE(write_p12_with_id(file, credential.key.get(), credential.cert.get(), id_bytes));
    const RunResult imported = run_tool(*token_, {"tpm2_ptool", "import", "--label", token_->label(), "--key-label",
                                                  "host key", "--id", id_text, "--userpin", token_->user_pin(),
                                                  "--privkey", credential.key_path, "--algorithm", "rsa"});
    ASSERT_EQ(imported.exit_code, 0) << imported.out << imported.err;

    const RunResult listed = list_token(*token_);
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    bool found = false;
    const json listing = stdout_json(listed);
    for (const auto& object : listing.at("objects")) {
        if (object.at("class") == "private-key" && object.at("id") == id) {
            found = true;
            EXPECT_EQ(object.at("algorithm"), "RSA-2048") << object.dump(2);
            EXPECT_EQ(object.at("spki_sha256"), spki_sha256_hex(credential.key.get())) << object.dump(2);
        }
    }
    EXPECT_TRUE(found) << listed.out;

    // The key matches; tpm2_ptool imported no certificate, so the file's certificate is
    // the one difference (exit 4), and the token reports the imported key extractable.
    const RunResult verified = run_with_token(*token_, "verify", {"--in", file, "--json"});
    EXPECT_EQ(verified.exit_code, 4) << verified.out << verified.err;
    const json comparison = stdout_json(verified).at("token_comparison");
    EXPECT_EQ(comparison.at("matched"), 1) << verified.out;
    ASSERT_EQ(comparison.at("incomplete_on_token").size(), 1u) << verified.out;
    EXPECT_NE(comparison.at("incomplete_on_token")[0].get<std::string>().find("without the file's certificate"),
              std::string::npos)
        << verified.out;
    ASSERT_EQ(comparison.at("unprotected_on_token").size(), 1u) << verified.out;
    EXPECT_NE(comparison.at("unprotected_on_token")[0].get<std::string>().find("is extractable"), std::string::npos)
        << verified.out;
}

// migrate onto openCryptoki (issue 18): its C_UnwrapKey ignores the protection asked
// for, so the migrated keys come out sensitive and non-extractable only through the
// read-back and repair, which the key report names.
TEST(OpenCryptokiMigrate, MigratedKeysAreSensitiveAndNotExtractable) {
    P11VAULT_REQUIRE_BACKEND(Backend::opencryptoki);
    TestToken source(Backend::softhsm, "ock-migrate-from");
    TestToken target(Backend::opencryptoki);
    {
        auto session = source.open_session();
        certify(*session, generate_rsa(*session, 2048, {0x51}, "ock-migrated"));
    }
    RunOptions options;
    add_env_entries(options, source.env_for_child());
    add_env_entries(options, target.env_for_child());
    const RunResult moved = run_p11vault(
        {"migrate", "--id", "51", "--json", "--from-module", source.module_path(), "--from-token-label", source.label(),
         "--from-pin", "file:" + source.write_pin_file(), "--to-module", target.module_path(), "--to-token-label",
         target.label(), "--to-pin", "file:" + target.write_pin_file()},
        options);
    ASSERT_EQ(moved.exit_code, 0) << moved.out << moved.err;
    const json document = stdout_json(moved);
    ASSERT_EQ(document.at("keys").size(), 1u) << moved.out;
    EXPECT_EQ(document.at("keys")[0].at("repaired"), json::array({"CKA_SENSITIVE", "CKA_EXTRACTABLE"})) << moved.out;

    auto session = target.open_session(false, true);
    pkcs11::AttributeTemplate match;
    match.add_class(CKO_PRIVATE_KEY).add_bytes(CKA_ID, pkcs11::Bytes{0x51});
    const auto found = session->find(match);
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(session->get_bool(found[0], CKA_SENSITIVE), true);
    EXPECT_EQ(session->get_bool(found[0], CKA_EXTRACTABLE), false);
    EXPECT_FALSE(session->get_secret(found[0], CKA_PRIVATE_EXPONENT).has_value());
}

}  // namespace
}  // namespace p11vault::testing
