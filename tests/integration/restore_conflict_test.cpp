// SPDX-License-Identifier: Apache-2.0
// `p11vault restore` meeting objects already on the token (issue 5, docs/cli.md
// --on-conflict): the same key again is exit 6 naming the key and what to do, skip writes
// nothing, replace leaves each object once and the new key signing, a label of the same
// class is a conflict too. The rest of restore: restore_test.cpp.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <string>
#include <vector>

#include "tests/integration/restore_fixture.hpp"

namespace p11vault::testing {
namespace {

using nlohmann::json;

TEST_P(RestoreTest, RestoringTwiceConflictsWithExit6AndChangesNothing) {
    const SourceFile file = openssl_export(token_.dir(), "twice", "RSA");
    ASSERT_EQ(restore(token_, file.path, {}).exit_code, 0);
    const auto before = token_.objects();
    const RunResult result = restore(token_, file.path, {});
    EXPECT_EQ(result.exit_code, 6);
    ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
    EXPECT_NE(result.err.find(hex(file.id)), std::string::npos) << "names the key: " << result.err;
    EXPECT_NE(result.err.find("--on-conflict"), std::string::npos) << "says what to do: " << result.err;
    EXPECT_EQ(token_.objects(), before);
    expect_objects_once(file.id);
}

TEST_P(RestoreTest, OnConflictSkipWritesNothingNew) {
    const SourceFile file = openssl_export(token_.dir(), "skip", "EC");
    ASSERT_EQ(restore(token_, file.path, {}).exit_code, 0);
    const auto before = token_.objects();
    const RunResult result = restore(token_, file.path, {"--on-conflict", "skip", "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const json document = stdout_json(result);
    EXPECT_EQ(document.at("keys")[0].at("status"), "skipped-conflict") << document.dump(2);
    EXPECT_EQ(document.at("certificates_written"), 0);
    EXPECT_EQ(token_.objects(), before);
}

TEST_P(RestoreTest, OnConflictReplaceLeavesEachObjectOnceAndTheKeySigns) {
    add_bystander();
    const SourceFile file = openssl_export(token_.dir(), "replace", "RSA");
    ASSERT_EQ(restore(token_, file.path, {}).exit_code, 0);
    const auto before = token_.objects();
    const RunResult result = restore(token_, file.path, {"--on-conflict", "replace", "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(stdout_json(result).at("keys")[0].at("status"), "replaced");
    EXPECT_EQ(token_.objects(), before) << "the same objects, each once";
    expect_objects_once(file.id);
    expect_signs(file.id, file.credential.cert.get());
}

TEST_P(RestoreTest, SameLabelOfTheSameClassIsAConflict) {
    {
        auto session = token_.open_session();
        certify(*session, generate_rsa(*session, 2048, {0x77}, "shared label"));
    }
    const HostCredential credential = make_host_credential(token_.dir(), "label-clash", "RSA");
    const std::string file = path("label-clash.p12");
    write_test_pfx(file, {{credential.key.get(), credential.cert.get(), {0x78}, "shared label"}});
    const auto before = token_.objects();
    const RunResult result = restore(token_, file, {});
    EXPECT_EQ(result.exit_code, 6) << result.err;
    ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
    EXPECT_NE(result.err.find("shared label"), std::string::npos) << result.err;
    EXPECT_EQ(token_.objects(), before);
}

TEST_P(RestoreTest, OnConflictReplaceSwapsAnOlderKeyWithTheSameId) {
    {
        auto session = token_.open_session();
        certify(*session, generate_rsa(*session, 2048, {0x42}, "old key"));
    }
    const HostCredential fresh = make_host_credential(token_.dir(), "fresh", "RSA");
    const std::string file = path("replacement.p12");
    write_test_pfx(file, {{fresh.key.get(), fresh.cert.get(), {0x42}, "new key"}});
    const auto before = token_.objects();
    EXPECT_EQ(restore(token_, file, {}).exit_code, 6);
    EXPECT_EQ(token_.objects(), before);

    const RunResult result = restore(token_, file, {"--on-conflict", "replace", "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(stdout_json(result).at("keys")[0].at("status"), "replaced");
    EXPECT_EQ(token_.objects().size(), before.size());
    expect_objects_once({0x42});
    auto session = token_.open_session();
    const CK_OBJECT_HANDLE key = find_one(*session, CKO_PRIVATE_KEY, {0x42});
    EXPECT_EQ(label_of(*session, key), "new key");
    EXPECT_TRUE(token_key_signs_for(*session, key, X509_get0_pubkey(fresh.cert.get())));
    const CK_OBJECT_HANDLE public_key = find_one(*session, CKO_PUBLIC_KEY, {0x42});
    EXPECT_EQ(EVP_PKEY_eq(public_key_from_token(*session, public_key).get(), fresh.key.get()), 1);
    const CK_OBJECT_HANDLE cert = find_one(*session, CKO_CERTIFICATE, {0x42});
    EXPECT_EQ(X509_cmp(certificate_from_token(*session, cert).get(), fresh.cert.get()), 0);
}

}  // namespace
}  // namespace p11vault::testing
