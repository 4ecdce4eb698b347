// SPDX-License-Identifier: Apache-2.0
// `p11vault backup` (issue 4), run as an operator runs it (the built binary, a child
// process) against throw-away SoftHSM and NSS softoken tokens: key selection, key types,
// the extraction path reported per key, refusals, the file's profile, permissions and bag
// attributes, and that the key in the file is the token's key. What only one backend
// can show (Ed25519 on SoftHSM, token-wrap on NSS): backup_backend_test.cpp.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/integration/backup_fixture.hpp"
#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

using nlohmann::json;

TEST_P(BackupTest, AllKeysGoIntoOneFileWithAttributesAndCertificates) {
    const Made rsa = make_rsa(2048, {0x01}, "rsa signer");
    const Made ec = make_ec("P-256", {0x02, 0xa0}, "ec signer");
    const std::string out = path("all.p12");
    const RunResult result = backup(token_, out, {"--all", "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.err.find("error"), std::string::npos) << result.err;

    const json document = stdout_json(result);
    EXPECT_EQ(document.at("format"), "p11vault.backup/1");
    EXPECT_EQ(document.at("file"), out);
    EXPECT_EQ(document.at("file_sha256"), sha256_hex(read_text(out)));
    EXPECT_EQ(document.at("profile"), "modern");
    EXPECT_EQ(document.at("certificates"), 2);
    ASSERT_EQ(document.at("keys").size(), 2u) << document.dump(2);
    for (const Made* made : {&rsa, &ec}) {
        const json key = key_report(document, made->key.id);
        EXPECT_EQ(key.at("label"), made->key.label);
        EXPECT_EQ(key.at("path"), expected_backup_path(GetParam())) << key.dump(2);
        EXPECT_EQ(key.at("spki_sha256"), spki_sha256_hex(made->public_key.get()));
        EXPECT_EQ(key.at("certificate_subject").get<std::string>().rfind("CN=" + made->key.label + ",", 0), 0u)
            << key.dump(2);
    }
    EXPECT_EQ(key_report(document, rsa.key.id).at("type"), "RSA-2048");
    EXPECT_EQ(key_report(document, ec.key.id).at("type"), "EC-P256");

    EXPECT_EQ(file_mode(out), 0600u);
    const P12File file = read_p12(out);
    EXPECT_EQ(file.keys().size(), 2u);
    EXPECT_EQ(file.certificates().size(), 2u);
    expect_key_in_file(file, rsa);
    expect_key_in_file(file, ec);
    // No temporary file is left next to the target.
    for (const auto& name : directory_entries(token_.dir()))
        EXPECT_EQ(name.rfind(".p11vault-", 0), std::string::npos) << "left behind: " << name;
}

TEST_P(BackupTest, OpensslShowsLocalKeyIdAndFriendlyNameOnKeyAndCertificate) {
    make_rsa(2048, {0x0a, 0x0b}, "attribute check");
    const std::string out = path("attributes.p12");
    ASSERT_EQ(backup(token_, out, {"--id", "0a0b"}).exit_code, 0);
    const RunResult info = openssl_pkcs12_info(out);
    ASSERT_EQ(info.exit_code, 0) << info.err;
    const std::string text = info.out + info.err;
    std::size_t bags = 0;
    for (std::size_t at = text.find("Bag Attributes"); at != std::string::npos; at = text.find("Bag Attributes", at + 1)) {
        ++bags;
        const std::string block = text.substr(at, 200);
        EXPECT_NE(block.find("localKeyID: 0A 0B"), std::string::npos) << block;
        EXPECT_NE(block.find("friendlyName: attribute check"), std::string::npos) << block;
    }
    EXPECT_EQ(bags, 2u) << "a key bag and a certificate bag:\n" << text;
}

TEST_P(BackupTest, SelectsById) {
    make_rsa(2048, {0x01}, "one");
    const Made two = make_ec("P-256", {0x02}, "two");
    make_ec("P-256", {0x03}, "three");
    const std::string out = path("by-id.p12");
    const RunResult result = backup(token_, out, {"--id", "02", "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = stdout_json(result);
    ASSERT_EQ(document.at("keys").size(), 1u);
    EXPECT_EQ(document.at("keys")[0].at("id"), "02");
    const P12File file = read_p12(out);
    ASSERT_EQ(file.keys().size(), 1u);
    expect_key_in_file(file, two);
    EXPECT_EQ(file.certificates().size(), 1u);
}

TEST_P(BackupTest, SelectsByLabel) {
    make_rsa(2048, {0x01}, "one");
    make_ec("P-256", {0x02}, "two");
    const Made three = make_ec("P-384", {0x03}, "three");
    const std::string out = path("by-label.p12");
    const RunResult result = backup(token_, out, {"--label", "three", "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    ASSERT_EQ(stdout_json(result).at("keys").size(), 1u);
    const P12File file = read_p12(out);
    ASSERT_EQ(file.keys().size(), 1u);
    expect_key_in_file(file, three);
}

TEST_P(BackupTest, SelectsSeveralByIdAndLabelIntoOneFile) {
    const Made one = make_rsa(2048, {0x01}, "one");
    make_ec("P-256", {0x02}, "two");
    const Made three = make_ec("P-256", {0x03}, "three");
    const std::string out = path("several.p12");
    const RunResult result = backup(token_, out, {"--id", "01", "--label", "three", "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(stdout_json(result).at("keys").size(), 2u);
    const P12File file = read_p12(out);
    EXPECT_EQ(file.keys().size(), 2u);
    expect_key_in_file(file, one);
    expect_key_in_file(file, three);
}

TEST_P(BackupTest, SelectsByPkcs11Uri) {
    make_rsa(2048, {0x01}, "one");
    const Made two = make_ec("P-256", {0x02}, "two");
    const std::string out = path("by-uri.p12");
    const std::string uri = "pkcs11:token=" + pct_text(token_.label()) + ";id=%02";
    const RunResult result = run_with_token_args(token_, "backup", token_args_with_uri(token_, uri),
                                                 {"--out", out, "--iter", kFastIterations, "--json"});
    ASSERT_EQ(result.exit_code, 0) << uri << ": " << result.err;
    ASSERT_EQ(stdout_json(result).at("keys").size(), 1u);
    const P12File file = read_p12(out);
    ASSERT_EQ(file.keys().size(), 1u);
    expect_key_in_file(file, two);
}

TEST_P(BackupTest, SelectsByPkcs11UriObjectLabel) {
    const Made one = make_rsa(2048, {0x01}, "one");
    make_ec("P-256", {0x02}, "two");
    const std::string out = path("by-uri-object.p12");
    const std::string uri = "pkcs11:token=" + pct_text(token_.label()) + ";object=one";
    const RunResult result = run_with_token_args(token_, "backup", token_args_with_uri(token_, uri),
                                                 {"--out", out, "--iter", kFastIterations});
    ASSERT_EQ(result.exit_code, 0) << uri << ": " << result.err;
    const P12File file = read_p12(out);
    ASSERT_EQ(file.keys().size(), 1u);
    expect_key_in_file(file, one);
}

TEST_P(BackupTest, UnknownIdWritesNothing) {
    make_rsa(2048, {0x01}, "one");
    const std::string out = path("unknown.p12");
    const RunResult result = backup(token_, out, {"--id", "77"});
    EXPECT_NE(result.exit_code, 0);
    ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
    EXPECT_EQ(result.err_lines()[0].rfind("p11vault: error: ", 0), 0u) << result.err;
    EXPECT_NE(result.err.find("77"), std::string::npos) << result.err;
    EXPECT_FALSE(file_exists(out));
}

TEST_P(BackupTest, RsaAndEcSizesAndCurves) {
    std::vector<Made> made;
    made.push_back(make_rsa(3072, {0x11}, "rsa 3072"));
    made.push_back(make_ec("P-384", {0x12}, "ec p384"));
    made.push_back(make_ec("P-521", {0x13}, "ec p521"));
    const std::string out = path("types.p12");
    const RunResult result = backup(token_, out, {"--all", "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = stdout_json(result);
    EXPECT_EQ(key_report(document, {0x11}).at("type"), "RSA-3072");
    EXPECT_EQ(key_report(document, {0x12}).at("type"), "EC-P384");
    EXPECT_EQ(key_report(document, {0x13}).at("type"), "EC-P521");
    for (const auto& key : document.at("keys")) EXPECT_EQ(key.at("path"), expected_backup_path(GetParam()));
    const P12File file = read_p12(out);
    EXPECT_EQ(file.keys().size(), 3u);
    for (const Made& m : made) expect_key_in_file(file, m);
}

TEST_P(BackupTest, Rsa4096) {
    const Made big = make_rsa(4096, {0x40}, "rsa 4096");
    const std::string out = path("rsa4096.p12");
    const RunResult result = backup(token_, out, {"--id", "40", "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = stdout_json(result);
    EXPECT_EQ(key_report(document, {0x40}).at("type"), "RSA-4096");
    EXPECT_EQ(key_report(document, {0x40}).at("path"), expected_backup_path(GetParam()));
    expect_key_in_file(read_p12(out), big);
}

TEST_P(BackupTest, KeyWithoutCertificateIsBackedUpWithAWarning) {
    const Made lone = make_ec("P-256", {0x21}, "no certificate", /*with_cert=*/false);
    const std::string out = path("lone.p12");
    const RunResult result = backup(token_, out, {"--id", "21", "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_NE(result.err.find("p11vault: warning: "), std::string::npos) << result.err;
    const json document = stdout_json(result);
    EXPECT_TRUE(document.at("keys")[0].at("certificate_subject").is_null());
    const P12File file = read_p12(out);
    EXPECT_EQ(file.certificates().size(), 0u);
    expect_key_in_file(file, lone);
}

TEST_P(BackupTest, CertificateWithAnotherIdIsPairedByPublicKey) {
    Made made = make_rsa(2048, {0x21}, "key 21", /*with_cert=*/false);
    {
        auto session = token_.open_session();
        made.cert = TestCa::instance().issue(made.public_key.get(), "paired by public key");
        add_certificate(*session, made.cert.cert.get(), {0x99}, "cert 99");
    }
    const std::string out = path("paired.p12");
    const RunResult result = backup(token_, out, {"--id", "21", "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(key_report(stdout_json(result), {0x21}).at("certificate_subject").get<std::string>().rfind(
                  "CN=paired by public key,", 0),
              0u);
    const P12File file = read_p12(out);
    const P12Bag* cert = file.find_certificate(made.cert.cert.get());
    ASSERT_NE(cert, nullptr) << "the certificate paired by public key is not in the file";
    // In the file the pair is joined by the key's CKA_ID, which is what readers pair by.
    EXPECT_EQ(cert->local_key_ids, std::vector<pkcs11::Bytes>{pkcs11::Bytes{0x21}});
    const P12Bag* key = key_bag(file, {0x21});
    ASSERT_NE(key, nullptr);
    EXPECT_EQ(X509_check_private_key(cert->cert.get(), key->key.get()), 1);
}

// A certificate of another key stored under the key's CKA_ID (a renewed CA that kept the
// id) is not the key's certificate. Backup takes an RSA key's public exponent from the
// certificate of its id only when the modulus matches; here it must read it from the key.
TEST_P(BackupTest, CertificateOfAnotherKeyUnderTheSameIdIsNotPaired) {
    const Made key = make_rsa(2048, {0x31}, "key 31", /*with_cert=*/false);
    const Made other = make_rsa(2048, {0x32}, "key 32", /*with_cert=*/false);
    {
        auto session = token_.open_session();
        IssuedCert foreign = TestCa::instance().issue(other.public_key.get(), "another key");
        add_certificate(*session, foreign.cert.get(), {0x31}, "key 31");
    }
    const std::string out = path("foreign.p12");
    const RunResult result = backup(token_, out, {"--id", "31", "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json report = key_report(stdout_json(result), {0x31});
    EXPECT_TRUE(report.at("certificate_subject").is_null()) << report.dump();
    EXPECT_EQ(report.at("type"), "RSA-2048");
    const P12File file = read_p12(out);
    EXPECT_EQ(file.certificates().size(), 0u);
    expect_key_in_file(file, key);
}

TEST_P(BackupTest, TokenWrapOnly) {
    make_rsa(2048, {0x01}, "wrap only");
    const std::string out = path("wrap-only.p12");
    const RunResult result = backup(token_, out, {"--all", "--token-wrap-only", "--json"});
    if (GetParam() == Backend::softhsm) {
        // SoftHSM cannot wrap with CKM_AES_CBC_PAD: every way out goes through the host.
        EXPECT_EQ(result.exit_code, 6) << result.err;
        ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
        EXPECT_EQ(result.err_lines()[0].rfind("p11vault: error: ", 0), 0u);
        EXPECT_NE(result.err.find("--token-wrap-only"), std::string::npos) << result.err;
        EXPECT_NE(result.err.find("01"), std::string::npos) << "names the key: " << result.err;
        EXPECT_FALSE(file_exists(out));
    } else {
        ASSERT_EQ(result.exit_code, 0) << result.err;
        EXPECT_EQ(stdout_json(result).at("keys")[0].at("path"), "token-wrap");
        EXPECT_EQ(read_p12(out).keys().size(), 1u);
    }
}

TEST_P(BackupTest, ExistingOutputIsRefusedWithoutForceAndReplacedWithIt) {
    const Made rsa = make_rsa(2048, {0x01}, "one");
    const std::string out = path("existing.p12");
    write_text(out, "precious earlier backup\n");
    RunResult result = backup(token_, out, {"--all"});
    EXPECT_EQ(result.exit_code, 6) << result.err;
    ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
    EXPECT_NE(result.err.find("--force"), std::string::npos) << result.err;
    EXPECT_EQ(read_text(out), "precious earlier backup\n");

    result = backup(token_, out, {"--all", "--force"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(file_mode(out), 0600u);
    const P12File file = read_p12(out);
    EXPECT_EQ(file.keys().size(), 1u);
    expect_key_in_file(file, rsa);
}

TEST_P(BackupTest, WrongPinIsExit5WithOneErrorLine) {
    make_rsa(2048, {0x01}, "one");
    const std::string out = path("wrong-pin.p12");
    RunOptions options;
    add_env_entries(options, token_.env_for_child());
    options.env["P11VAULT_TEST_WRONG_PIN"] = "not-the-pin";
    options.env[kPasswordVariable] = kTestPassword;
    std::vector<std::string> args = {"backup"};
    for (const auto& arg : token_.cli_token_args()) args.push_back(arg);
    args.insert(args.end(), {"--pin", "env:P11VAULT_TEST_WRONG_PIN", "--password",
                             std::string("env:") + kPasswordVariable, "--out", out, "--all", "--iter", "2000"});
    const RunResult result = run_p11vault(args, options);
    EXPECT_EQ(result.exit_code, 5);
    ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
    EXPECT_EQ(result.err_lines()[0].rfind("p11vault: error: C_Login: CKR_PIN_INCORRECT", 0), 0u) << result.err;
    EXPECT_EQ(result.out, "");
    EXPECT_FALSE(file_exists(out));
}

TEST_P(BackupTest, ChainFilesAreIncluded) {
    const Made rsa = make_rsa(2048, {0x01}, "leaf");
    // Two certificates in one PEM file: the test CA and an unrelated one.
    const HostCredential other = make_host_credential(token_.dir(), "other", "EC");
    const std::string chain = path("chain.pem");
    write_text(chain, TestCa::instance().cert_pem() + to_pem(other.cert.get()));
    const std::string out = path("chain.p12");
    const RunResult result = backup(token_, out, {"--all", "--chain", chain, "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(stdout_json(result).at("certificates"), 3);
    const P12File file = read_p12(out);
    EXPECT_EQ(file.certificates().size(), 3u);
    EXPECT_NE(file.find_certificate(TestCa::instance().cert()), nullptr) << "the CA certificate of --chain";
    EXPECT_NE(file.find_certificate(other.cert.get()), nullptr) << "the second certificate of --chain";
    expect_key_in_file(file, rsa);
}

TEST_P(BackupTest, IssuerCertificatesOnTheTokenAreIncluded) {
    const Made rsa = make_rsa(2048, {0x01}, "leaf");
    // The issuer (the test CA) and an unrelated self-signed certificate on the token.
    const std::string unrelated_key = path("unrelated.key");
    const std::string unrelated_pem = path("unrelated.pem");
    const RunResult made = run_tool({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                                     "-nodes", "-keyout", unrelated_key, "-out", unrelated_pem, "-subj",
                                     "/CN=unrelated root", "-days", "2"});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    auto unrelated = certificates_in_pem(read_text(unrelated_pem));
    ASSERT_EQ(unrelated.size(), 1u);
    {
        auto session = token_.open_session();
        add_certificate(*session, TestCa::instance().cert(), {0xca}, "test ca");
        add_certificate(*session, unrelated[0].get(), {0xee}, "unrelated");
    }
    const std::string out = path("issuers.p12");
    const RunResult result = backup(token_, out, {"--id", "01", "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(stdout_json(result).at("certificates"), 2);
    const P12File file = read_p12(out);
    EXPECT_EQ(file.certificates().size(), 2u);
    EXPECT_NE(file.find_certificate(TestCa::instance().cert()), nullptr) << "the issuer on the token";
    EXPECT_EQ(file.find_certificate(unrelated[0].get()), nullptr) << "an unrelated certificate";
    expect_key_in_file(file, rsa);
}

TEST_P(BackupTest, LegacyProfileReadsWithoutOpensslLegacyProvider) {
    const Made rsa = make_rsa(2048, {0x01}, "legacy key");
    const std::string out = path("legacy.p12");
    // No --iter: the legacy profile's default is 2000.
    const RunResult result = backup(token_, out, {"--all", "--profile", "legacy", "--json"}, kTestPassword, false);
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = stdout_json(result);
    EXPECT_EQ(document.at("profile"), "legacy");
    // NSS softoken wraps with CKM_DES3_CBC_PAD (path 2 of extraction.md); SoftHSM cannot.
    EXPECT_EQ(key_report(document, {0x01}).at("path"),
              GetParam() == Backend::nss ? "token-wrap-legacy" : "host-reencrypt")
        << document.dump(2);
    const RunResult info = openssl_pkcs12_info(out);  // no -legacy
    ASSERT_EQ(info.exit_code, 0) << info.err;
    const std::string text = info.out + info.err;
    EXPECT_NE(text.find("MAC: sha1, Iteration 2000"), std::string::npos) << text;
    EXPECT_NE(text.find("Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2000"), std::string::npos) << text;
    EXPECT_NE(text.find("PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2000"), std::string::npos)
        << text;
    EXPECT_EQ(text.find("PBES2"), std::string::npos) << text;
    EXPECT_EQ(text.find("RC2"), std::string::npos) << text;
    auto keys = private_keys_in_pem(info.out);
    ASSERT_EQ(keys.size(), 1u) << info.out;
    EXPECT_EQ(EVP_PKEY_eq(keys[0].get(), rsa.public_key.get()), 1);
    expect_key_in_file(read_p12(out), rsa);
}

TEST_P(BackupTest, ModernProfileIsPbes2Aes256Sha256) {
    make_ec("P-256", {0x01}, "modern key");
    const std::string out = path("modern.p12");
    ASSERT_EQ(backup(token_, out, {"--all", "--profile", "modern"}).exit_code, 0);
    const RunResult info = openssl_pkcs12_info(out);
    ASSERT_EQ(info.exit_code, 0) << info.err;
    const std::string text = info.out + info.err;
    EXPECT_NE(text.find("MAC: sha256, Iteration 2000"), std::string::npos) << text;
    EXPECT_NE(text.find("Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 2000, PRF hmacWithSHA256"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 2000, PRF hmacWithSHA256"),
              std::string::npos)
        << text;
    EXPECT_EQ(text.find("TripleDES"), std::string::npos) << text;
}

TEST_P(BackupTest, ModernProfileDefaultsTo600000Iterations) {
    make_ec("P-256", {0x01}, "default iterations");
    const std::string out = path("default-iter.p12");
    ASSERT_EQ(backup(token_, out, {"--all"}, kTestPassword, /*fast=*/false).exit_code, 0);
    const RunResult info = openssl_pkcs12_info(out);
    ASSERT_EQ(info.exit_code, 0) << info.err;
    const std::string text = info.out + info.err;
    EXPECT_NE(text.find("MAC: sha256, Iteration 600000"), std::string::npos) << text;
    EXPECT_NE(text.find("Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256"),
              std::string::npos)
        << text;
}

TEST_P(BackupTest, KeyOutOfTheFileMatchesCertificateAndToken) {
    const Made rsa = make_rsa(2048, {0x01}, "rsa");
    const Made ec = make_ec("P-384", {0x02}, "ec");
    const std::string out = path("match.p12");
    ASSERT_EQ(backup(token_, out, {"--all"}).exit_code, 0);
    const RunResult info = openssl_pkcs12_info(out);
    ASSERT_EQ(info.exit_code, 0) << info.err;
    auto keys = private_keys_in_pem(info.out);
    auto certs = certificates_in_pem(info.out);
    ASSERT_EQ(keys.size(), 2u) << info.out;
    ASSERT_EQ(certs.size(), 2u) << info.out;
    for (const Made* made : {&rsa, &ec}) {
        SCOPED_TRACE(made->key.label);
        int matches = 0;
        for (const auto& key : keys) {
            if (EVP_PKEY_eq(key.get(), made->public_key.get()) != 1) continue;
            ++matches;
            EXPECT_EQ(X509_check_private_key(made->cert.cert.get(), key.get()), 1);
            // And it really is a private key: it signs what the token's public key verifies.
            const std::string message = "signed with the key from the file";
            std::vector<unsigned char> signature(EVP_PKEY_get_size(key.get()));
            size_t length = signature.size();
            EVP_MD_CTX* ctx = EVP_MD_CTX_new();
            ASSERT_EQ(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key.get()), 1);
            ASSERT_EQ(EVP_DigestSign(ctx, signature.data(), &length,
                                     reinterpret_cast<const unsigned char*>(message.data()), message.size()),
                      1);
            EVP_MD_CTX_free(ctx);
            signature.resize(length);
            EXPECT_TRUE(openssl_verify(made->public_key.get(),
                                       std::span(reinterpret_cast<const std::uint8_t*>(message.data()), message.size()),
                                       signature));
        }
        EXPECT_EQ(matches, 1);
        int cert_matches = 0;
        for (const auto& cert : certs) cert_matches += X509_cmp(cert.get(), made->cert.cert.get()) == 0;
        EXPECT_EQ(cert_matches, 1);
    }
}

// --- refusals by attribute: p11vault reads CKA_EXTRACTABLE and refuses before any wrap
// (on NSS, which does not enforce CKA_EXTRACTABLE=FALSE on C_WrapKey, too) --------------

TEST_P(BackupTest, NonExtractableKeyIsRefusedByName) {
    make_rsa(2048, {0x05}, "locked key", true, {.sensitive = true, .extractable = false});
    const std::string out = path("locked.p12");
    const RunResult result = backup(token_, out, {"--id", "05"});
    EXPECT_EQ(result.exit_code, 6);
    ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
    EXPECT_EQ(result.err_lines()[0].rfind("p11vault: error: ", 0), 0u) << result.err;
    EXPECT_NE(result.err.find("05"), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("locked key"), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("extractable"), std::string::npos) << "says why: " << result.err;
    EXPECT_FALSE(file_exists(out));
}

TEST_P(BackupTest, OneNonExtractableKeyAmongTwoWritesNothing) {
    make_rsa(2048, {0x01}, "exportable");
    make_ec("P-256", {0x05}, "locked key", true, {.sensitive = true, .extractable = false});
    const std::string out = path("mixed.p12");
    const RunResult result = backup(token_, out, {"--all"});
    EXPECT_EQ(result.exit_code, 6);
    ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
    EXPECT_NE(result.err.find("locked key"), std::string::npos) << result.err;
    EXPECT_EQ(result.err.find("\"exportable\""), std::string::npos) << "blames only the locked key: " << result.err;
    EXPECT_FALSE(file_exists(out));
    for (const auto& name : directory_entries(token_.dir()))
        EXPECT_EQ(name.rfind(".p11vault-", 0), std::string::npos) << "left behind: " << name;
}

INSTANTIATE_TEST_SUITE_P(Backends, BackupTest, all_backends(), BackendParamName());

}  // namespace
}  // namespace p11vault::testing
