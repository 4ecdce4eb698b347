// SPDX-License-Identifier: Apache-2.0
// Secrets p11vault refuses or warns about (issue 19, "Secrets"): no backup under the empty
// password or one OpenSSL cannot take, warnings for a short password and a low iteration
// count, no --iter its own readers refuse, and no usage error that echoes what was typed.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

class WeakSecretsTest : public ::testing::Test {
protected:
    WeakSecretsTest() : token_(Backend::softhsm) {
        auto session = token_.open_session();
        certify(*session, generate_ec(*session, "P-256", {0x51}, "weak-secrets-ec"));
        out_ = token_.dir() + "/out.p12";
    }

    // backup --all with the password from stdin (`bytes`, then end of file).
    RunResult backup_with_stdin_password(const std::string& bytes, std::vector<std::string> extra = {}) {
        std::vector<std::string> args = {"backup"};
        for (const auto& arg : token_.cli_token_args()) args.push_back(arg);
        const std::vector<std::string> rest = {"--pin", "file:" + token_.write_pin_file(), "--all", "--out", out_,
                                               "--password", "stdin"};
        args.insert(args.end(), rest.begin(), rest.end());
        args.insert(args.end(), extra.begin(), extra.end());
        RunOptions options;
        add_env_entries(options, token_.env_for_child());
        options.stdin_data = bytes;
        return run_p11vault(args, options);
    }

    static bool has_warning(const RunResult& result, const std::string& text) {
        for (const auto& line : result.err_lines())
            if (line.rfind("p11vault: warning: ", 0) == 0 && line.find(text) != std::string::npos) return true;
        return false;
    }

    TestToken token_;
    std::string out_;
};

TEST_F(WeakSecretsTest, AnEmptyBackupPasswordIsRefusedAndNoFileIsWritten) {
    const RunResult result = backup_with_stdin_password("");
    EXPECT_EQ(result.exit_code, 2) << result.err;
    ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
    EXPECT_NE(result.err.find("the backup password is empty"), std::string::npos) << result.err;
    EXPECT_FALSE(std::filesystem::exists(out_));
}

TEST_F(WeakSecretsTest, APasswordWithANulByteIsRefused) {
    const RunResult result = backup_with_stdin_password(std::string("long enough\0 password", 21) + "\n");
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_NE(result.err.find("NUL byte"), std::string::npos) << result.err;
    EXPECT_EQ(result.err.find("long enough"), std::string::npos) << "the password was echoed";
    EXPECT_FALSE(std::filesystem::exists(out_));
}

TEST_F(WeakSecretsTest, AShortPasswordIsWrittenWithAWarningInTextAndJson) {
    RunResult result = backup_with_stdin_password("pässwörd12\n", {"--iter", "600000"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_TRUE(has_warning(result, "has 10 characters, fewer than 12")) << result.err;
    EXPECT_FALSE(has_warning(result, "--iter")) << result.err;

    std::filesystem::remove(out_);
    result = backup_with_stdin_password("pässwörd12\n", {"--iter", "600000", "--json"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const nlohmann::json document = stdout_json(result);
    ASSERT_TRUE(document.contains("warnings")) << result.out;
    EXPECT_NE(document["warnings"].dump().find("fewer than 12"), std::string::npos) << result.out;
}

TEST_F(WeakSecretsTest, AGoodPasswordAtTheDefaultIterationsGetsNoWarning) {
    const RunResult result = backup_with_stdin_password("twelve chars+ and more\n", {"--iter", "600000"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_FALSE(has_warning(result, "password")) << result.err;
    EXPECT_FALSE(has_warning(result, "--iter")) << result.err;
}

TEST_F(WeakSecretsTest, IterationsBelowTheProfileDefaultAreWarnedAbout) {
    RunResult result = backup_with_stdin_password("twelve chars+ and more\n", {"--iter", "1000"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_TRUE(has_warning(result, "--iter 1000 is below the modern profile's 600000")) << result.err;

    std::filesystem::remove(out_);
    result = backup_with_stdin_password("twelve chars+ and more\n", {"--iter", "1000", "--profile", "legacy"});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_TRUE(has_warning(result, "--iter 1000 is below the legacy profile's 2000")) << result.err;
}

TEST_F(WeakSecretsTest, IterationsItsOwnReadersRefuseAreRefusedBeforeTheToken) {
    const RunResult result = backup_with_stdin_password("twelve chars+ and more\n", {"--iter", "10000001"});
    EXPECT_EQ(result.exit_code, 2) << result.err;
    ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
    EXPECT_NE(result.err.find("--iter 10000001 is above 10000000"), std::string::npos) << result.err;
    EXPECT_FALSE(std::filesystem::exists(out_));
}

TEST(UsageErrors, AMisspelledSecretOptionDoesNotEchoItsValue) {
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"backup", "--pasword", "pass:Sw0rdfish-42", "--all", "--out", "x.p12"},
          std::vector<std::string>{"backup", "--pasword=pass:Sw0rdfish-42", "--all", "--out", "x.p12"},
          std::vector<std::string>{"verify", "--in", "x.p12", "pass:Sw0rdfish-42"}}) {
        const RunResult result = run_p11vault(args);
        EXPECT_EQ(result.exit_code, 2) << result.err;
        ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
        EXPECT_EQ(result.err.find("Sw0rdfish"), std::string::npos) << result.err;
        EXPECT_NE(result.err.find("unexpected argument"), std::string::npos) << result.err;
        if (args[1].rfind("--pasword", 0) == 0) {
            EXPECT_NE(result.err.find("--pasword"), std::string::npos) << result.err;
        }
    }
}

}  // namespace
}  // namespace p11vault::testing
