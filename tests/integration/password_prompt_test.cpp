// SPDX-License-Identifier: Apache-2.0
// The password prompt of backup (issue 4): with no --password on a terminal, backup asks
// twice without echo and writes the file only when both answers agree; restore asks
// once. Run through the real binary on a pseudo-terminal (tests/support/pseudo_terminal).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/pseudo_terminal.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

class PasswordPromptTest : public ::testing::Test {
protected:
    PasswordPromptTest() : token_(Backend::softhsm, "prompt") {
        auto session = token_.open_session();
        certify(*session, generate_ec(*session, "P-256", {0x61}, "prompt-ec"));
    }

    std::vector<std::string> token_args(const std::string& subcommand) const {
        std::vector<std::string> argv = {P11VAULT_BINARY, subcommand};
        for (const auto& arg : token_.cli_token_args()) argv.push_back(arg);
        argv.push_back("--pin");
        argv.push_back("file:" + token_.write_pin_file());
        return argv;
    }

    TestToken token_;
};

TEST_F(PasswordPromptTest, BackupAsksTwiceAndWritesWhenBothAgree) {
    PseudoTerminal terminal;
    ASSERT_TRUE(terminal.ok());
    const std::string file = token_.dir() + "/prompted.p12";
    std::vector<std::string> argv = token_args("backup");
    for (const char* arg : {"--all", "--iter", kFastIterations, "--out"}) argv.push_back(arg);
    argv.push_back(file);
    const std::string output = token_.dir() + "/backup.out";
    const pid_t child = terminal.spawn_program(argv, token_.env_for_child(), output);
    std::string seen;
    ASSERT_FALSE(terminal.read_until("Enter backup password: ", seen).empty()) << seen << read_text(output);
    EXPECT_FALSE(terminal.echo_on()) << "the password is echoed";
    ASSERT_TRUE(terminal.type("prompted password\n"));
    ASSERT_FALSE(terminal.read_until("Enter backup password again: ", seen).empty()) << seen << read_text(output);
    ASSERT_TRUE(terminal.type("prompted password\n"));
    EXPECT_EQ(wait_for(child), 0) << read_text(output);
    terminal.drain(seen);
    EXPECT_EQ(seen.find("prompted password"), std::string::npos) << "the password appeared on the terminal";
    ASSERT_TRUE(file_exists(file));
    EXPECT_EQ(read_p12(file, "prompted password").keys().size(), 1u);

    // restore asks once, and the same answer opens the file.
    TestToken target(Backend::softhsm, "prompt-target");
    PseudoTerminal restore_terminal;
    std::vector<std::string> restore_argv = {P11VAULT_BINARY, "restore"};
    for (const auto& arg : target.cli_token_args()) restore_argv.push_back(arg);
    for (const std::string& arg : {std::string("--pin"), "file:" + target.write_pin_file(), std::string("--in"), file})
        restore_argv.push_back(arg);
    const std::string restore_output = token_.dir() + "/restore.out";
    const pid_t restoring = restore_terminal.spawn_program(restore_argv, target.env_for_child(), restore_output);
    std::string restore_seen;
    ASSERT_FALSE(restore_terminal.read_until("Enter password of ", restore_seen).empty()) << read_text(restore_output);
    ASSERT_TRUE(restore_terminal.type("prompted password\n"));
    EXPECT_EQ(wait_for(restoring), 0) << read_text(restore_output);
    restore_terminal.drain(restore_seen);
    EXPECT_EQ(restore_seen.find("again"), std::string::npos) << "restore must not ask twice: " << restore_seen;
    EXPECT_EQ(count_class(target.objects(), CKO_PRIVATE_KEY), 1u);
}

TEST_F(PasswordPromptTest, BackupRefusesTwoDifferentAnswersAndWritesNothing) {
    PseudoTerminal terminal;
    ASSERT_TRUE(terminal.ok());
    const std::string file = token_.dir() + "/mismatch.p12";
    std::vector<std::string> argv = token_args("backup");
    for (const char* arg : {"--all", "--iter", kFastIterations, "--out"}) argv.push_back(arg);
    argv.push_back(file);
    const std::string output = token_.dir() + "/mismatch.out";
    const pid_t child = terminal.spawn_program(argv, token_.env_for_child(), output);
    std::string seen;
    ASSERT_FALSE(terminal.read_until("Enter backup password: ", seen).empty()) << seen << read_text(output);
    ASSERT_TRUE(terminal.type("first answer\n"));
    ASSERT_FALSE(terminal.read_until("Enter backup password again: ", seen).empty()) << seen << read_text(output);
    ASSERT_TRUE(terminal.type("second answer\n"));
    EXPECT_EQ(wait_for(child), 2) << read_text(output);
    const std::string err = read_text(output);
    EXPECT_NE(err.find("p11vault: error: "), std::string::npos) << err;
    EXPECT_NE(err.find("entries differ"), std::string::npos) << err;
    EXPECT_EQ(err.find("answer"), std::string::npos) << "an answer appears in the error: " << err;
    EXPECT_FALSE(file_exists(file));
}

}  // namespace
}  // namespace p11vault::testing
