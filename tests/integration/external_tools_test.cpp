// SPDX-License-Identifier: Apache-2.0
// Interoperability with the tools an operator has: our backups open in OpenSSL, NSS
// pk12util, Java keytool and GnuTLS certtool; files those tools make (in the test) restore
// and sign; and the promise of issue 5 -- after restoring a CA's PFX, a real client
// (OpenSSL through libp11's pkcs11 engine) issues a certificate with the CA key on the
// token, and `openssl verify` accepts it against the original CA certificate.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

using nlohmann::json;

// --- our files in other tools ----------------------------------------------------------

class OurFileInOtherToolsTest : public ::testing::TestWithParam<std::tuple<Backend, std::string>> {
protected:
    OurFileInOtherToolsTest() : token_(std::get<0>(GetParam())) {
        auto session = token_.open_session();
        certify(*session, generate_rsa(*session, 2048, {0x01}, "rsa entry"));
        certify(*session, generate_ec(*session, "P-256", {0x02}, "ec entry"));
        file_ = token_.dir() + "/ours.p12";
        const RunResult result = backup(token_, file_, {"--all", "--profile", std::get<1>(GetParam())});
        EXPECT_EQ(result.exit_code, 0) << result.err;
        password_file_ = token_.dir() + "/password.txt";
        write_text(password_file_, std::string(kTestPassword) + "\n");
    }

    TestToken token_;
    std::string file_;
    std::string password_file_;
};

TEST_P(OurFileInOtherToolsTest, OpensslReadsItWithoutTheLegacyProvider) {
    const RunResult result = openssl_pkcs12_info(file_);
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(private_keys_in_pem(result.out).size(), 2u) << result.out;
    EXPECT_EQ(certificates_in_pem(result.out).size(), 2u) << result.out;
}

TEST_P(OurFileInOtherToolsTest, NssPk12utilListsAndImportsIt) {
    RunResult result = run_tool({"pk12util", "-l", file_, "-w", password_file_});
    ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
    EXPECT_NE(result.out.find("Friendly Name: rsa entry"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("Friendly Name: ec entry"), std::string::npos) << result.out;
    EXPECT_EQ(occurrences(result.out, "Key(shrouded):"), 2u) << result.out;
    EXPECT_EQ(occurrences(result.out, "Certificate(has private key):"), 2u) << result.out;

    // And NSS decrypts and imports the keys into a database of its own.
    const std::string db = token_.dir() + "/pk12util-import";
    std::filesystem::create_directory(db);
    result = run_tool({"certutil", "-N", "-d", "sql:" + db, "--empty-password"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    result = run_tool({"pk12util", "-i", file_, "-d", "sql:" + db, "-w", password_file_, "-K", ""});
    EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
    result = run_tool({"certutil", "-K", "-d", "sql:" + db});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_NE(result.out.find("rsa entry"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("ec entry"), std::string::npos) << result.out;
}

TEST_P(OurFileInOtherToolsTest, JavaKeytoolListsAndConvertsIt) {
    RunResult result = run_tool({"keytool", "-list", "-storetype", "PKCS12", "-keystore", file_, "-storepass:env",
                                 kPasswordVariable});
    ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
    EXPECT_NE(result.out.find("Your keystore contains 2 entries"), std::string::npos) << result.out;
    EXPECT_EQ(occurrences(result.out, "PrivateKeyEntry"), 2u) << result.out;
    EXPECT_NE(result.out.find("rsa entry"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("ec entry"), std::string::npos) << result.out;

    // -importkeystore decrypts every key (and re-encrypts it in the copy).
    const std::string copy = token_.dir() + "/keytool-copy.p12";
    result = run_tool({"keytool", "-importkeystore", "-noprompt", "-srckeystore", file_, "-srcstoretype", "PKCS12",
                       "-srcstorepass:env", kPasswordVariable, "-destkeystore", copy, "-deststoretype", "PKCS12",
                       "-deststorepass:env", kPasswordVariable});
    EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
    EXPECT_EQ(read_p12(copy).keys().size(), 2u);
}

TEST_P(OurFileInOtherToolsTest, GnutlsCerttoolReadsIt) {
    const RunResult result =
        run_tool({"certtool", "--p12-info", "--inder", "--infile", file_, "--password", kTestPassword});
    ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
    EXPECT_NE(result.out.find("Friendly name: rsa entry"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("Friendly name: ec entry"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("Key ID: 01"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("Key ID: 02"), std::string::npos) << result.out;
    EXPECT_EQ(occurrences(result.out, "BEGIN CERTIFICATE"), 2u) << result.out;
}

std::string our_file_name(const ::testing::TestParamInfo<std::tuple<Backend, std::string>>& info) {
    return backend_name(std::get<0>(info.param)) + "_" + std::get<1>(info.param);
}

INSTANTIATE_TEST_SUITE_P(Tools, OurFileInOtherToolsTest,
                         ::testing::Combine(all_backends(), ::testing::Values(std::string("modern"),
                                                                              std::string("legacy"))),
                         our_file_name);

// --- fips profile: PBMAC1 (issue 20) ------------------------------------------------------

// The file's structure as `openssl asn1parse` shows it has RFC 9579's OIDs, its bags and
// certificate safe PBES2 with AES-256 (as verify reports them); OpenSSL 3.0's
// `openssl pkcs12` cannot check the MAC (what README says), p11vault verifies it (and its
// drill signs with every key) and restores it. (The test helpers that read a file with
// OpenSSL cannot read this one, hence the drill.)
TEST(FipsProfileTest, Pbmac1FileParsesAsRfc9579AndOnlyP11vaultReadsIt) {
    TestToken source(Backend::softhsm, "fips-source");
    {
        auto session = source.open_session();
        certify(*session, generate_rsa(*session, 2048, {0x01}, "fips rsa"));
        certify(*session, generate_ec(*session, "P-256", {0x02}, "fips ec"));
    }
    const std::string file = source.dir() + "/fips.p12";
    const RunResult backed_up = backup(source, file, {"--all", "--profile", "fips", "--json"});
    ASSERT_EQ(backed_up.exit_code, 0) << backed_up.err;
    EXPECT_EQ(stdout_json(backed_up).at("profile"), "fips");

    const RunResult parsed = run_tool({"openssl", "asn1parse", "-inform", "DER", "-in", file});
    ASSERT_EQ(parsed.exit_code, 0) << parsed.err;
    // The MacData: PBMAC1 { PBKDF2 { salt, 1 iteration count, keyLength 32, hmacWithSHA256 },
    // hmacWithSHA256 }, in this order, after the last encrypted content.
    const std::string& text = parsed.out;
    const auto pbmac1 = text.find(":PBMAC1");
    ASSERT_NE(pbmac1, std::string::npos) << text;
    const auto pbkdf2 = text.find(":PBKDF2", pbmac1);
    ASSERT_NE(pbkdf2, std::string::npos) << text;
    const auto key_length = text.find("INTEGER           :20", pbkdf2);  // 32, in hex
    ASSERT_NE(key_length, std::string::npos) << text.substr(pbmac1);
    const auto prf = text.find(":hmacWithSHA256", key_length);
    ASSERT_NE(prf, std::string::npos) << text.substr(pbmac1);
    EXPECT_NE(text.find(":hmacWithSHA256", prf + 1), std::string::npos) << text.substr(pbmac1);

    const RunResult openssl = openssl_pkcs12_info(file);
    if (OpenSSL_version_num() < 0x30400000L) {
        EXPECT_NE(openssl.exit_code, 0) << "OpenSSL before 3.4 read a PBMAC1 file:\n" << openssl.out;
        EXPECT_NE(openssl.err.find("Mac verify error"), std::string::npos) << openssl.err;
    }

    RunOptions options;
    options.env[kPasswordVariable] = kTestPassword;
    const RunResult verified = run_p11vault(
        {"verify", "--in", file, "--password", std::string("env:") + kPasswordVariable, "--drill", "--json"}, options);
    ASSERT_EQ(verified.exit_code, 0) << verified.err;
    const json report = stdout_json(verified);
    EXPECT_EQ(report.at("mac").get<std::string>().rfind("PBMAC1 (PBKDF2-HMAC-SHA256, HMAC-SHA256)", 0), 0u)
        << report.dump(2);
    EXPECT_EQ(report.at("keys").size(), 2u);
    // The bags and the certificate safe: PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC.
    const std::string pbes2_aes256 = std::string("PBES2 PBKDF2-HMAC-SHA256 ") + kFastIterations + " it, AES-256-CBC";
    for (const auto& key : report.at("keys")) EXPECT_EQ(key.at("protection"), pbes2_aes256) << key.dump();
    EXPECT_EQ(report.at("safe_protection"), json::array({pbes2_aes256})) << report.dump(2);
    ASSERT_EQ(report.at("drill").size(), 2u) << report.dump(2);
    for (const auto& drill : report.at("drill")) EXPECT_TRUE(drill.at("ok").get<bool>()) << drill.dump();

    TestToken target(Backend::softhsm, "fips-target");
    const auto before = target.objects();
    const RunResult restored = restore(target, file, {"--json"});
    ASSERT_EQ(restored.exit_code, 0) << restored.err;
    const auto after = target.objects();
    EXPECT_EQ(count_class(after, CKO_PRIVATE_KEY), count_class(before, CKO_PRIVATE_KEY) + 2);
    EXPECT_EQ(count_class(after, CKO_CERTIFICATE), count_class(before, CKO_CERTIFICATE) + 2);
    // A wrong password is exit 3 and leaves the token as it was.
    TestToken untouched(Backend::softhsm, "fips-wrong-password");
    const auto untouched_before = untouched.objects();
    EXPECT_EQ(restore(untouched, file, {}, std::string(kTestPassword) + "x").exit_code, 3);
    EXPECT_EQ(untouched.objects(), untouched_before);
}

// A backup password that is not valid UTF-8 (issue 20 item 4): `openssl pkcs12` opens
// the file with the same bytes, and backup warns that other readers may not.
TEST(OddPasswordBackupTest, OpensslOpensTheFileWithTheSameBytes) {
    TestToken token(Backend::softhsm, "odd-password");
    {
        auto session = token.open_session();
        certify(*session, generate_ec(*session, "P-256", {0x01}, "odd"));
    }
    for (const std::string password : {"\xc3\xa9\xff-and-more", "a\xc0\x80" "b-and-more", "\xed\xa0\x80-and-more"}) {
        for (const std::string profile : {"modern", "legacy"}) {
            SCOPED_TRACE(profile + " " + hex(pkcs11::Bytes(password.begin(), password.end())));
            const std::string file = token.dir() + "/odd-" + profile + ".p12";
            std::filesystem::remove(file);
            const RunResult backed_up = backup(token, file, {"--all", "--profile", profile}, password);
            ASSERT_EQ(backed_up.exit_code, 0) << backed_up.err;
            EXPECT_NE(backed_up.err.find("not valid UTF-8"), std::string::npos) << backed_up.err;
            const RunResult opened = openssl_pkcs12_info(file, password);
            ASSERT_EQ(opened.exit_code, 0) << opened.err;
            EXPECT_EQ(private_keys_in_pem(opened.out).size(), 1u);
        }
    }
}

// --- other tools' files into our tokens ---------------------------------------------------

class TheirFileTest : public ::testing::TestWithParam<Backend> {
protected:
    TheirFileTest() : token_(GetParam()), work_(make_temp_dir("their-files")) {}
    ~TheirFileTest() override { std::filesystem::remove_all(work_); }

    std::string path(const std::string& name) const { return work_ + "/" + name; }

    void tool(const std::vector<std::string>& argv) {
        const RunResult result = run_tool(argv);
        ASSERT_EQ(result.exit_code, 0) << argv[0] << " failed:\n" << result.out << result.err;
    }

    void restore_and_sign(const std::string& file, std::size_t keys) {
        const auto before = token_.objects();
        const RunResult result = restore(token_, file, {"--json"});
        ASSERT_EQ(result.exit_code, 0) << result.err;
        expect_every_key_signs(token_, file, kTestPassword, stdout_json(result), keys);
        const auto after = token_.objects();
        EXPECT_EQ(count_class(after, CKO_PRIVATE_KEY), count_class(before, CKO_PRIVATE_KEY) + keys);
        EXPECT_EQ(count_class(after, CKO_PUBLIC_KEY), count_class(before, CKO_PUBLIC_KEY) + keys);
        EXPECT_GE(count_class(after, CKO_CERTIFICATE), count_class(before, CKO_CERTIFICATE) + keys);
    }

    TestToken token_;
    std::string work_;
};

TEST_P(TheirFileTest, JavaKeytoolStoreRestoresAndSigns) {
    const std::string store = path("keytool.p12");
    for (const auto& entry : std::vector<std::vector<std::string>>{
             {"-alias", "java rsa", "-keyalg", "RSA", "-keysize", "2048", "-dname", "CN=java rsa"},
             {"-alias", "java ec", "-keyalg", "EC", "-groupname", "secp256r1", "-dname", "CN=java ec"}}) {
        std::vector<std::string> argv = {"keytool", "-genkeypair", "-storetype", "PKCS12", "-keystore", store,
                                         "-storepass:env", kPasswordVariable, "-validity", "2"};
        argv.insert(argv.end(), entry.begin(), entry.end());
        tool(argv);
    }
    restore_and_sign(store, 2);
}

TEST_P(TheirFileTest, NssPk12utilExportRestoresAndSigns) {
    const std::string db = path("nssdb");
    std::filesystem::create_directory(db);
    const std::string db_password = path("db-password.txt");
    write_text(db_password, "nss db password\n");
    const std::string file_password = path("file-password.txt");
    write_text(file_password, std::string(kTestPassword) + "\n");
    const std::string noise = path("noise");
    write_text(noise, std::string(64, 'x') + "some noise for certutil's generator");
    tool({"certutil", "-N", "-d", "sql:" + db, "-f", db_password});
    tool({"certutil", "-S", "-d", "sql:" + db, "-f", db_password, "-z", noise, "-n", "nss rsa", "-s", "CN=nss rsa",
          "-x", "-t", "CT,,", "-k", "rsa", "-g", "2048", "-v", "12"});
    tool({"certutil", "-S", "-d", "sql:" + db, "-f", db_password, "-z", noise, "-n", "nss ec", "-s", "CN=nss ec", "-x",
          "-t", "CT,,", "-k", "ec", "-q", "nistp256", "-v", "12"});
    for (const std::string name : {"nss rsa", "nss ec"}) {
        SCOPED_TRACE(name);
        const std::string file = path(name + ".p12");
        tool({"pk12util", "-o", file, "-n", name, "-d", "sql:" + db, "-k", db_password, "-w", file_password});
        restore_and_sign(file, 1);
    }
}

TEST_P(TheirFileTest, GnutlsCerttoolFileRestoresAndSigns) {
    const std::string key = path("gnutls.key");
    const std::string cert = path("gnutls.pem");
    const std::string file = path("gnutls.p12");
    const std::string templ = path("gnutls.tmpl");
    write_text(templ, "cn = \"gnutls rsa\"\nexpiration_days = 2\nsigning_key\nencryption_key\n");
    tool({"certtool", "--generate-privkey", "--key-type", "rsa", "--bits", "2048", "--outfile", key});
    tool({"certtool", "--generate-self-signed", "--load-privkey", key, "--template", templ, "--outfile", cert});
    tool({"certtool", "--to-p12", "--load-privkey", key, "--load-certificate", cert, "--p12-name", "gnutls rsa",
          "--password", kTestPassword, "--outder", "--outfile", file});
    restore_and_sign(file, 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, TheirFileTest, all_backends(), BackendParamName());

// --- the CA goes on using its key (issue 5) ----------------------------------------------

TEST(CaThroughOpensslEngineTest, RestoredCaKeyIssuesACertificateThatVerifiesAgainstTheOriginalCa) {
    TestToken token(Backend::softhsm, "restored-ca");
    const std::string dir = token.dir() + "/ca-proof";  // removed with the token
    std::filesystem::create_directory(dir);
    auto at = [&](const std::string& name) { return dir + "/" + name; };
    auto tool = [&](const std::vector<std::string>& argv, RunOptions options = {}) {
        add_env_entries(options, token.env_for_child());
        options.env[kPasswordVariable] = kTestPassword;
        const RunResult result = run(argv, options);
        EXPECT_EQ(result.exit_code, 0) << argv[0] << " " << argv[1] << " failed:\n" << result.out << result.err;
        return result;
    };

    // A CA made on the host with openssl, exported as a PFX; then the host copy of the
    // key is deleted: from now on the key exists only on the token.
    tool({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", at("ca.key"), "-out", at("ca.pem"),
          "-subj", "/O=p11vault tests/CN=Restored Root CA", "-days", "30", "-addext",
          "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
    tool({"openssl", "pkcs12", "-export", "-inkey", at("ca.key"), "-in", at("ca.pem"), "-name", "issuing ca", "-out",
          at("ca.p12"), "-passout", std::string("env:") + kPasswordVariable});
    std::filesystem::remove(at("ca.key"));

    const RunResult restored = restore(token, at("ca.p12"), {"--json"});
    ASSERT_EQ(restored.exit_code, 0) << restored.err;
    const json report = stdout_json(restored);
    ASSERT_EQ(report.at("keys").size(), 1u);
    const pkcs11::Bytes id = bytes_from_hex(report.at("keys")[0].at("id"));

    // A leaf request made elsewhere, signed by the CA key on the token through libp11.
    tool({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
          at("leaf.key"), "-out", at("leaf.csr"), "-subj", "/O=p11vault tests/CN=leaf issued after restore"});
    RunOptions engine;
    engine.env["PKCS11_MODULE_PATH"] = token.module_path();
    engine.env["P11VAULT_TEST_PIN"] = token.user_pin();
    const std::string uri = "pkcs11:token=" + pct_text(token.label()) + ";id=" + pct_bytes(id) + ";type=private";
    const RunResult issued =
        tool({"openssl", "x509", "-req", "-in", at("leaf.csr"), "-engine", "pkcs11", "-CAkeyform", "engine", "-CAkey",
              uri, "-passin", "env:P11VAULT_TEST_PIN", "-CA", at("ca.pem"), "-set_serial", "0x5eed", "-days", "1",
              "-sha256", "-out", at("leaf.pem")},
             engine);
    ASSERT_EQ(issued.exit_code, 0);

    const RunResult verified = tool({"openssl", "verify", "-CAfile", at("ca.pem"), at("leaf.pem")});
    EXPECT_EQ(verified.exit_code, 0);
    EXPECT_NE(verified.out.find(at("leaf.pem") + ": OK"), std::string::npos) << verified.out << verified.err;
    // And the leaf names the original CA as its issuer.
    const RunResult issuer = tool({"openssl", "x509", "-in", at("leaf.pem"), "-noout", "-issuer"});
    EXPECT_NE(issuer.out.find("Restored Root CA"), std::string::npos) << issuer.out;
}

}  // namespace
}  // namespace p11vault::testing
