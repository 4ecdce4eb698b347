// SPDX-License-Identifier: Apache-2.0
// The user PIN of a token that is nearly or wholly used up (issue 8, process hardening):
// p11vault warns before it uses the PIN when the token reports CKF_USER_PIN_COUNT_LOW or
// CKF_USER_PIN_FINAL_TRY, refuses a locked PIN without calling C_Login, and never tries a
// PIN twice. SoftHSM does not set these flags itself; the fault module
// (tests/fault/fault_module.cpp) adds them to what C_GetTokenInfo returns
// (P11VAULT_FAULT_TOKEN_FLAGS) and logs every call, so the test can count C_Login calls.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

#ifndef P11VAULT_FAULT_MODULE_PATH
#error "P11VAULT_FAULT_MODULE_PATH must name the fault module (tests/fault/CMakeLists.txt)"
#endif

namespace p11vault::testing {
namespace {

struct LoggedRun {
    RunResult result;
    std::size_t logins = 0;  // C_Login calls that reached the module
};

class PinTriesTest : public ::testing::Test {
protected:
    PinTriesTest() : token_(Backend::softhsm, "pin-tries") {
        auto session = token_.open_session();
        certify(*session, generate_ec(*session, "P-256", {0x41}, "pin-tries-ec"));
    }

    // `p11vault backup --all` through the fault module with `flags` added to the token's
    // flags and the PIN from a file holding `pin`.
    LoggedRun backup_with(unsigned long flags, const std::string& pin) {
        const std::string log = token_.dir() + "/calls.log";
        const std::string pin_file = token_.dir() + "/pin.txt";
        const std::string out = token_.dir() + "/out.p12";
        std::filesystem::remove(log);
        std::filesystem::remove(out);
        write_text(pin_file, pin + "\n");
        std::filesystem::permissions(pin_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
        RunOptions options;
        add_env_entries(options, token_.env_for_child());
        options.env["P11VAULT_FAULT_MODULE"] = softhsm_module_path;
        options.env["P11VAULT_FAULT_LOG"] = log;
        options.env["P11VAULT_FAULT_TOKEN_FLAGS"] = std::to_string(flags);
        options.env[kPasswordVariable] = kTestPassword;
        LoggedRun run;
        run.result = run_p11vault({"backup", "--module", P11VAULT_FAULT_MODULE_PATH, "--token-label", token_.label(),
                                   "--pin", "file:" + pin_file, "--password", std::string("env:") + kPasswordVariable,
                                   "--all", "--iter", kFastIterations, "--out", out},
                                  options);
        std::ifstream in(log);
        for (std::string line; std::getline(in, line);)
            if (line.find(" C_Login ") != std::string::npos) ++run.logins;
        return run;
    }

    std::string right_pin() const { return read_text(token_.write_pin_file()); }

    TestToken token_;
};

std::string trimmed(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return text;
}

bool has_line_starting(const RunResult& result, const std::string& prefix, const std::string& containing) {
    const auto lines = result.err_lines();
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& line) {
        return line.rfind(prefix, 0) == 0 && line.find(containing) != std::string::npos;
    });
}

TEST_F(PinTriesTest, NoFlagNoWarning) {
    const LoggedRun run = backup_with(0, trimmed(right_pin()));
    ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
    EXPECT_EQ(run.result.err.find("PIN"), std::string::npos) << run.result.err;
    EXPECT_EQ(run.logins, 1u);
}

TEST_F(PinTriesTest, FinalTryIsWarnedAboutBeforeTheLogin) {
    const LoggedRun run = backup_with(CKF_USER_PIN_FINAL_TRY, trimmed(right_pin()));
    ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
    EXPECT_TRUE(has_line_starting(run.result, "p11vault: warning: ", "one PIN try left")) << run.result.err;
    EXPECT_EQ(run.logins, 1u);
}

TEST_F(PinTriesTest, CountLowIsWarnedAbout) {
    const LoggedRun run = backup_with(CKF_USER_PIN_COUNT_LOW, trimmed(right_pin()));
    ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
    EXPECT_TRUE(has_line_starting(run.result, "p11vault: warning: ", "few tries left")) << run.result.err;
}

TEST_F(PinTriesTest, AWrongPinIsTriedOnceAndIsExit5) {
    const LoggedRun run = backup_with(CKF_USER_PIN_COUNT_LOW, "99999999");
    EXPECT_EQ(run.result.exit_code, 5) << run.result.err;
    EXPECT_TRUE(has_line_starting(run.result, "p11vault: error: ", "CKR_PIN_INCORRECT")) << run.result.err;
    EXPECT_EQ(run.logins, 1u) << "a wrong PIN must never be retried: each try brings the token closer to locking";
    EXPECT_FALSE(file_exists(token_.dir() + "/out.p12"));
}

TEST_F(PinTriesTest, ALockedPinIsRefusedWithoutCallingCLogin) {
    const LoggedRun run = backup_with(CKF_USER_PIN_LOCKED, trimmed(right_pin()));
    EXPECT_EQ(run.result.exit_code, 5) << run.result.err;
    EXPECT_TRUE(has_line_starting(run.result, "p11vault: error: ", "is locked")) << run.result.err;
    EXPECT_EQ(run.logins, 0u);
}

}  // namespace
}  // namespace p11vault::testing
