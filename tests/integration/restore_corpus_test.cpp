// SPDX-License-Identifier: Apache-2.0
// `p11vault restore` of real files from the corpus (issue 5): every key of files from
// OpenSSL, Windows and keytool restores onto SoftHSM and NSS softoken and signs for its
// certificate; key types the token cannot hold are refused by type before anything is
// written, and skipped on request. (The operator's view of restore: restore_test.cpp.)
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

using nlohmann::json;

// --- corpus files: real producers -------------------------------------------------------

struct CorpusCase {
    const char* file;
    const char* password;
    std::size_t keys;
};

std::ostream& operator<<(std::ostream& out, const CorpusCase& c) { return out << c.file; }

class RestoreCorpusTest : public ::testing::TestWithParam<std::tuple<Backend, CorpusCase>> {};

TEST_P(RestoreCorpusTest, RestoresAndEveryKeySignsForItsCertificate) {
    const auto [backend, corpus] = GetParam();
    TestToken token(backend);
    const std::string file = std::string(P11VAULT_CORPUS_DIR) + "/" + corpus.file;
    ASSERT_TRUE(file_exists(file)) << file;
    const P12File parsed = read_p12(file, corpus.password);
    const auto before = token.objects();

    const RunResult result = restore(token, file, {"--json"}, corpus.password);
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = stdout_json(result);
    ASSERT_EQ(document.at("keys").size(), corpus.keys) << document.dump(2);
    const auto after = token.objects();
    EXPECT_EQ(count_class(after, CKO_PRIVATE_KEY), count_class(before, CKO_PRIVATE_KEY) + corpus.keys);
    EXPECT_GT(count_class(after, CKO_CERTIFICATE), count_class(before, CKO_CERTIFICATE));

    expect_every_key_signs(token, file, corpus.password, document, corpus.keys);
    // Beyond that: each key is locked down, and its certificate is on the token too.
    auto session = token.open_session();
    for (const auto& key : document.at("keys")) {
        SCOPED_TRACE(key.dump());
        const X509* cert = nullptr;
        for (const P12Bag* bag : parsed.certificates())
            if (spki_sha256_hex(X509_get0_pubkey(bag->cert.get())) == key.at("spki_sha256")) cert = bag->cert.get();
        ASSERT_NE(cert, nullptr) << "no certificate in the file for this key";
        const auto handles = find_objects(*session, CKO_PRIVATE_KEY, bytes_from_hex(key.at("id")));
        ASSERT_EQ(handles.size(), 1u);
        EXPECT_EQ(session->get_bool(handles[0], CKA_SENSITIVE), true);
        EXPECT_EQ(session->get_bool(handles[0], CKA_EXTRACTABLE), false);
        bool on_token = false;
        for (CK_OBJECT_HANDLE object : find_objects(*session, CKO_CERTIFICATE))
            on_token = on_token || X509_cmp(certificate_from_token(*session, object).get(), cert) == 0;
        EXPECT_TRUE(on_token);
    }
}

std::string corpus_name(const ::testing::TestParamInfo<std::tuple<Backend, CorpusCase>>& info) {
    std::string name = backend_name(std::get<0>(info.param)) + "_" + std::get<1>(info.param).file;
    std::replace_if(name.begin(), name.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
    return name;
}

INSTANTIATE_TEST_SUITE_P(Corpus, RestoreCorpusTest,
                         ::testing::Combine(all_backends(),
                                            ::testing::Values(CorpusCase{"openssl3-ec-p384.p12", "password", 1},
                                                              CorpusCase{"windows-certmgr-pbes2-aes256-sha256.p12",
                                                                         "password", 1},
                                                              CorpusCase{"windows7-certmgr-legacy.p12", "foo", 1},
                                                              CorpusCase{"keytool-two-entries.p12", "password", 2})),
                         corpus_name);

// --- key types the token does not hold --------------------------------------------------------

struct UnsupportedCase {
    const char* file;
    const char* key_type;  // as the error names it
};

std::ostream& operator<<(std::ostream& out, const UnsupportedCase& c) { return out << c.file; }

class RestoreUnsupportedTest : public ::testing::TestWithParam<std::tuple<Backend, UnsupportedCase>> {};

TEST_P(RestoreUnsupportedTest, IsRefusedByTypeAndSkippedOnRequest) {
    const auto [backend, unsupported] = GetParam();
    TestToken token(backend);
    const std::string file = std::string(P11VAULT_CORPUS_DIR) + "/" + unsupported.file;
    const auto before = token.objects();

    RunResult result = restore(token, file, {}, "secret123");
    EXPECT_EQ(result.exit_code, 6);
    ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
    EXPECT_NE(result.err.find(unsupported.key_type), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("--skip-unsupported"), std::string::npos) << "says what to do: " << result.err;
    EXPECT_EQ(token.objects(), before);

    result = restore(token, file, {"--skip-unsupported", "--json"}, "secret123");
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = stdout_json(result);
    ASSERT_EQ(document.at("keys").size(), 1u);
    const json key = document.at("keys")[0];
    EXPECT_EQ(key.at("status"), "skipped-unsupported");
    const auto after = token.objects();
    EXPECT_EQ(count_class(after, CKO_PRIVATE_KEY), count_class(before, CKO_PRIVATE_KEY));
    EXPECT_EQ(count_class(after, CKO_PUBLIC_KEY), count_class(before, CKO_PUBLIC_KEY));

    // The chain (every certificate of the file but the skipped key's own) is on the token.
    const P12File parsed = read_p12(file, "secret123");
    auto session = token.open_session();
    std::vector<X509Ptr> on_token;
    for (CK_OBJECT_HANDLE object : find_objects(*session, CKO_CERTIFICATE))
        on_token.push_back(certificate_from_token(*session, object));
    std::size_t chain = 0;
    for (const P12Bag* bag : parsed.certificates()) {
        if (spki_sha256_hex(X509_get0_pubkey(bag->cert.get())) == key.at("spki_sha256")) continue;
        ++chain;
        EXPECT_TRUE(std::any_of(on_token.begin(), on_token.end(),
                                [&](const X509Ptr& cert) { return X509_cmp(cert.get(), bag->cert.get()) == 0; }))
            << "a chain certificate of the file is not on the token";
    }
    EXPECT_EQ(chain, 2u);
    EXPECT_GE(document.at("certificates_written").get<std::size_t>(), chain);
}

std::string unsupported_name(const ::testing::TestParamInfo<std::tuple<Backend, UnsupportedCase>>& info) {
    std::string name = backend_name(std::get<0>(info.param)) + "_" + std::get<1>(info.param).file;
    for (char& c : name)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    return name;
}

INSTANTIATE_TEST_SUITE_P(Corpus, RestoreUnsupportedTest,
                         ::testing::Combine(all_backends(),
                                            ::testing::Values(UnsupportedCase{"openssl3-x25519.p12", "X25519"})),
                         unsupported_name);
// DSA-2048 is over SoftHSM's CKM_DSA limit (1024 bits); NSS softoken takes it
// (tests/integration/key_types_test.cpp).
INSTANTIATE_TEST_SUITE_P(CorpusDsa, RestoreUnsupportedTest,
                         ::testing::Combine(::testing::Values(Backend::softhsm),
                                            ::testing::Values(UnsupportedCase{"openssl3-dsa-2048-ms-csp.p12",
                                                                              "CKM_DSA takes keys of 512 to 1024 bits"})),
                         unsupported_name);

}  // namespace
}  // namespace p11vault::testing
