// SPDX-License-Identifier: Apache-2.0
// No secret in any output (issue 8): a representative set of runs (list, backup, restore,
// verify, migrate-free runs with a wrong PIN and a wrong password, --json, --verbose,
// P11VAULT_DEBUG, --record) with distinctive PINs and passwords, and everything they print
// or write except the PKCS#12 file itself (stdout, stderr, record files) is searched for
// each secret as text, as hex, as UTF-16 (the BMPString form the PKCS#12 KDF uses) and as
// base64. And `pass:` warns that argv is visible to other users.
#include <gtest/gtest.h>

#include <openssl/evp.h>

#include <cctype>
#include <string>
#include <vector>

#include "pkcs11/error.hpp"
#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

constexpr const char* kPin = "PIN-9f8e7d";
constexpr const char* kPassword = "PW-c0ffee-1234";
constexpr const char* kWrongPin = "PIN-wrong-4b3a2c";
constexpr const char* kWrongPassword = "PW-wrong-dead-5678";

std::string hex_of(const std::string& bytes, bool upper) {
    static const char lower_digits[] = "0123456789abcdef";
    static const char upper_digits[] = "0123456789ABCDEF";
    const char* digits = upper ? upper_digits : lower_digits;
    std::string out;
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 0xf];
    }
    return out;
}

std::string utf16(const std::string& ascii, bool big_endian) {
    std::string out;
    for (char c : ascii) {
        if (big_endian) out += '\0';
        out += c;
        if (!big_endian) out += '\0';
    }
    return out;
}

std::string base64(const std::string& bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

// Every form in which a secret could end up in an output by accident.
std::vector<std::pair<std::string, std::string>> forms_of(const std::string& secret) {
    const std::string be = utf16(secret, true), le = utf16(secret, false);
    return {
        {"text", secret},
        {"hex", hex_of(secret, false)},
        {"HEX", hex_of(secret, true)},
        {"UTF-16BE", be},
        {"UTF-16LE", le},
        {"hex of UTF-16BE", hex_of(be, false)},
        {"HEX of UTF-16BE", hex_of(be, true)},
        {"base64", base64(secret)},
    };
}

class SecretLeakTest : public ::testing::Test {
protected:
    SecretLeakTest() : source_(Backend::softhsm, "leak-source"), target_(Backend::softhsm, "leak-target") {
        {
            auto session = source_.open_session();
            certify(*session, generate_rsa(*session, 2048, {0x41}, "leak-rsa"));
            certify(*session, generate_ec(*session, "P-256", {0x42}, "leak-ec"));
        }
        set_pin(source_);
        set_pin(target_);
        dir_ = source_.dir();
        pin_file_ = dir_ + "/leak.pin";
        write_text(pin_file_, std::string(kPin) + "\n");
        record_ = dir_ + "/leak-record.jsonl";
    }

    // The token's user PIN becomes kPin (C_SetPIN in a user session).
    static void set_pin(const TestToken& token) {
        auto session = token.open_session(true, true);
        const std::string old_pin = token.user_pin();
        const std::string new_pin = kPin;
        pkcs11::check(token.module()->functions()->C_SetPIN(
                          session->handle(), reinterpret_cast<CK_UTF8CHAR*>(const_cast<char*>(old_pin.data())),
                          old_pin.size(), reinterpret_cast<CK_UTF8CHAR*>(const_cast<char*>(new_pin.data())),
                          new_pin.size()),
                      "C_SetPIN");
    }

    // Runs p11vault with the token environment and both secrets (and the wrong ones) in
    // the environment, keeps what it printed for the scan.
    RunResult run(const std::string& what, const std::vector<std::string>& args, RunOptions options = {}) {
        add_env_entries(options, source_.env_for_child());
        options.env["LEAK_PIN"] = kPin;
        options.env["LEAK_PW"] = kPassword;
        options.env["LEAK_WRONG_PIN"] = kWrongPin;
        options.env["LEAK_WRONG_PW"] = kWrongPassword;
        RunResult result = run_p11vault(args, options);
        outputs_.push_back({what + " stdout", result.out});
        outputs_.push_back({what + " stderr", result.err});
        return result;
    }

    std::vector<std::string> token_args(const TestToken& token) const {
        return {"--module", token.module_path(), "--token-label", token.label()};
    }
    static std::vector<std::string> join(std::vector<std::string> a, const std::vector<std::string>& b) {
        a.insert(a.end(), b.begin(), b.end());
        return a;
    }

    void expect_no_secret_anywhere() {
        if (file_exists(record_)) outputs_.push_back({"record file", read_text(record_)});
        ASSERT_GE(outputs_.size(), 20u);
        for (const char* secret : {kPin, kPassword, kWrongPin, kWrongPassword}) {
            for (const auto& [form, needle] : forms_of(secret)) {
                for (const auto& [where, text] : outputs_) {
                    EXPECT_EQ(text.find(needle), std::string::npos)
                        << "the " << form << " form of \"" << secret << "\" appears in " << where << ":\n"
                        << text;
                }
            }
        }
    }

    TestToken source_;
    TestToken target_;
    std::string dir_;
    std::string pin_file_;
    std::string record_;
    std::vector<std::pair<std::string, std::string>> outputs_;
};

TEST_F(SecretLeakTest, NoRunPrintsOrRecordsAPinOrPassword) {
    const std::string file = dir_ + "/leak.p12";
    const std::string file2 = dir_ + "/leak-verbose.p12";

    // list: every PIN source, text and JSON, quiet and verbose.
    EXPECT_EQ(run("list", join({"list"}, join(token_args(source_), {"--pin", "env:LEAK_PIN"}))).exit_code, 0);
    EXPECT_EQ(run("list --json", join({"list", "--json"}, join(token_args(source_), {"--pin", "file:" + pin_file_})))
                  .exit_code,
              0);
    EXPECT_EQ(run("list --verbose", join({"--verbose", "list"}, join(token_args(source_), {"--pin", "env:LEAK_PIN"})))
                  .exit_code,
              0);
    RunOptions with_fd;
    with_fd.extra_fds[3] = std::string(kPin) + "\n";
    EXPECT_EQ(run("list fd:", join({"list"}, join(token_args(source_), {"--pin", "fd:3"})), with_fd).exit_code, 0);
    RunOptions with_stdin;
    with_stdin.stdin_data = std::string(kPin) + "\n";
    EXPECT_EQ(run("list stdin", join({"list"}, join(token_args(source_), {"--pin", "stdin"})), with_stdin).exit_code,
              0);

    // pass: works, and warns about argv.
    const RunResult pass = run("list pass:", join({"list"}, join(token_args(source_), {"--pin", std::string("pass:") + kPin})));
    EXPECT_EQ(pass.exit_code, 0) << pass.err;
    EXPECT_NE(pass.err.find("p11vault: warning: pass: puts the secret in the process list"), std::string::npos)
        << pass.err;

    // backup: text, JSON with a record, verbose (and P11VAULT_DEBUG).
    const std::vector<std::string> secrets = {"--pin", "env:LEAK_PIN", "--password", "env:LEAK_PW"};
    RunResult made = run("backup --json --record",
                         join({"backup"}, join(token_args(source_), join(secrets, {"--all", "--iter", kFastIterations,
                                                                                   "--out", file, "--json",
                                                                                   "--record", record_}))));
    ASSERT_EQ(made.exit_code, 0) << made.err;
    RunOptions debug;
    debug.env["P11VAULT_DEBUG"] = "1";
    made = run("backup --verbose",
               join({"backup", "--verbose"},
                    join(token_args(source_), join(secrets, {"--all", "--iter", kFastIterations, "--out", file2}))),
               debug);
    ASSERT_EQ(made.exit_code, 0) << made.err;
    EXPECT_NE(made.err.find("p11vault: debug: C_Login"), std::string::npos) << "the debug log is not on";

    // verify: alone, against the token, JSON and record.
    EXPECT_EQ(run("verify", {"verify", "--in", file, "--password", "env:LEAK_PW"}).exit_code, 0);
    EXPECT_EQ(run("verify token --json --record",
                  join({"verify", "--in", file, "--password", "env:LEAK_PW", "--json", "--record", record_},
                       join(token_args(source_), {"--pin", "env:LEAK_PIN"})))
                  .exit_code,
              0);

    // restore into the second token: dry run, then for real, verbose, JSON, record.
    const std::vector<std::string> restore_base = {"restore", "--in", file, "--password", "env:LEAK_PW", "--pin",
                                                   "env:LEAK_PIN"};
    EXPECT_EQ(run("restore --dry-run", join(restore_base, join(token_args(target_), {"--dry-run"}))).exit_code, 0);
    const RunResult restored = run("restore --verbose --json --record",
                                   join({"--verbose"}, join(restore_base, join(token_args(target_),
                                                                               {"--json", "--record", record_}))));
    EXPECT_EQ(restored.exit_code, 0) << restored.err;

    // Wrong PIN, wrong password: the failures name the source, never the secret.
    const RunResult wrong_pin = run("list wrong PIN", join({"list"}, join(token_args(source_), {"--pin", "env:LEAK_WRONG_PIN"})));
    EXPECT_EQ(wrong_pin.exit_code, 5) << wrong_pin.err;
    const RunResult wrong_pin_pass =
        run("list wrong PIN pass:", join({"--verbose", "list"}, join(token_args(source_), {"--pin", std::string("pass:") + kWrongPin})));
    EXPECT_EQ(wrong_pin_pass.exit_code, 5) << wrong_pin_pass.err;
    const RunResult wrong_password =
        run("verify wrong password", {"verify", "--in", file, "--password", "env:LEAK_WRONG_PW", "--json"});
    EXPECT_EQ(wrong_password.exit_code, 3) << wrong_password.err;
    const RunResult wrong_password_restore =
        run("restore wrong password --record",
            join({"restore", "--in", file, "--password", std::string("pass:") + kWrongPassword, "--pin", "env:LEAK_PIN",
                  "--record", record_},
                 token_args(target_)));
    EXPECT_EQ(wrong_password_restore.exit_code, 3) << wrong_password_restore.err;
    // A secret given where a source is expected is refused without being repeated.
    const RunResult bare = run("bare secret", {"verify", "--in", file, "--password", kPassword});
    EXPECT_EQ(bare.exit_code, 2) << bare.err;
    const RunResult bare_colon = run("bare secret with colon", {"verify", "--in", file, "--password", std::string("x:") + kPassword});
    EXPECT_EQ(bare_colon.exit_code, 2) << bare_colon.err;

    ASSERT_TRUE(file_exists(record_));
    expect_no_secret_anywhere();
}

// A password typed where a source belongs, e.g. `--password hunter2:horse`: the part
// before the colon looks like a source prefix to the parser, and the error message must
// not repeat it either.
TEST_F(SecretLeakTest, ABareSecretWithAColonIsNotRepeated) {
    const std::string secret = "c0ffee9f:PW-horse";
    const RunResult result = run("bare secret with colon",
                                 {"verify", "--in", std::string(P11VAULT_CORPUS_DIR) + "/windows10-export-3des.p12", "--password", secret});
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_EQ(result.err.find("c0ffee9f"), std::string::npos)
        << "the part of the secret before the colon is printed: " << result.err;
}

}  // namespace
}  // namespace p11vault::testing
