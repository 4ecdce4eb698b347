// SPDX-License-Identifier: Apache-2.0
// `p11vault verify` with token options (issue 6): the file is compared with a live
// SoftHSM token, key by key (same public key under the same CKA_ID), and the report says
// which keys were added to or removed from the token since the backup.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "tests/integration/verify_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

using namespace verify_helpers;

// ---------------------------------------------------------------------------------------
// Comparison with a token.

std::vector<std::string> with_token(const TestToken& token, std::vector<std::string> args) {
    const auto token_args = token.cli_token_args();
    args.insert(args.end(), token_args.begin(), token_args.end());
    args.insert(args.end(), {"--pin", std::string("env:") + kPinVariable});
    return args;
}

RunOptions token_env(const TestToken& token) {
    RunOptions options;
    add_env_entries(options, token.env_for_child());
    options.env[kPinVariable] = token.user_pin();
    return options;
}

void destroy_objects_with_id(pkcs11::Session& session, const Bytes& id) {
    pkcs11::AttributeTemplate match;
    match.add_bytes(CKA_ID, id);
    const auto handles = session.find(match);
    ASSERT_FALSE(handles.empty());
    for (CK_OBJECT_HANDLE handle : handles) session.destroy_object(handle);
}

TEST(VerifyWithToken, BackupMatchesItsTokenThenReportsKeysAddedAndRemoved) {
    TestToken token(Backend::softhsm);
    {
        auto session = token.open_session();
        const TestKey a = generate_rsa(*session, 2048, {0x0a, 0x01}, "key A");
        certify(*session, a);
        const TestKey b = generate_ec(*session, "P-256", {0x0b, 0x02}, "key B");
        certify(*session, b);
    }
    const std::string file = token.dir() + "/backup.p12";
    RunOptions options = token_env(token);
    options.env[kPasswordVariable] = "backup password 1";
    const RunResult backup = run_p11vault(
        with_token(token, {"backup", "--all", "--out", file, "--password", std::string("env:") + kPasswordVariable,
                           "--iter", "2000"}),
        options);
    ASSERT_EQ(backup.exit_code, 0) << backup.out << backup.err;

    {
        const RunResult result = verify(with_token(token, {"--in", file, "--json"}), "backup password 1", token_env(token));
        ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
        const json comparison = stdout_json(result).at("token_comparison");
        EXPECT_EQ(comparison.at("matched"), 2) << comparison.dump(2);
        EXPECT_TRUE(comparison.at("missing_on_token").empty()) << comparison.dump(2);
        EXPECT_TRUE(comparison.at("missing_in_file").empty()) << comparison.dump(2);
    }

    // Key C joins the token, key B leaves it.
    {
        auto session = token.open_session();
        const TestKey c = generate_ec(*session, "P-256", {0x0c, 0x03}, "key C");
        certify(*session, c);
        destroy_objects_with_id(*session, {0x0b, 0x02});
    }
    const auto objects_before = token.objects();
    const RunResult result = verify(with_token(token, {"--in", file, "--json"}), "backup password 1", token_env(token));
    EXPECT_EQ(result.exit_code, 4) << result.out << result.err;
    expect_one_error_line(result);
    const json comparison = stdout_json(result).at("token_comparison");
    EXPECT_EQ(comparison.at("matched"), 1) << comparison.dump(2);
    ASSERT_EQ(comparison.at("missing_on_token").size(), 1u) << comparison.dump(2);
    ASSERT_EQ(comparison.at("missing_in_file").size(), 1u) << comparison.dump(2);
    const std::string missing_on_token = lower(comparison.at("missing_on_token").at(0).get<std::string>());
    const std::string missing_in_file = lower(comparison.at("missing_in_file").at(0).get<std::string>());
    EXPECT_NE(missing_on_token.find("0b02"), std::string::npos) << missing_on_token;
    EXPECT_NE(missing_in_file.find("0c03"), std::string::npos) << missing_in_file;
    EXPECT_EQ(missing_on_token.find("0a01"), std::string::npos) << missing_on_token;
    // Verify only reads the token.
    EXPECT_EQ(token.objects(), objects_before);

    // The human output lists the differences too.
    const RunResult text = verify(with_token(token, {"--in", file}), "backup password 1", token_env(token));
    EXPECT_EQ(text.exit_code, 4);
    EXPECT_NE(lower(text.out).find("0b02"), std::string::npos) << text.out;
    EXPECT_NE(lower(text.out).find("0c03"), std::string::npos) << text.out;
}

TEST(VerifyWithToken, SameKeyUnderAnotherIdIsADifference) {
    // The file's key is on the token, but with another CKA_ID: still exit 4.
    TestToken token(Backend::softhsm);
    {
        auto session = token.open_session();
        const TestKey a = generate_ec(*session, "P-256", {0x01}, "key A");
        certify(*session, a);
    }
    const std::string file = token.dir() + "/backup.p12";
    RunOptions options = token_env(token);
    options.env[kPasswordVariable] = "pw";
    const RunResult backup = run_p11vault(
        with_token(token, {"backup", "--all", "--out", file, "--password", std::string("env:") + kPasswordVariable,
                           "--iter", "2000"}),
        options);
    ASSERT_EQ(backup.exit_code, 0) << backup.err;
    {
        auto session = token.open_session();
        pkcs11::AttributeTemplate match;
        match.add_bytes(CKA_ID, Bytes{0x01});
        for (CK_OBJECT_HANDLE handle : session->find(match)) {
            pkcs11::AttributeTemplate change;
            change.add_bytes(CKA_ID, Bytes{0x02});
            session->set_attributes(handle, change);
        }
    }
    const RunResult result = verify(with_token(token, {"--in", file, "--json"}), "pw", token_env(token));
    EXPECT_EQ(result.exit_code, 4) << result.out << result.err;
    const json comparison = stdout_json(result).at("token_comparison");
    EXPECT_EQ(comparison.at("matched"), 0) << comparison.dump(2);
    EXPECT_FALSE(comparison.at("missing_on_token").empty()) << comparison.dump(2);
}

}  // namespace
}  // namespace p11vault::testing
