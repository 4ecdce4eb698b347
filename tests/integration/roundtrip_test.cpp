// SPDX-License-Identifier: Apache-2.0
// Token A -> `p11vault backup` -> file -> `p11vault restore` -> token B, then B uses the
// keys: RSA PKCS#1 v1.5 and PSS signatures, RSA decryption, ECDSA and EdDSA, each checked
// with the certificate made for the key on A. Every direction the backends allow in one
// process (NSS softoken opens one database per process): SoftHSM -> SoftHSM,
// NSS -> SoftHSM and SoftHSM -> NSS.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <openssl/rsa.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

using nlohmann::json;

struct Direction {
    Backend from;
    Backend to;
};

std::ostream& operator<<(std::ostream& out, const Direction& d) {
    return out << backend_name(d.from) << " -> " << backend_name(d.to);
}

std::string direction_name(const ::testing::TestParamInfo<Direction>& info) {
    return backend_name(info.param.from) + "_to_" + backend_name(info.param.to);
}

std::string expected_backup_path(Backend backend) { return backend == Backend::nss ? "token-wrap" : "host-reencrypt"; }
std::string restore_path_for(Backend backend) { return backend == Backend::nss ? "token-unwrap" : "host-decrypt"; }

const std::string kMessage = "issued by the restored CA key";
std::span<const std::uint8_t> message_bytes() {
    return std::span(reinterpret_cast<const std::uint8_t*>(kMessage.data()), kMessage.size());
}

class RoundTripTest : public ::testing::TestWithParam<Direction> {
protected:
    RoundTripTest()
        : source_(GetParam().from, GetParam().from == Backend::softhsm ? "source" : ""),
          target_(GetParam().to, GetParam().to == Backend::softhsm ? "target" : "") {}

    std::string path(const std::string& name) const { return source_.dir() + "/" + name; }

    struct Made {
        TestKey key;
        IssuedCert cert;
    };
    Made make_rsa(pkcs11::Bytes id, std::string label) {
        auto session = source_.open_session();
        Made made;
        made.key = generate_rsa(*session, 2048, std::move(id), std::move(label));
        made.cert = certify(*session, made.key);
        return made;
    }
    Made make_ec(const std::string& curve, pkcs11::Bytes id, std::string label) {
        auto session = source_.open_session();
        Made made;
        made.key = generate_ec(*session, curve, std::move(id), std::move(label));
        made.cert = certify(*session, made.key);
        return made;
    }

    // Backs up from A (asserting the backup path) and restores into B (asserting the
    // restore path); returns the restore report.
    json round_trip(const std::vector<std::string>& selection, const std::vector<std::string>& restore_args = {},
                    const std::vector<std::string>& backup_args = {}, bool check_paths = true) {
        const std::string file = path("roundtrip-" + std::to_string(++files_) + ".p12");
        std::vector<std::string> args = selection;
        args.push_back("--json");
        args.insert(args.end(), backup_args.begin(), backup_args.end());
        const RunResult backed_up = backup(source_, file, args);
        EXPECT_EQ(backed_up.exit_code, 0) << backed_up.err;
        if (backed_up.exit_code != 0) return json();
        const json backup_report = stdout_json(backed_up);
        if (check_paths) {
            for (const auto& key : backup_report.at("keys"))
                EXPECT_EQ(key.at("path"), expected_backup_path(GetParam().from)) << key.dump(2);
        }

        std::vector<std::string> restore_all = {"--json"};
        restore_all.insert(restore_all.end(), restore_args.begin(), restore_args.end());
        const RunResult restored = restore(target_, file, restore_all);
        EXPECT_EQ(restored.exit_code, 0) << restored.err;
        if (restored.exit_code != 0) return json();
        json report = stdout_json(restored);
        if (check_paths) {
            for (const auto& key : report.at("keys"))
                EXPECT_EQ(key.at("path"), restore_path_for(GetParam().to)) << key.dump(2);
        }
        return report;
    }

    CK_OBJECT_HANDLE restored_key(pkcs11::Session& session, const pkcs11::Bytes& id) {
        return find_one(session, CKO_PRIVATE_KEY, id);
    }

    TestToken source_;
    TestToken target_;
    int files_ = 0;
};

TEST_P(RoundTripTest, RsaSignsPkcs1AndPssAndDecryptsOnTheNewToken) {
    const Made rsa = make_rsa({0x01}, "ca signing key");
    ASSERT_FALSE(round_trip({"--id", "01"}).is_null());
    EVP_PKEY* certified = X509_get0_pubkey(rsa.cert.cert.get());

    auto session = target_.open_session();
    const CK_OBJECT_HANDLE key = restored_key(*session, {0x01});

    // PKCS#1 v1.5 with SHA-256.
    const pkcs11::Bytes pkcs1 = sign_for_openssl(*session, key, CKK_RSA, message_bytes());
    EXPECT_TRUE(openssl_verify(certified, message_bytes(), pkcs1));

    // PSS with SHA-256, MGF1-SHA-256, 32-byte salt.
    CK_RSA_PKCS_PSS_PARAMS pss{CKM_SHA256, CKG_MGF1_SHA256, 32};
    const pkcs11::Bytes pss_signature =
        session->sign(pkcs11::Mechanism::with_struct(CKM_SHA256_RSA_PKCS_PSS, pss), key, message_bytes());
    {
        std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
        EVP_PKEY_CTX* pctx = nullptr;
        ASSERT_EQ(EVP_DigestVerifyInit(ctx.get(), &pctx, EVP_sha256(), nullptr, certified), 1);
        ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        ASSERT_EQ(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32), 1);
        ASSERT_EQ(EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()), 1);
        EXPECT_EQ(EVP_DigestVerify(ctx.get(), pss_signature.data(), pss_signature.size(), message_bytes().data(),
                                   message_bytes().size()),
                  1)
            << "the PSS signature of the restored key does not verify with the original certificate";
    }

    // Decryption of data encrypted to the certificate's public key (PKCS#1 v1.5).
    const std::string secret = "a session key for the restored CA";
    pkcs11::Bytes ciphertext;
    {
        std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new(certified, nullptr),
                                                                         &EVP_PKEY_CTX_free);
        ASSERT_EQ(EVP_PKEY_encrypt_init(ctx.get()), 1);
        ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING), 1);
        size_t length = 0;
        ASSERT_EQ(EVP_PKEY_encrypt(ctx.get(), nullptr, &length, reinterpret_cast<const unsigned char*>(secret.data()),
                                   secret.size()),
                  1);
        ciphertext.resize(length);
        ASSERT_EQ(EVP_PKEY_encrypt(ctx.get(), ciphertext.data(), &length,
                                   reinterpret_cast<const unsigned char*>(secret.data()), secret.size()),
                  1);
        ciphertext.resize(length);
    }
    const SecretBytes plain = session->decrypt(pkcs11::Mechanism(CKM_RSA_PKCS), key, ciphertext);
    EXPECT_EQ(std::string(plain.reveal_text()), secret);
}

TEST_P(RoundTripTest, EcKeysOfEveryCurveSignOnTheNewToken) {
    const Made p256 = make_ec("P-256", {0x02}, "ec p256");
    const Made p384 = make_ec("P-384", {0x03}, "ec p384");
    const Made p521 = make_ec("P-521", {0x04}, "ec p521");
    const json report = round_trip({"--all"});
    ASSERT_FALSE(report.is_null());
    EXPECT_EQ(report.at("keys").size(), 3u);
    auto session = target_.open_session();
    for (const Made* made : {&p256, &p384, &p521}) {
        SCOPED_TRACE(made->key.label);
        const CK_OBJECT_HANDLE key = restored_key(*session, made->key.id);
        EXPECT_EQ(key_type_of(*session, key), static_cast<CK_KEY_TYPE>(CKK_EC));
        EXPECT_TRUE(token_key_signs_for(*session, key, X509_get0_pubkey(made->cert.cert.get())));
    }
}

TEST_P(RoundTripTest, Ed25519SignsOnTheNewSoftHsmToken) {
    if (GetParam().from != Backend::softhsm) GTEST_SKIP() << "NSS softoken 3.87 has no Ed25519";
    TestKey ed;
    IssuedCert cert;
    {
        auto session = source_.open_session();
        // Only a non-sensitive Ed25519 key can leave SoftHSM (attribute-read).
        auto made = generate_ed25519(*session, {0x25}, "ed25519", {.sensitive = false, .extractable = true});
        if (!made) GTEST_SKIP() << "no Ed25519 on this token";
        ed = *made;
        cert = certify(*session, ed);
    }
    const std::string file = path("ed25519.p12");
    RunResult result = backup(source_, file, {"--id", "25", "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(stdout_json(result).at("keys")[0].at("path"), "attribute-read");

    const auto before = target_.objects();
    result = restore(target_, file, {"--json"});
    if (GetParam().to == Backend::nss) {
        // The target has no Ed25519: refused by key type, nothing written.
        EXPECT_EQ(result.exit_code, 6) << result.err;
        EXPECT_NE(result.err.find("Ed25519"), std::string::npos) << result.err;
        EXPECT_EQ(target_.objects(), before);
        return;
    }
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = stdout_json(result);
    EXPECT_EQ(document.at("keys")[0].at("path"), "host-decrypt");
    auto session = target_.open_session();
    const CK_OBJECT_HANDLE key = restored_key(*session, {0x25});
    EXPECT_EQ(key_type_of(*session, key), static_cast<CK_KEY_TYPE>(CKK_EC_EDWARDS));
    EXPECT_EQ(session->get_bool(key, CKA_SENSITIVE), true);
    EXPECT_EQ(session->get_bool(key, CKA_EXTRACTABLE), false);
    EXPECT_TRUE(token_key_signs_for(*session, key, X509_get0_pubkey(cert.cert.get())));
}

TEST_P(RoundTripTest, RestoredObjectsKeepIdLabelAndAreLockedDown) {
    const Made rsa = make_rsa({0x01, 0x02, 0x03}, "identity rsa");
    const Made ec = make_ec("P-256", {0x0e}, "identity ec");
    ASSERT_FALSE(round_trip({"--id", "010203"}).is_null());
    ASSERT_FALSE(round_trip({"--id", "0e"}, {"--extractable"}).is_null());

    auto session = target_.open_session();
    for (const Made* made : {&rsa, &ec}) {
        SCOPED_TRACE(made->key.label);
        const CK_OBJECT_HANDLE key = restored_key(*session, made->key.id);
        EXPECT_EQ(label_of(*session, key), made->key.label);
        EXPECT_EQ(id_of(*session, key), made->key.id);
        EXPECT_EQ(session->get_bool(key, CKA_SENSITIVE), true);
        EXPECT_EQ(session->get_bool(key, CKA_EXTRACTABLE), made == &ec) << "only the --extractable restore";
        EXPECT_EQ(session->get_bool(key, CKA_TOKEN), true);
        EXPECT_EQ(session->get_bool(key, CKA_PRIVATE), true);

        const auto public_keys = find_objects(*session, CKO_PUBLIC_KEY, made->key.id);
        ASSERT_EQ(public_keys.size(), 1u);
        EXPECT_EQ(label_of(*session, public_keys[0]), made->key.label);
        EXPECT_EQ(EVP_PKEY_eq(public_key_from_token(*session, public_keys[0]).get(),
                              X509_get0_pubkey(made->cert.cert.get())),
                  1);

        const auto certificates = find_objects(*session, CKO_CERTIFICATE, made->key.id);
        ASSERT_EQ(certificates.size(), 1u);
        EXPECT_EQ(label_of(*session, certificates[0]), made->key.label);
        EXPECT_EQ(X509_cmp(certificate_from_token(*session, certificates[0]).get(), made->cert.cert.get()), 0);
    }
}

TEST_P(RoundTripTest, SeveralKeysWithTheirIssuerInOneFile) {
    const Made rsa = make_rsa({0x01}, "first");
    const Made ec = make_ec("P-384", {0x02}, "second");
    {
        auto session = source_.open_session();
        add_certificate(*session, TestCa::instance().cert(), {0xca}, "test ca");
    }
    const json report = round_trip({"--all"});
    ASSERT_FALSE(report.is_null());
    EXPECT_EQ(report.at("keys").size(), 2u);
    EXPECT_EQ(report.at("certificates_written"), 3);
    const auto objects = target_.objects();
    EXPECT_EQ(count_class(objects, CKO_PRIVATE_KEY), 2u);
    EXPECT_EQ(count_class(objects, CKO_PUBLIC_KEY), 2u);
    EXPECT_EQ(count_class(objects, CKO_CERTIFICATE), 3u);
    auto session = target_.open_session();
    bool ca_on_target = false;
    for (CK_OBJECT_HANDLE object : find_objects(*session, CKO_CERTIFICATE))
        ca_on_target = ca_on_target || X509_cmp(certificate_from_token(*session, object).get(), TestCa::instance().cert()) == 0;
    EXPECT_TRUE(ca_on_target) << "the issuer certificate did not travel";
    for (const Made* made : {&rsa, &ec})
        EXPECT_TRUE(token_key_signs_for(*session, restored_key(*session, made->key.id),
                                        X509_get0_pubkey(made->cert.cert.get())));
}

TEST_P(RoundTripTest, LegacyProfileFileRestoresAndSigns) {
    const Made rsa = make_rsa({0x01}, "legacy rsa");
    const Made ec = make_ec("P-256", {0x02}, "legacy ec");
    const json report = round_trip({"--all"}, {}, {"--profile", "legacy"}, /*check_paths=*/false);
    ASSERT_FALSE(report.is_null());
    auto session = target_.open_session();
    for (const Made* made : {&rsa, &ec})
        EXPECT_TRUE(token_key_signs_for(*session, restored_key(*session, made->key.id),
                                        X509_get0_pubkey(made->cert.cert.get())));
}

TEST_P(RoundTripTest, RecordChainsBackupAndRestoreWithoutSecrets) {
    const Made ec = make_ec("P-256", {0x07}, "recorded");
    const std::string file = path("recorded.p12");
    const std::string record = path("ceremony.jsonl");
    RunResult result = backup(source_, file, {"--id", "07", "--record", record});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    result = restore(target_, file, {"--record", record});
    ASSERT_EQ(result.exit_code, 0) << result.err;

    const std::string text = read_text(record);
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) lines.push_back(line);
    ASSERT_EQ(lines.size(), 2u) << text;
    const json first = json::parse(lines[0]);
    const json second = json::parse(lines[1]);
    EXPECT_TRUE(first.at("previous_sha256").is_null());
    EXPECT_EQ(second.at("previous_sha256"), sha256_hex(lines[0]));
    EXPECT_EQ(first.at("command"), "backup");
    EXPECT_EQ(second.at("command"), "restore");
    EXPECT_EQ(first.at("token").at("label"), source_.label());
    EXPECT_EQ(second.at("token").at("label"), target_.label());
    EXPECT_EQ(first.at("file_sha256"), sha256_hex(read_text(file)));
    EXPECT_EQ(second.at("file_sha256"), first.at("file_sha256"));
    ASSERT_EQ(first.at("keys").size(), 1u);
    ASSERT_EQ(second.at("keys").size(), 1u);
    EXPECT_EQ(first.at("keys")[0].at("spki_sha256"), second.at("keys")[0].at("spki_sha256"));
    EXPECT_EQ(first.at("keys")[0].at("certificate_sha256"), second.at("keys")[0].at("certificate_sha256"));
    EXPECT_EQ(first.at("keys")[0].at("path"), expected_backup_path(GetParam().from));
    EXPECT_EQ(second.at("keys")[0].at("path"), restore_path_for(GetParam().to));
    EXPECT_EQ(text.find(kTestPassword), std::string::npos) << "the password is in the record";
    EXPECT_EQ(text.find(source_.user_pin()), std::string::npos) << "the PIN is in the record";
    EXPECT_EQ(text.find(target_.user_pin()), std::string::npos) << "the PIN is in the record";
}

TEST_P(RoundTripTest, KeyWithoutCertificateRoundTrips) {
    // No certificate on A: the file holds the key alone, and restore pairs nothing.
    TestKey key;
    PkeyPtr public_key;
    {
        auto session = source_.open_session();
        key = generate_rsa(*session, 2048, {0x0c}, "no certificate");
        public_key = public_key_from_token(*session, key.public_key);
    }
    const std::string file = path("no-certificate.p12");
    RunResult result = backup(source_, file, {"--id", "0c"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    result = restore(target_, file, {"--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = stdout_json(result);
    EXPECT_EQ(document.at("keys")[0].at("id"), "0c");
    auto session = target_.open_session();
    const CK_OBJECT_HANDLE restored = restored_key(*session, {0x0c});
    EXPECT_EQ(label_of(*session, restored), "no certificate");
    EXPECT_TRUE(token_key_signs_for(*session, restored, public_key.get()));
    EXPECT_EQ(find_objects(*session, CKO_PUBLIC_KEY, pkcs11::Bytes{0x0c}).size(), 1u);
}

TEST_P(RoundTripTest, NonAsciiLabelAndBinaryIdSurviveExactly) {
    // A UTF-8 label (friendlyName is a BMPString in the file) and an id with 00 and ff bytes.
    const pkcs11::Bytes id = {0x00, 0xff, 0x10, 0x00};
    const std::string label = "Schl\xc3\xbcssel der Wurzel-CA \xe2\x98\xba";
    const Made ec = make_ec("P-256", id, label);
    const json report = round_trip({"--id", "00ff1000"});
    ASSERT_FALSE(report.is_null());
    EXPECT_EQ(report.at("keys")[0].at("label"), label);
    auto session = target_.open_session();
    for (CK_OBJECT_CLASS object_class : {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_CERTIFICATE}) {
        const auto objects = find_objects(*session, object_class, id);
        ASSERT_EQ(objects.size(), 1u) << "class " << object_class;
        EXPECT_EQ(label_of(*session, objects[0]), label) << "class " << object_class;
    }
    EXPECT_TRUE(token_key_signs_for(*session, restored_key(*session, id), X509_get0_pubkey(ec.cert.cert.get())));
}

INSTANTIATE_TEST_SUITE_P(Directions, RoundTripTest,
                         ::testing::Values(Direction{Backend::softhsm, Backend::softhsm},
                                           Direction{Backend::nss, Backend::softhsm},
                                           Direction{Backend::softhsm, Backend::nss}),
                         direction_name);

}  // namespace
}  // namespace p11vault::testing
