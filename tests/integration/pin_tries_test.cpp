// SPDX-License-Identifier: Apache-2.0
// The user PIN of a token that is nearly or wholly used up (issue 8, process hardening):
// p11vault warns before it uses the PIN when the token reports CKF_USER_PIN_COUNT_LOW or
// CKF_USER_PIN_FINAL_TRY, refuses a locked PIN without calling C_Login, and never tries a
// PIN twice; an empty PIN never reaches C_Login, and a refused one is reported with the
// token's name and the PIN state it reports afterwards (issue 19). SoftHSM sets only
// CKF_USER_PIN_COUNT_LOW, after a wrong PIN; the fault module (tests/fault/fault_module.cpp)
// adds flags to what C_GetTokenInfo returns (P11VAULT_FAULT_TOKEN_FLAGS) and logs every
// call, so the test can count C_Login calls.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
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
    // The error names the token, says there was one try, and what the token reports now.
    EXPECT_TRUE(has_line_starting(run.result, "p11vault: error: ",
                                  "token \"pin-tries\" refused the PIN; p11vault does not retry: check the --pin "
                                  "source before trying again; the token says few tries are left"))
        << run.result.err;
}

TEST_F(PinTriesTest, AWrongPinBeforeTheFinalTrySaysOneIsLeft) {
    const LoggedRun run = backup_with(CKF_USER_PIN_FINAL_TRY, "99999999");
    EXPECT_EQ(run.result.exit_code, 5) << run.result.err;
    EXPECT_TRUE(has_line_starting(run.result, "p11vault: error: ", "the token says one try is left")) << run.result.err;
    EXPECT_EQ(run.logins, 1u);
}

TEST_F(PinTriesTest, AWrongPinSaysWhatTheTokenReportsAfterIt) {
    // No flags added: SoftHSM itself sets CKF_USER_PIN_COUNT_LOW once a PIN was wrong.
    const LoggedRun run = backup_with(0, "99999999");
    EXPECT_EQ(run.result.exit_code, 5) << run.result.err;
    EXPECT_TRUE(has_line_starting(run.result, "p11vault: error: ", "check the --pin source")) << run.result.err;
    EXPECT_TRUE(has_line_starting(run.result, "p11vault: error: ", "the token says few tries are left"))
        << run.result.err;
}

TEST(PinStates, ATokenWithoutAUserPinSaysHowToSetOne) {
    TestToken token(Backend::softhsm);
    // A second token in the same SoftHSM directory, initialized with an SO PIN only.
    std::optional<CK_SLOT_ID> free_slot;
    for (CK_SLOT_ID slot : token.module()->slots(true))
        if (!token.module()->token_info(slot).token_initialized()) free_slot = slot;
    ASSERT_TRUE(free_slot.has_value()) << "SoftHSM offers no free slot";
    RunOptions options;
    add_env_entries(options, token.env_for_child());
    const RunResult init = run({"pkcs11-tool", "--module", softhsm_module_path, "--init-token", "--slot",
                                std::to_string(*free_slot), "--so-pin", "12345678", "--label", "no-user-pin"},
                               options);
    ASSERT_EQ(init.exit_code, 0) << init.out << init.err;
    options.env["P11VAULT_TEST_PIN"] = "1234";
    const RunResult list = run_p11vault({"list", "--module", softhsm_module_path, "--token-label", "no-user-pin",
                                         "--pin", "env:P11VAULT_TEST_PIN"},
                                        options);
    EXPECT_EQ(list.exit_code, 5) << list.err;
    ASSERT_EQ(list.err_lines().size(), 1u) << list.err;
    EXPECT_NE(list.err.find("C_Login: CKR_USER_PIN_NOT_INITIALIZED"), std::string::npos) << list.err;
    EXPECT_NE(list.err.find("token \"no-user-pin\" has no user PIN yet: set one with the SO PIN"), std::string::npos)
        << list.err;
}

TEST_F(PinTriesTest, ALockedPinIsRefusedWithoutCallingCLogin) {
    const LoggedRun run = backup_with(CKF_USER_PIN_LOCKED, trimmed(right_pin()));
    EXPECT_EQ(run.result.exit_code, 5) << run.result.err;
    EXPECT_TRUE(has_line_starting(run.result, "p11vault: error: ", "is locked")) << run.result.err;
    EXPECT_EQ(run.logins, 0u);
}

TEST_F(PinTriesTest, AnEmptyPinIsRefusedWithoutCallingCLogin) {
    const LoggedRun run = backup_with(0, "");
    EXPECT_EQ(run.result.exit_code, 2) << run.result.err;
    EXPECT_TRUE(has_line_starting(run.result, "p11vault: error: ", "is empty")) << run.result.err;
    EXPECT_EQ(run.logins, 0u) << "an empty PIN must not reach the token: it can only cost a try";
    EXPECT_FALSE(file_exists(token_.dir() + "/out.p12"));
}

}  // namespace
}  // namespace p11vault::testing
