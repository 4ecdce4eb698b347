// SPDX-License-Identifier: Apache-2.0
// Producers made at test time (issue 20 item 5): pyca/cryptography's
// serialize_key_and_certificates with its encryption builder (AES/3DES, SHA-256/SHA-1
// MAC, a chain, key only, NoEncryption) and Java keytool under its
// -J-Dkeystore.pkcs12.* settings (legacy, NONE certificate protection, HmacPBESHA256,
// no MAC, secret-key entries). Each file is verified and restored into SoftHSM, and the
// restored keys are used by real clients: Java's SunPKCS11 (`keytool -list` shows the
// entry with its chain, `keytool -certreq` signs a request that verifies) and GnuTLS
// (`certtool --generate-certificate --load-ca-privkey pkcs11:...` issues a certificate
// that verifies against the CA). Backups of secret keys open in keytool as
// SecretKeyEntry. A missing tool skips, except under CI=true, where it fails.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"
#include "tests/support/token_daemons.hpp"

namespace p11vault::testing {
namespace {

using nlohmann::json;

const std::string kPycaScript = std::string(P11VAULT_SOURCE_DIR) + "/tests/interop/producers/pyca_pkcs12.py";

// Why a producer cannot run here (empty: it can): the program is missing, or for pyca the
// Debian package's module.
std::string missing(const std::string& producer) {
    if (producer == "pyca") {
        const RunResult result = run_tool({"/usr/bin/python3", "-c", "import cryptography"});
        return result.exit_code == 0 ? "" : "python3-cryptography is not installed";
    }
    const RunResult result = run_tool({"sh", "-c", "command -v " + producer});
    return result.exit_code == 0 ? "" : producer + " is not installed";
}

// Skips the test when a producer is missing; under CI=true fails it (scripts/setup's test
// group installs them all).
#define REQUIRE_PRODUCER(producer)                                                          \
    do {                                                                                    \
        const std::string why_missing = missing(producer);                                  \
        if (!why_missing.empty()) {                                                         \
            if (running_in_ci()) FAIL() << why_missing << " (CI=true: every producer must run)"; \
            GTEST_SKIP() << why_missing;                                                    \
        }                                                                                   \
    } while (false)

class ProducerTest : public ::testing::Test {
protected:
    ProducerTest() : token_(Backend::softhsm), work_(token_.dir() + "/producers") {
        std::filesystem::create_directories(work_);
    }

    std::string path(const std::string& name) const { return work_ + "/" + name; }

    void tool(const std::vector<std::string>& argv, const std::string& password = kTestPassword) {
        const RunResult result = run_tool(token_, argv, password);
        ASSERT_EQ(result.exit_code, 0) << argv[0] << " failed:\n" << result.out << result.err;
    }

    // pyca_pkcs12.py MODE: the file, and the CA certificate in ca.pem.
    std::string pyca(const std::string& mode, const std::string& password = kTestPassword) {
        const std::string file = path("pyca-" + mode + ".p12");
        tool({"/usr/bin/python3", kPycaScript, mode, file, path("ca.pem")}, password);
        return file;
    }

    // keytool -genkeypair of an RSA-2048 self-signed entry under `settings` (-J-D...).
    std::string keytool_pair(const std::string& name, const std::vector<std::string>& settings) {
        const std::string store = path(name + ".p12");
        std::vector<std::string> argv = {"keytool"};
        argv.insert(argv.end(), settings.begin(), settings.end());
        argv.insert(argv.end(), {"-genkeypair", "-storetype", "PKCS12", "-keystore", store, "-storepass:env",
                                 kPasswordVariable, "-alias", name, "-keyalg", "RSA", "-keysize", "2048", "-dname",
                                 "CN=" + name, "-validity", "2"});
        tool(argv);
        return store;
    }

    // verify --json (the counts, and `warning` among its warnings when given), then
    // restore --json: every key restored and signing for its certificate.
    void verify_and_restore(const std::string& file, std::size_t keys, std::size_t certificates,
                            const std::string& warning = "", const std::string& password = kTestPassword) {
        RunOptions options;
        options.env[kPasswordVariable] = password;
        const RunResult verified = run_p11vault(
            {"verify", "--in", file, "--password", std::string("env:") + kPasswordVariable, "--json"}, options);
        ASSERT_EQ(verified.exit_code, 0) << verified.err;
        const json report = stdout_json(verified);
        EXPECT_EQ(report.at("keys").size(), keys) << report.dump(2);
        EXPECT_EQ(report.at("certificates").size(), certificates) << report.dump(2);
        if (!warning.empty()) {
            EXPECT_NE(report.at("warnings").dump().find(warning), std::string::npos) << report.dump(2);
        }

        const auto before = token_.objects();
        const RunResult restored = restore(token_, file, {"--json"}, password);
        ASSERT_EQ(restored.exit_code, 0) << restored.err;
        const json restore_report = stdout_json(restored);
        if (certificates > 0) {
            expect_every_key_signs(token_, file, password, restore_report, keys);
        } else {
            ASSERT_EQ(restore_report.at("keys").size(), keys);
            for (const auto& key : restore_report.at("keys")) EXPECT_EQ(key.at("status"), "restored");
        }
        const auto after = token_.objects();
        EXPECT_EQ(count_class(after, CKO_PRIVATE_KEY), count_class(before, CKO_PRIVATE_KEY) + keys);
        EXPECT_EQ(count_class(after, CKO_CERTIFICATE), count_class(before, CKO_CERTIFICATE) + certificates);
    }

    // A SunPKCS11 configuration for the token's slot. By slotListIndex, the slot's place
    // in C_GetSlotList(CK_FALSE) as SunPKCS11 asks for it: SoftHSM's slot ids are random
    // 32-bit numbers, which `slot =` does not take above 2^31.
    std::string sunpkcs11_config() {
        const auto slots = token_.module()->slots(/*with_token_only=*/false);
        const auto at = std::find(slots.begin(), slots.end(), token_.slot());
        EXPECT_NE(at, slots.end());
        const std::string config = path("sunpkcs11.cfg");
        write_text(config, "name = p11vault\nlibrary = " + token_.module_path() + "\nslotListIndex = " +
                               std::to_string(at - slots.begin()) + "\n");
        return config;
    }

    // keytool against the token through SunPKCS11 (the PIN in $P11VAULT_TEST_PW).
    RunResult sunpkcs11_keytool(const std::vector<std::string>& args) {
        std::vector<std::string> argv = {"keytool"};
        argv.insert(argv.end(), args.begin(), args.end());
        argv.insert(argv.end(), {"-storetype", "PKCS11", "-keystore", "NONE", "-providerClass",
                                 "sun.security.pkcs11.SunPKCS11", "-providerArg", sunpkcs11_config(),
                                 "-storepass:env", kPasswordVariable});
        return run_tool(token_, argv, token_.user_pin());
    }

    TestToken token_;
    std::string work_;
};

// --- pyca/cryptography ---------------------------------------------------------------

struct PycaCase {
    std::string mode;
    std::size_t certificates;
    std::string warning;
};

class PycaProducerTest : public ProducerTest, public ::testing::WithParamInterface<PycaCase> {};

TEST_P(PycaProducerTest, VerifiesRestoresAndSigns) {
    REQUIRE_PRODUCER("pyca");
    const PycaCase& c = GetParam();
    const std::string password = c.mode == "none" ? "" : kTestPassword;
    const std::string file = pyca(c.mode, password);
    ASSERT_FALSE(HasFatalFailure());
    verify_and_restore(file, 1, c.certificates, c.warning, password);
}

INSTANTIATE_TEST_SUITE_P(Pyca, PycaProducerTest,
                         ::testing::Values(PycaCase{"best", 1, ""}, PycaCase{"aes-sha256", 1, ""},
                                           PycaCase{"3des-sha1", 1, "the MAC uses SHA-1"},
                                           PycaCase{"none", 1, ""}, PycaCase{"chain", 2, ""},
                                           PycaCase{"key-only", 0, "has no certificate"}),
                         [](const ::testing::TestParamInfo<PycaCase>& info) {
                             std::string name = info.param.mode;
                             for (char& ch : name)
                                 if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                             return name;
                         });

// --- keytool settings -------------------------------------------------------------------

struct KeytoolCase {
    std::string name;
    std::vector<std::string> settings;
    std::string warning;
};

class KeytoolSettingsTest : public ProducerTest, public ::testing::WithParamInterface<KeytoolCase> {};

TEST_P(KeytoolSettingsTest, VerifiesRestoresAndSigns) {
    REQUIRE_PRODUCER("keytool");
    const KeytoolCase& c = GetParam();
    const std::string store = keytool_pair(c.name, c.settings);
    ASSERT_FALSE(HasFatalFailure());
    verify_and_restore(store, 1, 1, c.warning);
}

INSTANTIATE_TEST_SUITE_P(
    Keytool, KeytoolSettingsTest,
    ::testing::Values(
        KeytoolCase{"legacy", {"-J-Dkeystore.pkcs12.legacy"}, "the MAC uses SHA-1"},
        KeytoolCase{"cert_protection_none", {"-J-Dkeystore.pkcs12.certProtectionAlgorithm=NONE"}, ""},
        KeytoolCase{"hmacpbesha256",
                    {"-J-Dkeystore.pkcs12.macAlgorithm=HmacPBESHA256",
                     "-J-Dkeystore.pkcs12.keyProtectionAlgorithm=PBEWithHmacSHA256AndAES_128"},
                    ""},
        KeytoolCase{"no_mac",
                    {"-J-Dkeystore.pkcs12.macAlgorithm=NONE", "-J-Dkeystore.pkcs12.certProtectionAlgorithm=NONE"},
                    "no MAC"}),
    [](const ::testing::TestParamInfo<KeytoolCase>& info) { return info.param.name; });

// --- secret keys: keytool -genseckey in, keytool -list out --------------------------------

TEST_F(ProducerTest, KeytoolSecretKeyEntriesRestoreAsSecretKeysSunPkcs11Lists) {
    REQUIRE_PRODUCER("keytool");
    const std::string store = path("secrets.p12");
    for (const auto& [alias, algorithm, size] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"java aes", "AES", "256"}, {"java hmac", "HmacSHA256", "256"}, {"java des3", "DESede", "168"}})
        tool({"keytool", "-genseckey", "-storetype", "PKCS12", "-keystore", store, "-storepass:env", kPasswordVariable,
              "-alias", alias, "-keyalg", algorithm, "-keysize", size});
    const auto before = token_.objects();
    const RunResult restored = restore(token_, store, {});
    ASSERT_EQ(restored.exit_code, 0) << restored.err;
    EXPECT_NE(restored.out.find("Restored 3 of 3 keys"), std::string::npos) << restored.out;
    EXPECT_EQ(restored.err.find("warning"), std::string::npos) << restored.err;
    EXPECT_EQ(count_class(token_.objects(), CKO_SECRET_KEY), count_class(before, CKO_SECRET_KEY) + 3);

    auto session = token_.open_session();
    for (const auto& [label, key_type] : std::vector<std::pair<std::string, CK_KEY_TYPE>>{
             {"java aes", CKK_AES}, {"java hmac", CKK_GENERIC_SECRET}, {"java des3", CKK_DES3}}) {
        pkcs11::AttributeTemplate match;
        match.add_class(CKO_SECRET_KEY).add_string(CKA_LABEL, label);
        const auto found = session->find(match);
        ASSERT_EQ(found.size(), 1u) << label;
        EXPECT_EQ(key_type_of(*session, found[0]), key_type) << label;
        // keytool's localKeyID ("Time 1796302903608") is the CKA_ID.
        const pkcs11::Bytes id = id_of(*session, found[0]);
        ASSERT_GE(id.size(), 5u) << label;
        EXPECT_EQ(pkcs11::Bytes(id.begin(), id.begin() + 5), pkcs11::Bytes({'T', 'i', 'm', 'e', ' '})) << label;
        EXPECT_EQ(session->get_bool(found[0], CKA_EXTRACTABLE), false) << label;
    }
    session.reset();
    // A Java application on the token sees them as secret keys.
    const RunResult listed = sunpkcs11_keytool({"-list"});
    ASSERT_EQ(listed.exit_code, 0) << listed.out << listed.err;
    EXPECT_EQ(occurrences(listed.out, "SecretKeyEntry"), 3u) << listed.out;
}

TEST_F(ProducerTest, BackedUpSecretKeysAreSecretKeyEntriesForKeytoolAndComeBackTheSame) {
    REQUIRE_PRODUCER("keytool");
    pkcs11::Bytes ciphertext;
    {
        auto session = token_.open_session();
        pkcs11::AttributeTemplate t;
        t.add_class(CKO_SECRET_KEY)
            .add_key_type(CKK_AES)
            .add_ulong(CKA_VALUE_LEN, 32)
            .add_bool(CKA_TOKEN, true)
            .add_bool(CKA_PRIVATE, true)
            .add_bool(CKA_SENSITIVE, true)
            .add_bool(CKA_EXTRACTABLE, true)
            .add_bool(CKA_ENCRYPT, true)
            .add_bytes(CKA_ID, pkcs11::Bytes{0x5e})
            .add_string(CKA_LABEL, "token aes");
        CK_OBJECT_HANDLE aes = session->generate_key(pkcs11::Mechanism(CKM_AES_KEY_GEN), t);
        ciphertext = session->encrypt(pkcs11::Mechanism(CKM_AES_ECB), aes, pkcs11::Bytes(16, 0));
        pkcs11::AttributeTemplate h;
        h.add_class(CKO_SECRET_KEY)
            .add_key_type(CKK_GENERIC_SECRET)
            .add_ulong(CKA_VALUE_LEN, 32)
            .add_bool(CKA_TOKEN, true)
            .add_bool(CKA_SENSITIVE, true)
            .add_bool(CKA_EXTRACTABLE, true)
            .add_bool(CKA_SIGN, true)
            .add_bytes(CKA_ID, pkcs11::Bytes{0x5f})
            .add_string(CKA_LABEL, "token hmac");
        session->generate_key(pkcs11::Mechanism(CKM_GENERIC_SECRET_KEY_GEN), h);
    }
    for (const std::string profile : {"modern", "legacy"}) {
        SCOPED_TRACE(profile);
        const std::string file = path("secret-backup-" + profile + ".p12");
        const RunResult backed_up = backup(token_, file, {"--all", "--profile", profile});
        ASSERT_EQ(backed_up.exit_code, 0) << backed_up.err;
        const RunResult listed = run_tool({"keytool", "-list", "-storetype", "PKCS12", "-keystore", file,
                                           "-storepass:env", kPasswordVariable});
        ASSERT_EQ(listed.exit_code, 0) << listed.out << listed.err;
        EXPECT_EQ(occurrences(listed.out, "SecretKeyEntry"), 2u) << listed.out;
        EXPECT_NE(listed.out.find("token aes"), std::string::npos) << listed.out;

        // Java reads the key bytes: a copy keytool writes restores to the same key.
        const std::string copy = path("keytool-copy-" + profile + ".p12");
        tool({"keytool", "-importkeystore", "-noprompt", "-srckeystore", file, "-srcstoretype", "PKCS12",
              "-srcstorepass:env", kPasswordVariable, "-destkeystore", copy, "-deststoretype", "PKCS12",
              "-deststorepass:env", kPasswordVariable});
        TestToken target(Backend::softhsm, "keytool-copy-" + profile);
        const RunResult restored = restore(target, copy, {});
        ASSERT_EQ(restored.exit_code, 0) << restored.err;
        auto session = target.open_session();
        pkcs11::AttributeTemplate match;
        match.add_class(CKO_SECRET_KEY).add_string(CKA_LABEL, "token aes");
        const auto found = session->find(match);
        ASSERT_EQ(found.size(), 1u);
        EXPECT_EQ(session->encrypt(pkcs11::Mechanism(CKM_AES_ECB), found[0], pkcs11::Bytes(16, 0)), ciphertext);
    }
}

// --- real clients of the restored keys ------------------------------------------------

TEST_F(ProducerTest, SunPkcs11ShowsTheRestoredEntryWithItsChainAndSignsWithIt) {
    REQUIRE_PRODUCER("pyca");
    REQUIRE_PRODUCER("keytool");
    const std::string file = pyca("chain");
    ASSERT_FALSE(HasFatalFailure());
    const RunResult restored = restore(token_, file, {});
    ASSERT_EQ(restored.exit_code, 0) << restored.err;

    const RunResult listed = sunpkcs11_keytool({"-list", "-v", "-alias", "pyca chain"});
    ASSERT_EQ(listed.exit_code, 0) << listed.out << listed.err;
    EXPECT_NE(listed.out.find("Entry type: PrivateKeyEntry"), std::string::npos) << listed.out;
    EXPECT_NE(listed.out.find("Certificate chain length: 2"), std::string::npos) << listed.out;
    EXPECT_NE(listed.out.find("CN=pyca CA"), std::string::npos) << listed.out;

    // Java signs a certificate request with the token key; OpenSSL verifies its signature.
    const std::string request = path("sunpkcs11.csr");
    const RunResult signed_request = sunpkcs11_keytool({"-certreq", "-alias", "pyca chain", "-file", request});
    ASSERT_EQ(signed_request.exit_code, 0) << signed_request.out << signed_request.err;
    const RunResult verified = run_tool({"openssl", "req", "-in", request, "-verify", "-noout"});
    EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
    EXPECT_NE((verified.out + verified.err).find("verify OK"), std::string::npos) << verified.out << verified.err;
}

TEST_F(ProducerTest, GnutlsCerttoolIssuesACertificateWithTheRestoredCaKey) {
    REQUIRE_PRODUCER("pyca");
    REQUIRE_PRODUCER("certtool");
    const std::string file = pyca("ca");
    ASSERT_FALSE(HasFatalFailure());
    const RunResult restored = restore(token_, file, {"--json"});
    ASSERT_EQ(restored.exit_code, 0) << restored.err;
    const std::string id = stdout_json(restored).at("keys").at(0).at("id");

    const std::string leaf_key = path("gnutls-leaf.key"), leaf = path("gnutls-leaf.pem"), templ = path("leaf.tmpl");
    write_text(templ, "cn = \"issued by the restored CA\"\nexpiration_days = 1\nsigning_key\n");
    tool({"certtool", "--generate-privkey", "--key-type", "ecdsa", "--curve", "secp256r1", "--outfile", leaf_key});
    const std::string ca_uri = "pkcs11:token=" + pct_text(token_.label()) + ";id=" + pct_bytes(bytes_from_hex(id)) +
                               ";type=private";
    RunOptions options;
    add_env_entries(options, token_.env_for_child());
    options.env["GNUTLS_PIN"] = token_.user_pin();
    const RunResult issued = run({"certtool", "--provider", token_.module_path(), "--generate-certificate",
                                  "--load-privkey", leaf_key, "--load-ca-certificate", path("ca.pem"),
                                  "--load-ca-privkey", ca_uri, "--template", templ, "--outfile", leaf},
                                 options);
    ASSERT_EQ(issued.exit_code, 0) << issued.out << issued.err;
    const RunResult verified = run_tool({"openssl", "verify", "-CAfile", path("ca.pem"), leaf});
    EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
    EXPECT_NE(verified.out.find(": OK"), std::string::npos) << verified.out;
}

}  // namespace
}  // namespace p11vault::testing
