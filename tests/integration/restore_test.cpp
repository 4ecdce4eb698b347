// SPDX-License-Identifier: Apache-2.0
// `p11vault restore` (issue 5), run as an operator runs it against throw-away SoftHSM and
// NSS softoken tokens: files made by OpenSSL in the test go onto the token with their
// identity and the keys sign; wrong passwords, damaged files and dry runs leave the token
// exactly as it was; the --record log chains and holds no secret. Conflicts:
// restore_conflict_test.cpp; real files of the corpus and unsupported key types:
// restore_corpus_test.cpp.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <openssl/bn.h>
#include <openssl/pkcs12.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "tests/integration/restore_fixture.hpp"

namespace p11vault::testing {
namespace {

using nlohmann::json;

TEST_P(RestoreTest, RsaFileFromOpensslRestoresAndSigns) {
    const SourceFile file = openssl_export(token_.dir(), "openssl-rsa", "RSA");
    const auto before = token_.objects();
    const RunResult result = restore(token_, file.path, {"--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = stdout_json(result);
    EXPECT_EQ(document.at("format"), "p11vault.restore/1");
    EXPECT_EQ(document.at("dry_run"), false);
    EXPECT_EQ(document.at("certificates_written"), 1);
    ASSERT_EQ(document.at("keys").size(), 1u);
    const json& key = document.at("keys")[0];
    EXPECT_EQ(key.at("id"), hex(file.id));
    EXPECT_EQ(key.at("label"), file.label);
    EXPECT_EQ(key.at("type"), "RSA-2048");
    EXPECT_EQ(key.at("status"), "restored");
    EXPECT_EQ(key.at("path"), expected_restore_path(GetParam())) << key.dump(2);
    EXPECT_EQ(key.at("spki_sha256"), spki_sha256_hex(file.credential.key.get()));
    EXPECT_EQ(token_.objects().size(), before.size() + 3) << "private key, public key, certificate";
    expect_objects_once(file.id);
    expect_signs(file.id, file.credential.cert.get());
}

TEST_P(RestoreTest, EcFileFromOpensslRestoresAndSigns) {
    const SourceFile file = openssl_export(token_.dir(), "openssl-ec", "EC");
    const RunResult result = restore(token_, file.path, {"--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = stdout_json(result);
    const json key = document.at("keys")[0];
    EXPECT_EQ(key.at("type"), "EC-P256");
    EXPECT_EQ(key.at("path"), expected_restore_path(GetParam())) << key.dump(2);
    expect_objects_once(file.id);
    expect_signs(file.id, file.credential.cert.get());
}

// The text output ends with the summary, after the table and notes (issue 23): on a
// terminal the last line is the one that stays on screen.
TEST_P(RestoreTest, TextOutputEndsWithTheSummary) {
    const SourceFile file = openssl_export(token_.dir(), "openssl-ec-text", "EC");
    const RunResult result = restore(token_, file.path, {});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    std::vector<std::string> lines;
    for (std::size_t at = 0, end; at < result.out.size(); at = end + 1) {
        end = result.out.find('\n', at);
        if (end == std::string::npos) end = result.out.size();
        lines.push_back(result.out.substr(at, end - at));
    }
    ASSERT_GE(lines.size(), 2u) << result.out;
    EXPECT_EQ(lines.back().rfind("Restored 1 of 1 key and 1 certificate from " + file.path + " to token \"", 0), 0u)
        << result.out;
    EXPECT_EQ(result.out.find("Restored"), result.out.rfind("Restored")) << result.out;
    EXPECT_LT(result.out.find(file.label), result.out.find("Restored 1 of 1")) << "the table comes first: " << result.out;
}

TEST_P(RestoreTest, LegacyOpensslFileRestoresAndSigns) {
    // -legacy: RC2-40 certificate safe, 3DES key bag, SHA-1 MAC.
    const SourceFile rsa = openssl_export(token_.dir(), "legacy-rsa", "RSA", {"-legacy"});
    const SourceFile ec = openssl_export(token_.dir(), "legacy-ec", "EC", {"-legacy"});
    for (const SourceFile* file : {&rsa, &ec}) {
        SCOPED_TRACE(file->path);
        const RunResult result = restore(token_, file->path, {"--json"});
        ASSERT_EQ(result.exit_code, 0) << result.err;
        const json document = stdout_json(result);
        const json key = document.at("keys")[0];
        if (GetParam() == Backend::softhsm) EXPECT_EQ(key.at("path"), "host-decrypt");
        else EXPECT_EQ(key.at("path"), "token-unwrap-legacy") << key.dump(2);  // 3DES bag, CKM_DES3_CBC_PAD
        expect_objects_once(file->id);
        expect_signs(file->id, file->credential.cert.get());
    }
}

TEST_P(RestoreTest, RestoredObjectsCarryTheFilesIdentity) {
    const SourceFile file = openssl_export(token_.dir(), "identity", "RSA");
    ASSERT_EQ(restore(token_, file.path, {}).exit_code, 0);
    auto session = token_.open_session();
    const CK_OBJECT_HANDLE key = find_one(*session, CKO_PRIVATE_KEY, file.id);
    EXPECT_EQ(session->get_bool(key, CKA_SENSITIVE), true);
    EXPECT_EQ(session->get_bool(key, CKA_EXTRACTABLE), false);
    EXPECT_EQ(session->get_bool(key, CKA_TOKEN), true);
    EXPECT_EQ(session->get_bool(key, CKA_PRIVATE), true);
    EXPECT_EQ(session->get_bool(key, CKA_SIGN), true);
    EXPECT_EQ(key_type_of(*session, key), static_cast<CK_KEY_TYPE>(CKK_RSA));
    EXPECT_EQ(label_of(*session, key), file.label);

    const CK_OBJECT_HANDLE public_key = find_one(*session, CKO_PUBLIC_KEY, file.id);
    EXPECT_EQ(label_of(*session, public_key), file.label);
    EXPECT_EQ(EVP_PKEY_eq(public_key_from_token(*session, public_key).get(), file.credential.key.get()), 1);

    const CK_OBJECT_HANDLE cert = find_one(*session, CKO_CERTIFICATE, file.id);
    EXPECT_EQ(label_of(*session, cert), file.label);
    EXPECT_EQ(X509_cmp(certificate_from_token(*session, cert).get(), file.credential.cert.get()), 0);
    unsigned char* subject = nullptr;
    const int length = i2d_X509_NAME(X509_get_subject_name(file.credential.cert.get()), &subject);
    EXPECT_EQ(session->get_bytes(cert, CKA_SUBJECT), pkcs11::Bytes(subject, subject + length));
    OPENSSL_free(subject);
}

TEST_P(RestoreTest, ExtractableOptionMakesTheKeyExtractable) {
    const SourceFile file = openssl_export(token_.dir(), "extractable", "EC");
    ASSERT_EQ(restore(token_, file.path, {"--extractable"}).exit_code, 0);
    auto session = token_.open_session();
    const CK_OBJECT_HANDLE key = find_one(*session, CKO_PRIVATE_KEY, file.id);
    EXPECT_EQ(session->get_bool(key, CKA_SENSITIVE), true);
    EXPECT_EQ(session->get_bool(key, CKA_EXTRACTABLE), true);
}

TEST_P(RestoreTest, WrongPasswordIsExit3AndChangesNothing) {
    add_bystander();
    const SourceFile file = openssl_export(token_.dir(), "wrong-password", "RSA");
    const auto before = token_.objects();
    const RunResult result = restore(token_, file.path, {}, "not the password");
    EXPECT_EQ(result.exit_code, 3);
    ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
    EXPECT_EQ(result.err_lines()[0].rfind("p11vault: error: ", 0), 0u) << result.err;
    EXPECT_NE(result.err.find("password"), std::string::npos) << result.err;
    EXPECT_EQ(result.err.find("not the password"), std::string::npos) << "leaks the password: " << result.err;
    EXPECT_EQ(token_.objects(), before);
}

TEST_P(RestoreTest, TruncatedFileIsExit4AndChangesNothing) {
    add_bystander();
    const SourceFile file = openssl_export(token_.dir(), "truncated", "RSA");
    const std::string data = read_text(file.path);
    const auto before = token_.objects();
    for (std::size_t keep : {std::size_t{0}, std::size_t{10}, data.size() / 2, data.size() - 1}) {
        SCOPED_TRACE("first " + std::to_string(keep) + " of " + std::to_string(data.size()) + " bytes");
        const std::string damaged = path("truncated-" + std::to_string(keep) + ".p12");
        write_text(damaged, data.substr(0, keep));
        const RunResult result = restore(token_, damaged, {});
        EXPECT_EQ(result.exit_code, 4) << result.err;
        EXPECT_EQ(result.err_lines().size(), 1u) << result.err;
        EXPECT_EQ(token_.objects(), before);
    }
}

TEST_P(RestoreTest, CorruptedFileIsRefusedAndChangesNothing) {
    add_bystander();
    const SourceFile file = openssl_export(token_.dir(), "corrupt", "RSA");
    const std::string data = read_text(file.path);
    // Where the MAC value sits: a flip there is a MAC mismatch (exit 3).
    std::size_t mac_at = std::string::npos;
    {
        const unsigned char* p = reinterpret_cast<const unsigned char*>(data.data());
        PKCS12* p12 = d2i_PKCS12(nullptr, &p, static_cast<long>(data.size()));
        ASSERT_NE(p12, nullptr);
        const ASN1_OCTET_STRING* mac = nullptr;
        PKCS12_get0_mac(&mac, nullptr, nullptr, nullptr, p12);
        ASSERT_NE(mac, nullptr);
        const std::string value(reinterpret_cast<const char*>(ASN1_STRING_get0_data(mac)),
                                static_cast<std::size_t>(ASN1_STRING_length(mac)));
        mac_at = data.find(value);
        PKCS12_free(p12);
        ASSERT_NE(mac_at, std::string::npos);
    }
    const auto before = token_.objects();
    struct Flip {
        std::size_t offset;
        std::vector<int> allowed;
        const char* where;
    };
    const std::vector<Flip> flips = {
        {0, {4}, "the outer SEQUENCE tag"},
        {data.size() / 3, {3, 4}, "inside the authenticated content"},
        {data.size() / 2, {3, 4}, "inside the authenticated content"},
        {mac_at + 5, {3}, "the MAC value"},
    };
    for (const Flip& flip : flips) {
        SCOPED_TRACE(std::string("flipped a bit at ") + std::to_string(flip.offset) + " (" + flip.where + ")");
        std::string damaged = data;
        damaged[flip.offset] = static_cast<char>(damaged[flip.offset] ^ 0x10);
        const std::string damaged_path = path("flipped-" + std::to_string(flip.offset) + ".p12");
        write_text(damaged_path, damaged);
        const RunResult result = restore(token_, damaged_path, {});
        EXPECT_NE(std::find(flip.allowed.begin(), flip.allowed.end(), result.exit_code), flip.allowed.end())
            << "exit " << result.exit_code << ": " << result.err;
        EXPECT_EQ(result.err_lines().size(), 1u) << result.err;
        EXPECT_EQ(token_.objects(), before);
    }
}

TEST_P(RestoreTest, DryRunWritesNothingButChecksEverything) {
    add_bystander();
    const SourceFile file = openssl_export(token_.dir(), "dry", "RSA");
    const auto before = token_.objects();

    RunResult result = restore(token_, file.path, {"--dry-run", "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = stdout_json(result);
    EXPECT_EQ(document.at("dry_run"), true);
    EXPECT_EQ(document.at("keys")[0].at("status"), "would-restore");
    EXPECT_EQ(token_.objects(), before) << "a dry run wrote to the token";

    result = restore(token_, file.path, {"--dry-run"}, "wrong password");
    EXPECT_EQ(result.exit_code, 3) << result.err;
    EXPECT_EQ(token_.objects(), before);

    ASSERT_EQ(restore(token_, file.path, {}).exit_code, 0);
    const auto restored = token_.objects();
    result = restore(token_, file.path, {"--dry-run"});
    EXPECT_EQ(result.exit_code, 6) << result.err;
    EXPECT_EQ(token_.objects(), restored);
}

TEST_P(RestoreTest, RecordChainsRunsAndHoldsNoSecret) {
    const SourceFile file = openssl_export(token_.dir(), "record", "EC");
    const std::string record = path("ceremony.jsonl");
    EXPECT_EQ(restore(token_, file.path, {"--dry-run", "--record", record}).exit_code, 0);
    EXPECT_EQ(restore(token_, file.path, {"--record", record}).exit_code, 0);
    EXPECT_EQ(restore(token_, file.path, {"--record", record}).exit_code, 6);  // conflict: recorded as failed

    const std::string text = read_text(record);
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) lines.push_back(line);
    ASSERT_EQ(lines.size(), 3u) << text;
    std::vector<json> records;
    for (const auto& line : lines) records.push_back(json::parse(line));
    EXPECT_TRUE(records[0].at("previous_sha256").is_null());
    EXPECT_EQ(records[1].at("previous_sha256"), sha256_hex(lines[0]));
    EXPECT_EQ(records[2].at("previous_sha256"), sha256_hex(lines[1]));
    EXPECT_EQ(records[0].at("command"), "restore-dry-run");
    EXPECT_EQ(records[1].at("command"), "restore");
    EXPECT_EQ(records[1].at("result"), "ok");
    EXPECT_EQ(records[2].at("result"), "failed");
    EXPECT_EQ(records[2].at("exit_code"), 6);
    EXPECT_EQ(records[1].at("file_sha256"), sha256_hex(read_text(file.path)));
    ASSERT_EQ(records[1].at("keys").size(), 1u);
    EXPECT_EQ(records[1].at("keys")[0].at("id"), hex(file.id));
    EXPECT_EQ(records[1].at("keys")[0].at("spki_sha256"), spki_sha256_hex(file.credential.key.get()));
    EXPECT_EQ(records[1].at("token").at("label"), token_.label());

    EXPECT_EQ(text.find(kTestPassword), std::string::npos) << "the password is in the record";
    EXPECT_EQ(text.find(token_.user_pin()), std::string::npos) << "the PIN is in the record";

    const RunResult check = run_p11vault({"record-check", record});
    EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}

TEST_P(RestoreTest, FailureOnTheSecondKeyRemovesWhatTheFirstCreated) {
    add_bystander();
    const HostCredential good = make_host_credential(token_.dir(), "good", "RSA");
    const HostCredential bad = make_host_credential(token_.dir(), "bad", "RSA");
    const HostCredential other = make_host_credential(token_.dir(), "other", "RSA");
    // The second key bag is paired (by localKeyID) with a certificate of another key:
    // found only when the key is on its way into the token, after the first is there.
    const std::string file = path("second-key-bad.p12");
    write_test_pfx(file, {{good.key.get(), good.cert.get(), {0x01}, "good key"},
                     {bad.key.get(), other.cert.get(), {0x02}, "mismatched key"}});
    const auto before = token_.objects();
    const RunResult result = restore(token_, file, {});
    EXPECT_EQ(result.exit_code, 4) << result.err;
    ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
    EXPECT_NE(result.err.find("does not match"), std::string::npos) << result.err;
    EXPECT_EQ(token_.objects(), before) << "objects of the failed run are left on the token";
}

TEST_P(RestoreTest, WithoutLocalKeyIdTheIdIsDerivedFromThePublicKey) {
    const HostCredential credential = make_host_credential(token_.dir(), "no-id", "RSA");
    const std::string file = path("no-local-key-id.p12");
    write_test_pfx(file, {{credential.key.get(), credential.cert.get(), {}, "no id"}});
    // SHA-1 of the modulus, as NSS and pkcs11-tool derive it.
    BIGNUM* n = nullptr;
    ASSERT_EQ(EVP_PKEY_get_bn_param(credential.key.get(), "n", &n), 1);
    std::vector<unsigned char> modulus(static_cast<std::size_t>(BN_num_bytes(n)));
    BN_bn2bin(n, modulus.data());
    BN_free(n);
    pkcs11::Bytes expected(20);
    ASSERT_EQ(EVP_Digest(modulus.data(), modulus.size(), expected.data(), nullptr, EVP_sha1(), nullptr), 1);

    const RunResult result = restore(token_, file, {"--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(stdout_json(result).at("keys")[0].at("id"), hex(expected));
    expect_objects_once(expected);
    expect_signs(expected, credential.cert.get());
    // Stable: the same file conflicts with what it restored.
    EXPECT_EQ(restore(token_, file, {"--dry-run"}).exit_code, 6);
}

TEST_P(RestoreTest, WrongPasswordOnAFileWithoutMacIsExit3AndChangesNothing) {
    add_bystander();
    const SourceFile file = openssl_export(token_.dir(), "no-mac", "RSA", {"-nomac"});
    const auto before = token_.objects();
    const RunResult result = restore(token_, file.path, {}, "not the password");
    EXPECT_EQ(result.exit_code, 3) << result.err;
    EXPECT_EQ(result.err_lines().size(), 1u) << result.err;
    EXPECT_EQ(token_.objects(), before);
    // And with the right password it restores (with a warning about the missing MAC).
    const RunResult good = restore(token_, file.path, {});
    ASSERT_EQ(good.exit_code, 0) << good.err;
    EXPECT_NE(good.err.find("p11vault: warning: "), std::string::npos) << good.err;
    expect_signs(file.id, file.credential.cert.get());
}

TEST_P(RestoreTest, UnencryptedKeyBagRestoresAndSigns) {
    // `-keypbe NONE -certpbe NONE`: a plain keyBag, protected only by the MAC. It can only
    // take the host path.
    const SourceFile file = openssl_export(token_.dir(), "plain-bags", "RSA", {"-keypbe", "NONE", "-certpbe", "NONE"});
    const RunResult result = restore(token_, file.path, {"--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = stdout_json(result);
    EXPECT_EQ(document.at("keys")[0].at("path"), "host-decrypt");
    expect_objects_once(file.id);
    expect_signs(file.id, file.credential.cert.get());
}

TEST_P(RestoreTest, WrongPinIsExit5AndChangesNothing) {
    add_bystander();
    const SourceFile file = openssl_export(token_.dir(), "wrong-pin", "EC");
    const auto before = token_.objects();
    RunOptions options;
    add_env_entries(options, token_.env_for_child());
    options.env["P11VAULT_TEST_WRONG_PIN"] = "not-the-pin";
    options.env[kPasswordVariable] = kTestPassword;
    for (const std::string mode : {"--on-conflict=fail", "--dry-run"}) {
        SCOPED_TRACE(mode);
        std::vector<std::string> args = {"restore"};
        for (const auto& arg : token_.cli_token_args()) args.push_back(arg);
        args.insert(args.end(), {"--pin", "env:P11VAULT_TEST_WRONG_PIN", "--password",
                                 std::string("env:") + kPasswordVariable, "--in", file.path, mode});
        const RunResult result = run_p11vault(args, options);
        EXPECT_EQ(result.exit_code, 5);
        ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
        EXPECT_EQ(result.err_lines()[0].rfind("p11vault: error: C_Login: CKR_PIN_INCORRECT", 0), 0u) << result.err;
        EXPECT_EQ(token_.objects(), before);
    }
}

INSTANTIATE_TEST_SUITE_P(Backends, RestoreTest, all_backends(), BackendParamName());

}  // namespace
}  // namespace p11vault::testing
