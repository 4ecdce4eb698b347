// SPDX-License-Identifier: Apache-2.0
// Every key a token holds (issue 20 item 1 and DSA of item 3). EC keys on every curve
// OpenSSL names: brainpool, secp256k1, P-192 and explicit parameters restore where the
// token takes them (SoftHSM takes all), with the curve in the key's type (list, verify and
// the restore table, text and --json), and are refused naming the curve and the token's
// answer where it does not (NSS softoken takes only the NIST curves); verify warns about
// such keys before anyone tries (and lists them in --json's would_not_restore); keys the
// token made on those curves back up, verify against their token, pass the drill and
// restore onto another. DSA keys restore where the token's CKM_DSA takes their size
// (SoftHSM: up to 1024 bits) and are refused naming that limit otherwise. A key p11vault
// could not restore is never backed up with exit 0.
#include <gtest/gtest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/dsa.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
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

struct Curve {
    const char* group;      // OpenSSL group name
    bool explicit_params;   // the key carries explicit parameters, not the curve's OID
    const char* type_name;  // p11vault's name of the key type
    bool nss_takes;         // whether NSS softoken holds keys on it
    const char* named_as;   // how a refusal names the curve
};

const Curve kCurves[] = {
    {"P-521", false, "EC-P521", true, "P-521"},
    {"secp256k1", false, "EC-secp256k1", false, "secp256k1"},
    {"brainpoolP256r1", false, "EC-brainpoolP256r1", false, "brainpoolP256r1"},
    {"brainpoolP384r1", false, "EC-brainpoolP384r1", false, "brainpoolP384r1"},
    {"brainpoolP512r1", false, "EC-brainpoolP512r1", false, "brainpoolP512r1"},
    {"prime192v1", false, "EC-P192", false, "P-192"},
    {"prime256v1", true, "EC-P256-explicit", false, "P-256 (explicit parameters)"},
};

// Whether a text table or listing has a cell `text` (two spaces or a line's start or end
// around it, as Table pads its columns).
bool has_cell(const std::string& output, const std::string& text) {
    for (auto at = output.find(text); at != std::string::npos; at = output.find(text, at + 1)) {
        const bool starts = at == 0 || output[at - 1] == '\n' || (at >= 2 && output.compare(at - 2, 2, "  ") == 0);
        const auto end = at + text.size();
        const bool ends = end == output.size() || output[end] == '\n' || output.compare(end, 2, "  ") == 0;
        if (starts && ends) return true;
    }
    return false;
}

PkeyPtr ec_key(const Curve& curve) {
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr),
                                                                    EVP_PKEY_CTX_free);
    std::string group = curve.group;
    std::string encoding = curve.explicit_params ? OSSL_PKEY_EC_ENCODING_EXPLICIT : OSSL_PKEY_EC_ENCODING_GROUP;
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group.data(), 0),
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, encoding.data(), 0),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY* key = nullptr;
    if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_params(ctx.get(), params) != 1 ||
        EVP_PKEY_generate(ctx.get(), &key) != 1)
        throw std::runtime_error(std::string("generating an EC key on ") + curve.group);
    return PkeyPtr(key);
}

// The DER ECParameters a key carries (its SubjectPublicKeyInfo's algorithm parameters).
pkcs11::Bytes ec_params_of(const EVP_PKEY* key) {
    unsigned char* der = nullptr;
    const int length = i2d_KeyParams(key, &der);
    if (length <= 0) throw std::runtime_error("i2d_KeyParams");
    pkcs11::Bytes out(der, der + length);
    OPENSSL_free(der);
    return out;
}

class CurveRestoreTest : public ::testing::TestWithParam<std::tuple<Backend, Curve>> {
protected:
    Backend backend() const { return std::get<0>(GetParam()); }
    const Curve& curve() const { return std::get<1>(GetParam()); }
    bool token_takes_it() const { return backend() != Backend::nss || curve().nss_takes; }
};

// A file from any producer with a key on the curve: restored and signing for its
// certificate, with the curve's parameters as the file has them, or refused (exit 6,
// dry run too) naming the curve and the token's answer, the token unchanged. verify
// against the token says beforehand whether it would restore.
TEST_P(CurveRestoreTest, RestoresWhereTheTokenTakesTheCurveElseRefusesNamingIt) {
    P11VAULT_REQUIRE_BACKEND(backend());
    TestToken token(backend());
    const PkeyPtr key = ec_key(curve());
    const IssuedCert cert = TestCa::instance().issue(key.get(), std::string("curve ") + curve().group);
    const std::string file = token.dir() + "/curve.p12";
    ASSERT_NO_FATAL_FAILURE(write_test_pfx(file, {{key.get(), cert.cert.get(), {0xc0, 0x01}, "curve key"}}));

    RunOptions with_password;
    with_password.env[kPasswordVariable] = kTestPassword;
    const RunResult listed =
        run_p11vault({"verify", "--in", file, "--password", std::string("env:") + kPasswordVariable, "--json"},
                     with_password);
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    EXPECT_EQ(stdout_json(listed).at("keys")[0].at("type"), curve().type_name) << listed.out;

    const RunResult checked = run_with_token(token, "verify", {"--in", file});
    EXPECT_EQ(checked.exit_code, 4) << checked.err;  // the key is not on the token yet
    EXPECT_TRUE(has_cell(checked.out, curve().type_name)) << checked.out;
    const bool warned = checked.err.find("would not restore onto this token") != std::string::npos;
    EXPECT_EQ(warned, !token_takes_it()) << checked.err;
    const RunResult checked_json = run_with_token(token, "verify", {"--in", file, "--json"});
    EXPECT_EQ(checked_json.exit_code, 4) << checked_json.err;
    const json would_not_restore = stdout_json(checked_json).at("token_comparison").at("would_not_restore");
    if (token_takes_it()) {
        EXPECT_TRUE(would_not_restore.empty()) << would_not_restore.dump(2);
    } else {
        ASSERT_EQ(would_not_restore.size(), 1u) << would_not_restore.dump(2);
        EXPECT_NE(would_not_restore[0].get<std::string>().find(std::string("curve ") + curve().named_as + " "),
                  std::string::npos)
            << would_not_restore.dump(2);
    }

    const auto before = token.objects();
    const RunResult dry = restore(token, file, {"--dry-run"});
    EXPECT_EQ(dry.exit_code, token_takes_it() ? 0 : 6) << dry.err;
    // The restore table names the curve in the key's type.
    if (token_takes_it()) {
        EXPECT_TRUE(has_cell(dry.out, curve().type_name)) << dry.out;
    }
    const RunResult restored = restore(token, file, {"--json"});
    if (!token_takes_it()) {
        EXPECT_EQ(restored.exit_code, 6) << restored.err;
        EXPECT_NE(restored.err.find(std::string("curve ") + curve().named_as + " "), std::string::npos)
            << restored.err;
        EXPECT_NE(restored.err.find("CKR_"), std::string::npos) << "the token's answer is not named: " << restored.err;
        EXPECT_NE(restored.err.find("nothing was written"), std::string::npos) << restored.err;
        EXPECT_EQ(token.objects(), before);
        return;
    }
    ASSERT_EQ(restored.exit_code, 0) << restored.err;
    const json report = stdout_json(restored);
    EXPECT_EQ(report.at("keys")[0].at("type"), curve().type_name) << report.dump(2);
    auto session = token.open_session();
    const CK_OBJECT_HANDLE restored_key = find_one(*session, CKO_PRIVATE_KEY, {0xc0, 0x01});
    EXPECT_TRUE(token_key_signs_for(*session, restored_key, X509_get0_pubkey(cert.cert.get())))
        << "the restored key's signature does not verify with the file's certificate";
    EXPECT_EQ(session->get_bytes(restored_key, CKA_EC_PARAMS), ec_params_of(key.get()))
        << "the token holds other domain parameters than the file";
    EXPECT_EQ(session->get_bool(restored_key, CKA_SENSITIVE), true);
    EXPECT_EQ(session->get_bool(restored_key, CKA_EXTRACTABLE), false);
}

// A file of many keys the token cannot hold: one error line with the reason once and the
// keys counted (issue 23), every key in the --json failure document, the token unchanged.
TEST(CurveRestoreRefusalTest, ManyRefusedKeysAreOneLineAndEachIsInTheJsonDocument) {
    P11VAULT_REQUIRE_BACKEND(Backend::nss);
    TestToken token(Backend::nss);
    const Curve& brainpool = kCurves[2];
    std::vector<PkeyPtr> keys;
    std::vector<IssuedCert> certs;
    std::vector<PfxEntry> entries;
    for (std::uint8_t i = 1; i <= 5; ++i) {
        keys.push_back(ec_key(brainpool));
        certs.push_back(TestCa::instance().issue(keys.back().get(), "brainpool " + std::to_string(i)));
    }
    for (std::size_t i = 0; i < keys.size(); ++i)
        entries.push_back({keys[i].get(), certs[i].cert.get(), {static_cast<std::uint8_t>(0xb0 + i)}, "bp"});
    const std::string file = token.dir() + "/brainpool.p12";
    ASSERT_NO_FATAL_FAILURE(write_test_pfx(file, entries));

    const auto before = token.objects();
    const RunResult restored = restore(token, file, {"--json"});
    EXPECT_EQ(restored.exit_code, 6) << restored.err;
    ASSERT_EQ(restored.err_lines().size(), 1u) << restored.err;
    EXPECT_EQ(restored.err.rfind("p11vault: error: cannot restore 5 keys (key bag 1 (id=b0 label=\"bp\"), "
                                 "key bag 2 (id=b1 label=\"bp\"), key bag 3 (id=b2 label=\"bp\") and 2 more): ",
                                 0),
              0u)
        << restored.err;
    EXPECT_EQ(occurrences(restored.err, "brainpoolP256r1"), 1u) << restored.err;
    EXPECT_EQ(token.objects(), before);

    const json document = stdout_json(restored);
    EXPECT_EQ(document.at("format"), "p11vault.error/1");
    EXPECT_EQ(document.at("command"), "restore");
    EXPECT_EQ(document.at("exit_code"), 6);
    EXPECT_EQ("p11vault: error: " + document.at("error").get<std::string>() + "\n", restored.err);
    const json items = document.at("items");
    ASSERT_EQ(items.size(), 5u) << document.dump(2);
    for (std::size_t i = 0; i < items.size(); ++i) {
        EXPECT_EQ(items[i].at("id"), fmt::format("b{}", i)) << items.dump(2);
        EXPECT_EQ(items[i].at("label"), "bp");
        EXPECT_EQ(items[i].at("where"), fmt::format("key bag {}", i + 1)) << items.dump(2);
        EXPECT_NE(items[i].at("reason").get<std::string>().find("brainpoolP256r1"), std::string::npos);
    }
}

std::string curve_test_name(const ::testing::TestParamInfo<std::tuple<Backend, Curve>>& info) {
    std::string name = backend_name(std::get<0>(info.param)) + "_" + std::get<1>(info.param).type_name;
    for (char& c : name)
        if (c == '-') c = '_';
    return name;
}

INSTANTIATE_TEST_SUITE_P(Curves, CurveRestoreTest,
                         ::testing::Combine(::testing::Values(Backend::softhsm, Backend::nss),
                                            ::testing::ValuesIn(kCurves)),
                         curve_test_name);

// Keys the token generated on those curves: list names them, backup takes them, verify
// finds them on their token, the drill signs with each, and they restore onto another
// token and sign there.
TEST(CurveBackupTest, TokenKeysOnEveryCurveBackUpVerifyAndRestoreOntoAnotherToken) {
    TestToken source(Backend::softhsm);
    TestToken target(Backend::softhsm);
    const std::vector<std::pair<std::string, std::string>> curves = {
        {"brainpoolP256r1", "EC-brainpoolP256r1"}, {"brainpoolP384r1", "EC-brainpoolP384r1"},
        {"brainpoolP512r1", "EC-brainpoolP512r1"}, {"secp256k1", "EC-secp256k1"},
        {"P-521", "EC-P521"}};
    std::vector<IssuedCert> certs;
    {
        auto session = source.open_session();
        for (std::size_t i = 0; i < curves.size(); ++i) {
            const TestKey key = generate_ec(*session, curves[i].first, {0xe0, static_cast<std::uint8_t>(i)},
                                            curves[i].first, {.sensitive = true, .extractable = true});
            certs.push_back(certify(*session, key));
        }
    }
    RunOptions options;
    add_env_entries(options, source.env_for_child());
    const RunResult listed = run_p11vault({"list", "--json", "--pin", "file:" + source.write_pin_file(), "--module",
                                           source.module_path(), "--token-label", source.label()},
                                          options);
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    std::vector<std::string> listed_types;
    const json listing = stdout_json(listed);
    for (const auto& object : listing.at("objects"))
        if (object.at("class") == "private-key") listed_types.push_back(object.at("algorithm").get<std::string>());
    for (const auto& [group, type] : curves)
        EXPECT_NE(std::find(listed_types.begin(), listed_types.end(), type), listed_types.end()) << listed.out;
    const RunResult listed_text = run_p11vault({"list", "--pin", "file:" + source.write_pin_file(), "--module",
                                                source.module_path(), "--token-label", source.label()},
                                               options);
    ASSERT_EQ(listed_text.exit_code, 0) << listed_text.err;
    for (const auto& [group, type] : curves) EXPECT_TRUE(has_cell(listed_text.out, type)) << listed_text.out;

    const std::string file = source.dir() + "/curves.p12";
    const RunResult backed_up = backup(source, file, {"--all", "--json"});
    ASSERT_EQ(backed_up.exit_code, 0) << backed_up.err;
    EXPECT_EQ(stdout_json(backed_up).at("keys").size(), curves.size());

    const RunResult verified = run_with_token(source, "verify", {"--in", file, "--json"});
    ASSERT_EQ(verified.exit_code, 0) << verified.out << verified.err;
    EXPECT_EQ(stdout_json(verified).at("token_comparison").at("matched"), curves.size()) << verified.out;

    // The drill restores every key onto a throw-away SoftHSM token and signs with it.
    RunOptions with_password;
    with_password.env[kPasswordVariable] = kTestPassword;
    const RunResult drilled = run_p11vault(
        {"verify", "--in", file, "--password", std::string("env:") + kPasswordVariable, "--drill", "--json"},
        with_password);
    ASSERT_EQ(drilled.exit_code, 0) << drilled.out << drilled.err;
    const json drill = stdout_json(drilled).at("drill");
    ASSERT_EQ(drill.size(), curves.size()) << drilled.out;
    for (const auto& curve : curves) {
        const std::string& type = curve.second;  // not a structured binding: clang 14 captures none
        const auto entry = std::find_if(drill.begin(), drill.end(), [&](const json& d) { return d.at("type") == type; });
        ASSERT_NE(entry, drill.end()) << type << " is not drilled: " << drill.dump(2);
        EXPECT_TRUE(entry->at("ok").get<bool>()) << entry->dump();
    }

    const RunResult restored = restore(target, file, {"--json"});
    ASSERT_EQ(restored.exit_code, 0) << restored.err;
    expect_every_key_signs(target, file, kTestPassword, stdout_json(restored), curves.size());
}

// A DSA key with its certificate in a file, `bits` the size of p.
struct DsaFile {
    PkeyPtr key;
    IssuedCert cert;
};
DsaFile dsa_file(const std::string& path, unsigned bits, const pkcs11::Bytes& id) {
    using Ctx = std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)>;
    Ctx param_ctx(EVP_PKEY_CTX_new_from_name(nullptr, "DSA", nullptr), EVP_PKEY_CTX_free);
    EVP_PKEY* params = nullptr;
    if (!param_ctx || EVP_PKEY_paramgen_init(param_ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_dsa_paramgen_bits(param_ctx.get(), static_cast<int>(bits)) != 1 ||
        EVP_PKEY_paramgen(param_ctx.get(), &params) != 1)
        throw std::runtime_error("DSA parameter generation");
    PkeyPtr domain(params);
    Ctx key_ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, domain.get(), nullptr), EVP_PKEY_CTX_free);
    EVP_PKEY* key = nullptr;
    if (!key_ctx || EVP_PKEY_keygen_init(key_ctx.get()) != 1 || EVP_PKEY_generate(key_ctx.get(), &key) != 1)
        throw std::runtime_error("DSA key generation");
    DsaFile out{PkeyPtr(key), TestCa::instance().issue(key, "dsa " + std::to_string(bits))};
    write_test_pfx(path, {{out.key.get(), out.cert.cert.get(), id, "dsa key"}});
    return out;
}

// A DSA key SoftHSM's CKM_DSA takes restores and signs for its certificate, with the
// file's domain; backed up again from the token it verifies against it and restores onto
// another token.
TEST(DsaTest, RestoresOntoSoftHsmSignsAndBacksUpAgain) {
    TestToken source(Backend::softhsm);
    TestToken target(Backend::softhsm);
    const std::string file = source.dir() + "/dsa.p12";
    const pkcs11::Bytes id = {0xd5, 0xa1};
    DsaFile dsa;
    ASSERT_NO_THROW(dsa = dsa_file(file, 1024, id));

    const RunResult dry = restore(source, file, {"--dry-run"});
    EXPECT_EQ(dry.exit_code, 0) << dry.err;
    // --extractable: the key is to leave this token again below.
    const RunResult restored = restore(source, file, {"--json", "--extractable"});
    ASSERT_EQ(restored.exit_code, 0) << restored.err;
    EXPECT_EQ(stdout_json(restored).at("keys")[0].at("type"), "DSA-1024") << restored.out;
    {
        auto session = source.open_session();
        const CK_OBJECT_HANDLE key = find_one(*session, CKO_PRIVATE_KEY, id);
        EXPECT_EQ(key_type_of(*session, key), static_cast<CK_KEY_TYPE>(CKK_DSA));
        EXPECT_TRUE(token_key_signs_for(*session, key, X509_get0_pubkey(dsa.cert.cert.get())));
    }

    const std::string again = source.dir() + "/dsa-again.p12";
    const RunResult backed_up = backup(source, again, {"--all", "--json"});
    ASSERT_EQ(backed_up.exit_code, 0) << backed_up.err;
    EXPECT_EQ(stdout_json(backed_up).at("keys")[0].at("type"), "DSA-1024") << backed_up.out;
    const RunResult verified = run_with_token(source, "verify", {"--in", again, "--json"});
    ASSERT_EQ(verified.exit_code, 0) << verified.out << verified.err;
    EXPECT_EQ(stdout_json(verified).at("token_comparison").at("matched"), 1) << verified.out;
    const RunResult moved = restore(target, again, {"--json"});
    ASSERT_EQ(moved.exit_code, 0) << moved.err;
    expect_every_key_signs(target, again, kTestPassword, stdout_json(moved), 1);
}

// DSA-2048 (a file Windows' Microsoft CSP layout made) is over SoftHSM's CKM_DSA limit
// (512 to 1024 bits): refused before anything is written, naming the limit, and verify
// against the token says so beforehand. NSS softoken takes it, and the key signs there.
const std::string kDsa2048File = std::string(P11VAULT_CORPUS_DIR) + "/openssl3-dsa-2048-ms-csp.p12";
constexpr const char* kDsa2048Password = "secret123";

TEST(DsaTest, KeysOverTheTokensLimitAreRefusedNamingIt) {
    TestToken token(Backend::softhsm);
    const std::string limit = "CKM_DSA takes keys of 512 to 1024 bits, not 2048";
    const RunResult checked = run_with_token(token, "verify", {"--in", kDsa2048File}, kDsa2048Password);
    EXPECT_EQ(checked.exit_code, 4) << checked.err;
    EXPECT_NE(checked.err.find(limit), std::string::npos) << checked.err;
    const auto before = token.objects();
    for (const std::vector<std::string>& args : {std::vector<std::string>{"--dry-run"}, std::vector<std::string>{}}) {
        const RunResult refused = restore(token, kDsa2048File, args, kDsa2048Password);
        EXPECT_EQ(refused.exit_code, 6) << refused.err;
        EXPECT_NE(refused.err.find(limit), std::string::npos) << refused.err;
    }
    EXPECT_EQ(token.objects(), before);
}

TEST(DsaTest, Dsa2048RestoresOntoNssSoftokenAndSigns) {
    P11VAULT_REQUIRE_BACKEND(Backend::nss);
    TestToken token(Backend::nss);
    const RunResult restored = restore(token, kDsa2048File, {"--json"}, kDsa2048Password);
    ASSERT_EQ(restored.exit_code, 0) << restored.err;
    const json report = stdout_json(restored);
    EXPECT_EQ(report.at("keys")[0].at("type"), "DSA-2048") << report.dump(2);
    expect_every_key_signs(token, kDsa2048File, kDsa2048Password, report, 1);
}

// A Diffie-Hellman key pair (SoftHSM makes them; p11vault does not restore them): backup
// refuses it with exit 6 naming the type, and --skip-unsupported leaves it on the token
// and says so, instead of writing a file the restore would refuse.
TEST(UnrestorableKeyTest, BackupRefusesAKeyTypeRestoreCannotTake) {
    TestToken token(Backend::softhsm);
    {
        auto session = token.open_session();
        // The RFC 7919 group's p and g.
        std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "DH", nullptr),
                                                                        EVP_PKEY_CTX_free);
        char group_name[] = "ffdhe2048";
        const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group_name, 0),
                                     OSSL_PARAM_construct_end()};
        EVP_PKEY* made = nullptr;
        ASSERT_TRUE(ctx && EVP_PKEY_paramgen_init(ctx.get()) == 1 && EVP_PKEY_CTX_set_params(ctx.get(), params) == 1 &&
                    EVP_PKEY_paramgen(ctx.get(), &made) == 1);
        std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> group(made, EVP_PKEY_free);
        auto component = [&](const char* name) {
            BIGNUM* bn = nullptr;
            if (EVP_PKEY_get_bn_param(group.get(), name, &bn) != 1) throw std::runtime_error(name);
            pkcs11::Bytes out(static_cast<std::size_t>(BN_num_bytes(bn)));
            BN_bn2bin(bn, out.data());
            BN_free(bn);
            return out;
        };
        pkcs11::AttributeTemplate public_template;
        public_template.add_bool(CKA_TOKEN, true)
            .add_bytes(CKA_PRIME, component(OSSL_PKEY_PARAM_FFC_P))
            .add_bytes(CKA_BASE, component(OSSL_PKEY_PARAM_FFC_G))
            .add_bytes(CKA_ID, pkcs11::Bytes{0xd4})
            .add_string(CKA_LABEL, "dh key");
        pkcs11::AttributeTemplate private_template;
        private_template.add_bool(CKA_TOKEN, true)
            .add_bool(CKA_PRIVATE, true)
            .add_bool(CKA_SENSITIVE, true)
            .add_bool(CKA_EXTRACTABLE, true)
            .add_bool(CKA_DERIVE, true)
            .add_bytes(CKA_ID, pkcs11::Bytes{0xd4})
            .add_string(CKA_LABEL, "dh key");
        session->generate_key_pair(pkcs11::Mechanism(CKM_DH_PKCS_KEY_PAIR_GEN), public_template, private_template);
        generate_ec(*session, "P-256", {0xec}, "ec key", {.sensitive = true, .extractable = true});
    }
    const std::string file = token.dir() + "/dh.p12";
    const RunResult refused = backup(token, file, {"--all"});
    EXPECT_EQ(refused.exit_code, 6) << refused.err;
    EXPECT_NE(refused.err.find("p11vault cannot restore"), std::string::npos) << refused.err;
    EXPECT_NE(refused.err.find("CKK_DH"), std::string::npos) << refused.err;
    EXPECT_FALSE(file_exists(file));

    const RunResult skipped = backup(token, file, {"--all", "--skip-unsupported", "--json"});
    ASSERT_EQ(skipped.exit_code, 0) << skipped.err;
    const json report = stdout_json(skipped);
    ASSERT_EQ(report.at("keys").size(), 1u) << report.dump(2);
    EXPECT_EQ(report.at("keys")[0].at("type"), "EC-P256");
    EXPECT_NE(skipped.err.find("left on the token"), std::string::npos) << skipped.err;
}

}  // namespace
}  // namespace p11vault::testing
