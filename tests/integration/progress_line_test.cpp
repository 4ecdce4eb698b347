// SPDX-License-Identifier: Apache-2.0
// The progress line (issue 23, item 1): on a terminal, backup shows "backup: I/N keys
// <current key> M:SS" on stderr, rewritten in place and cleared at the end; none with
// --quiet or when stderr is not a terminal. Repeated notes fold into one line with a
// count, and the summary with the file's SHA-256 comes last. stderr is a pseudo-terminal
// here (tests/support/pseudo_terminal.hpp); stdout goes to a file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/pseudo_terminal.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

class ProgressLineTest : public ::testing::Test {
protected:
    ProgressLineTest() : token_(Backend::softhsm) {
        auto session = token_.open_session();
        for (std::uint8_t id = 1; id <= 3; ++id) generate_ec(*session, "P-256", {id}, "key " + std::to_string(id));
    }

    std::vector<std::string> backup_args(const std::string& out, const std::vector<std::string>& extra) const {
        std::vector<std::string> args = {P11VAULT_BINARY, "backup", "--all", "--out", out, "--iter", "2000",
                                         "--pin", "file:" + token_.write_pin_file(), "--password",
                                         std::string("env:") + kPasswordVariable};
        for (const auto& arg : token_.cli_token_args()) args.push_back(arg);
        args.insert(args.end(), extra.begin(), extra.end());
        return args;
    }

    // Runs p11vault with stderr (and stdin) on a pseudo-terminal and stdout into
    // `stdout_path`; returns what the terminal showed, and the exit code.
    std::string on_terminal(const std::vector<std::string>& argv, const std::string& stdout_path, int& exit_code) {
        PseudoTerminal terminal;
        EXPECT_TRUE(terminal.ok());
        std::vector<std::string> env = token_.env_for_child();
        env.push_back(std::string(kPasswordVariable) + "=" + kTestPassword);
        std::vector<std::string> args_copy = argv;
        std::vector<char*> args;
        for (auto& arg : args_copy) args.push_back(arg.data());
        args.push_back(nullptr);
        const pid_t child = terminal.spawn([&]() -> int {
            for (auto& entry : env) ::putenv(entry.data());
            const int out = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (out < 0) return 123;
            ::dup2(out, STDOUT_FILENO);
            ::dup2(STDIN_FILENO, STDERR_FILENO);
            ::execv(args[0], args.data());
            return 124;
        });
        std::string seen;
        terminal.read_until("\nno such text\n", seen);  // everything until the child closes the terminal
        exit_code = wait_for(child);
        terminal.drain(seen);
        return seen;
    }

    TestToken token_;
};

TEST_F(ProgressLineTest, ATerminalSeesTheLineAndTheSummaryComesLast) {
    const std::string out = token_.dir() + "/p.p12";
    int exit_code = -1;
    const std::string shown = on_terminal(backup_args(out, {}), token_.dir() + "/stdout", exit_code);
    ASSERT_EQ(exit_code, 0) << shown;
    EXPECT_NE(shown.find("\r\033[Kbackup: 0/3 keys  key id=01 label=\"key 1\"  0:"), std::string::npos) << shown;
    EXPECT_NE(shown.find("\r\033[Kbackup: 2/3 keys  key id=03 label=\"key 3\"  0:"), std::string::npos) << shown;
    EXPECT_NE(shown.find("\r\033[Kbackup: 3/3 keys  0:"), std::string::npos) << shown;
    // Cleared before anything else is written: the warnings start on an empty line.
    EXPECT_NE(shown.find("\r\033[Kp11vault: warning: "), std::string::npos) << shown;

    const std::string text = read_text(token_.dir() + "/stdout");
    // SoftHSM has no CKM_AES_CBC_PAD wrapping: every key takes the host path, one note.
    std::size_t notes = 0;
    for (std::size_t at = text.find("note: "); at != std::string::npos; at = text.find("note: ", at + 1)) ++notes;
    EXPECT_EQ(notes, 1u) << text;
    EXPECT_NE(text.find("note: 3 keys (01, 02, 03): decrypted on this host for a moment (host-reencrypt)"),
              std::string::npos)
        << text;
    const std::string last = "SHA-256 " + sha256_hex(read_text(out)) + "  " + out +
                             "\nBacked up 3 keys and 0 certificates from token \"" + token_.label() + "\" to " + out +
                             " (modern profile)\n";
    ASSERT_GE(text.size(), last.size());
    EXPECT_EQ(text.substr(text.size() - last.size()), last) << text;
}

TEST_F(ProgressLineTest, RestoreShowsTheLineToo) {
    const std::string file = token_.dir() + "/r.p12";
    ASSERT_EQ(backup(token_, file, {"--all"}).exit_code, 0);
    TestToken target(Backend::softhsm, "progress-target");
    std::vector<std::string> args = {P11VAULT_BINARY, "restore", "--in", file, "--pin",
                                     "file:" + target.write_pin_file(), "--password",
                                     std::string("env:") + kPasswordVariable};
    for (const auto& arg : target.cli_token_args()) args.push_back(arg);
    int exit_code = -1;
    const std::string shown = on_terminal(args, token_.dir() + "/stdout", exit_code);
    ASSERT_EQ(exit_code, 0) << shown;
    EXPECT_NE(shown.find("\r\033[Krestore: 0/3 keys  "), std::string::npos) << shown;
    EXPECT_NE(shown.find("\r\033[Krestore: 3/3 keys  0:"), std::string::npos) << shown;
}

// The slow part of a large restore is planning (keys decrypted on the host, SoftHSM's
// path) and of verify the decryption of every bag: both show the line too, and so does
// the drill.
TEST_F(ProgressLineTest, RestorePlanningAndVerifyShowTheLine) {
    const std::string file = token_.dir() + "/v.p12";
    ASSERT_EQ(backup(token_, file, {"--all"}).exit_code, 0);
    TestToken target(Backend::softhsm, "progress-planning");
    std::vector<std::string> args = {P11VAULT_BINARY, "restore", "--in", file, "--dry-run", "--pin",
                                     "file:" + target.write_pin_file(), "--password",
                                     std::string("env:") + kPasswordVariable};
    for (const auto& arg : target.cli_token_args()) args.push_back(arg);
    int exit_code = -1;
    std::string shown = on_terminal(args, token_.dir() + "/stdout", exit_code);
    ASSERT_EQ(exit_code, 0) << shown;
    EXPECT_NE(shown.find("\r\033[Krestore (dry run): 2/3 keys  checking key bag 3  0:"), std::string::npos) << shown;

    shown = on_terminal({P11VAULT_BINARY, "verify", "--in", file, "--password", std::string("env:") + kPasswordVariable},
                        token_.dir() + "/stdout", exit_code);
    ASSERT_EQ(exit_code, 0) << shown;
    EXPECT_NE(shown.find("\r\033[Kverify: 0/3 keys  decrypting key bag 1  0:"), std::string::npos) << shown;
    EXPECT_NE(shown.find("\r\033[Kverify: 2/3 keys  decrypting key bag 3  0:"), std::string::npos) << shown;

    // The drill restores (planning, writing) and then signs with each key.
    shown = on_terminal({P11VAULT_BINARY, "verify", "--in", file, "--drill", "--password",
                         std::string("env:") + kPasswordVariable},
                        token_.dir() + "/stdout", exit_code);
    ASSERT_EQ(exit_code, 0) << shown;
    EXPECT_NE(shown.find("\r\033[Kverify: 2/3 keys  drill: id=03 label=\"key 3\"  0:"), std::string::npos) << shown;
}

TEST_F(ProgressLineTest, MigrateShowsTheLine) {
    // Both SoftHSM tokens in one configuration: the second one's PIN is the test PIN too.
    TestToken target(Backend::softhsm, "progress-migrate");
    const std::string pin = "file:" + token_.write_pin_file();
    const std::vector<std::string> args = {P11VAULT_BINARY, "migrate", "--all", "--from-module", token_.module_path(),
                                           "--from-token-label", token_.label(), "--from-pin", pin,
                                           "--to-token-label", target.label(), "--to-pin",
                                           "file:" + target.write_pin_file()};
    int exit_code = -1;
    const std::string shown = on_terminal(args, token_.dir() + "/stdout", exit_code);
    ASSERT_EQ(exit_code, 0) << shown;
    EXPECT_NE(shown.find("\r\033[Kmigrate: 0/3 keys  "), std::string::npos) << shown;
    EXPECT_NE(shown.find("\r\033[Kmigrate: 3/3 keys  0:"), std::string::npos) << shown;
}

TEST_F(ProgressLineTest, QuietOrNoTerminalShowsNoLine) {
    int exit_code = -1;
    const std::string shown =
        on_terminal(backup_args(token_.dir() + "/q.p12", {"--quiet"}), token_.dir() + "/stdout", exit_code);
    ASSERT_EQ(exit_code, 0) << shown;
    EXPECT_EQ(shown.find("backup: "), std::string::npos) << shown;
    EXPECT_EQ(shown.find('\033'), std::string::npos) << shown;

    const RunResult piped = backup(token_, token_.dir() + "/n.p12", {"--all"});
    ASSERT_EQ(piped.exit_code, 0) << piped.err;
    EXPECT_EQ(piped.err.find("backup: "), std::string::npos) << piped.err;
    EXPECT_EQ(piped.err.find('\r'), std::string::npos) << piped.err;
}

}  // namespace
}  // namespace p11vault::testing
