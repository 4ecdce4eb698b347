// SPDX-License-Identifier: Apache-2.0
// Errors and help for the operator at the ceremony table (issue 23, item 3): the nearest
// subcommand or option for a typo, CLI11's messages in the contract's words, no stray
// word that runs a subcommand anyway, `p11vault help SUBCOMMAND`, --help within 80
// columns ending with examples, a key that is not on the token named with those that
// are (exit 5), --out checked before any work, a refusal of many keys on one line, two
// stdin sources in their documented order.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

const std::vector<std::string> kSubcommands = {"list",  "backup",  "restore",      "verify",      "migrate",
                                               "split", "combine", "escrow-share", "record-check"};

TEST(OperatorErrors, AMisspelledSubcommandGetsTheNearestOne) {
    const RunResult run = run_p11vault({"bakup", "--all"});
    EXPECT_EQ(run.exit_code, 2);
    EXPECT_EQ(run.err_lines(), std::vector<std::string>{"p11vault: error: unknown subcommand 'bakup' (did you mean "
                                                        "'backup'?) (see p11vault --help)"});
    const RunResult far = run_p11vault({"frobnicate"});
    EXPECT_EQ(far.exit_code, 2);
    EXPECT_EQ(far.err_lines(),
              std::vector<std::string>{"p11vault: error: unknown subcommand 'frobnicate' (see p11vault --help)"});
}

TEST(OperatorErrors, AMisspelledOptionGetsTheNearestOneAndItsValueIsNotShown) {
    const RunResult run = run_p11vault({"backup", "--token-lable", "ca", "--all", "--out", "x.p12"});
    EXPECT_EQ(run.exit_code, 2);
    EXPECT_EQ(run.err_lines(),
              std::vector<std::string>{"p11vault: error: unexpected argument --token-lable (did you mean "
                                       "'--token-label'?) and 1 value (not shown) (see p11vault backup --help)"});
    const RunResult secret = run_p11vault({"restore", "--pasword=pass:SECRET-VALUE", "--in", "x.p12"});
    EXPECT_EQ(secret.exit_code, 2);
    EXPECT_NE(secret.err.find("did you mean '--password'?"), std::string::npos) << secret.err;
    EXPECT_EQ(secret.err.find("SECRET-VALUE"), std::string::npos) << secret.err;
}

// `p11vault help backup` and `p11vault foo backup` ran backup; the stray word must stop
// the command before anything runs (here: before a backup that would be written).
TEST(OperatorErrors, AStrayWordBeforeTheSubcommandRunsNothing) {
    TestToken token(Backend::softhsm);
    {
        auto session = token.open_session();
        certify(*session, generate_ec(*session, "P-256", {0x01}, "k"));
    }
    const std::string out = token.dir() + "/stray.p12";
    std::vector<std::string> args = {"foo", "backup", "--all", "--out", out, "--iter", "2000",
                                     "--pin", "file:" + token.write_pin_file(), "--password", "env:P11VAULT_TEST_PW"};
    const auto token_args = token.cli_token_args();
    args.insert(args.end(), token_args.begin(), token_args.end());
    RunOptions options;
    add_env_entries(options, token.env_for_child());
    options.env[kPasswordVariable] = kTestPassword;
    const RunResult run = run_p11vault(args, options);
    EXPECT_EQ(run.exit_code, 2) << run.err;
    EXPECT_EQ(run.err_lines(), std::vector<std::string>{"p11vault: error: unknown subcommand 'foo' (see p11vault --help)"});
    EXPECT_FALSE(file_exists(out));

    args.front() = "help";
    const RunResult help = run_p11vault(args, options);
    EXPECT_EQ(help.exit_code, 2) << help.err;
    EXPECT_EQ(help.err_lines(),
              std::vector<std::string>{"p11vault: error: help takes one subcommand, e.g. p11vault help backup"});
    EXPECT_FALSE(file_exists(out));
}

TEST(OperatorErrors, HelpSubcommandPrintsThatSubcommandsHelp) {
    for (const auto& name : kSubcommands) {
        SCOPED_TRACE(name);
        const RunResult help = run_p11vault({"help", name});
        EXPECT_EQ(help.exit_code, 0) << help.err;
        EXPECT_EQ(help.out, run_p11vault({name, "--help"}).out);
        EXPECT_NE(help.out.find("p11vault " + name), std::string::npos) << help.out;
    }
    EXPECT_EQ(run_p11vault({"help"}).out, run_p11vault({"--help"}).out);
    const RunResult typo = run_p11vault({"help", "verfy"});
    EXPECT_EQ(typo.exit_code, 2);
    EXPECT_EQ(typo.err_lines(), std::vector<std::string>{"p11vault: error: unknown subcommand 'verfy' (did you mean "
                                                         "'verify'?) (see p11vault --help)"});
}

TEST(OperatorErrors, HelpFitsEightyColumnsAndEndsWithExamples) {
    std::vector<std::vector<std::string>> commands = {{"--help"}};
    for (const auto& name : kSubcommands) commands.push_back({name, "--help"});
    for (const auto& command : commands) {
        SCOPED_TRACE(command.front());
        const RunResult help = run_p11vault(command);
        ASSERT_EQ(help.exit_code, 0) << help.err;
        std::size_t start = 0;
        while (start < help.out.size()) {
            const std::size_t end = help.out.find('\n', start);
            const std::string line = help.out.substr(start, end - start);
            EXPECT_LE(line.size(), 80u) << line;
            if (end == std::string::npos) break;
            start = end + 1;
        }
        const std::size_t examples = help.out.rfind("\nExamples:\n  p11vault ");
        ASSERT_NE(examples, std::string::npos) << help.out;
        // Nothing but example command lines (and their continuations) after the heading.
        std::size_t at = help.out.find('\n', examples + 1) + 1;
        while (at < help.out.size()) {
            const std::size_t end = help.out.find('\n', at);
            const std::string line = help.out.substr(at, end - at);
            EXPECT_TRUE(line.rfind("  p11vault ", 0) == 0 || line.rfind("      --", 0) == 0) << line;
            if (end == std::string::npos) break;
            at = end + 1;
        }
    }
}

// Each subcommand's summary stays on its own line (tests/packaging reads the names).
TEST(OperatorErrors, TheSubcommandListHasOneLineEach) {
    const std::string help = run_p11vault({"--help"}).out;
    const std::size_t start = help.find("Subcommands:\n");
    ASSERT_NE(start, std::string::npos) << help;
    const std::string block = help.substr(start, help.find("\n\n", start) - start);
    std::vector<std::string> names;
    for (std::size_t at = block.find('\n'); at != std::string::npos; at = block.find('\n', at + 1))
        names.push_back(block.substr(at + 3, block.find(' ', at + 3) - at - 3));
    EXPECT_EQ(names, kSubcommands) << block;
}

TEST(OperatorErrors, CliElevenMessagesAreRewordedAndSecretValuesNeverQuoted) {
    const RunResult slot = run_p11vault({"list", "--slot", "abc"});
    EXPECT_EQ(slot.exit_code, 2);
    EXPECT_EQ(slot.err_lines(), std::vector<std::string>{"p11vault: error: --slot takes a whole number; 'abc' is not "
                                                         "one (see p11vault list --help)"});
    const RunResult missing = run_p11vault({"backup", "--all"});
    EXPECT_EQ(missing.exit_code, 2);
    EXPECT_EQ(missing.err_lines(),
              std::vector<std::string>{"p11vault: error: backup needs --out FILE.p12 (see p11vault backup --help)"});
    const RunResult no_value = run_p11vault({"backup", "--all", "--out"});
    EXPECT_EQ(no_value.exit_code, 2);
    EXPECT_EQ(no_value.err_lines(), std::vector<std::string>{"p11vault: error: --out needs a value: --out FILE.p12 "
                                                             "(see p11vault backup --help)"});
    const RunResult profile = run_p11vault({"backup", "--all", "--out", "x.p12", "--profile", "fast"});
    EXPECT_EQ(profile.exit_code, 2);
    EXPECT_EQ(profile.err_lines(), std::vector<std::string>{"p11vault: error: --profile takes one of: modern fips legacy; "
                                                            "not 'fast' (see p11vault backup --help)"});
    const RunResult twice = run_p11vault({"list", "--pin", "pass:FIRST-SECRET", "--pin", "pass:SECOND-SECRET"});
    EXPECT_EQ(twice.exit_code, 2);
    EXPECT_EQ(twice.err.find("SECRET"), std::string::npos) << twice.err;
    EXPECT_EQ(twice.err_lines().size(), 1u) << twice.err;
}

class OperatorTokenErrors : public ::testing::Test {
protected:
    OperatorTokenErrors() : token_(Backend::softhsm) {}
    std::string path(const std::string& name) const { return token_.dir() + "/" + name; }
    TestToken token_;
};

TEST_F(OperatorTokenErrors, AnIdNotOnTheTokenIsATokenErrorNamingTheIdsPresent) {
    {
        auto session = token_.open_session();
        generate_ec(*session, "P-256", {0x01}, "one");
        generate_ec(*session, "P-256", {0x02}, "two");
    }
    const RunResult run = backup(token_, path("x.p12"), {"--id", "09"});
    EXPECT_EQ(run.exit_code, 5);
    EXPECT_EQ(run.err_lines(), std::vector<std::string>{"p11vault: error: no private or secret key with CKA_ID 09 on the "
                                                        "token; its keys have CKA_IDs 01, 02 (see p11vault list)"});
    const RunResult label = backup(token_, path("x.p12"), {"--label", "three"});
    EXPECT_EQ(label.exit_code, 5);
    EXPECT_EQ(label.err_lines(),
              std::vector<std::string>{"p11vault: error: no private or secret key labelled \"three\" on the token; its "
                                       "keys are labelled \"one\", \"two\" (see p11vault list)"});
    EXPECT_FALSE(file_exists(path("x.p12")));
}

TEST_F(OperatorTokenErrors, OutIsCheckedBeforeAnyWork) {
    // A module that does not exist: reaching the token would be exit 5.
    const std::vector<std::string> before = {"backup", "--module", "/nonexistent/libnothing.so", "--pin",
                                             "env:P11VAULT_UNSET_PIN", "--all"};
    std::vector<std::string> empty = before;
    empty.insert(empty.end(), {"--out", ""});
    const RunResult run = run_p11vault(empty);
    EXPECT_EQ(run.exit_code, 2);
    EXPECT_EQ(run.err_lines(), std::vector<std::string>{"p11vault: error: --out needs a file name, e.g. --out ca.p12"});

    std::vector<std::string> missing = before;
    missing.insert(missing.end(), {"--out", path("no-such-dir/ca.p12")});
    const RunResult no_dir = run_p11vault(missing);
    EXPECT_EQ(no_dir.exit_code, 2);
    EXPECT_EQ(no_dir.err_lines(),
              std::vector<std::string>{"p11vault: error: --out " + path("no-such-dir/ca.p12") + ": the directory " +
                                       path("no-such-dir") + " does not exist (No such file or directory); create it "
                                                             "first"});
    EXPECT_EQ(no_dir.err.find("temporary"), std::string::npos);
}

TEST_F(OperatorTokenErrors, ARefusalOfManyKeysIsOneLineWithTheReasonOnce) {
    {
        auto session = token_.open_session();
        KeyFlags kept;
        kept.extractable = false;
        for (std::uint8_t id = 1; id <= 6; ++id) generate_ec(*session, "P-256", {id}, "kept", kept);
    }
    const RunResult run = backup(token_, path("x.p12"), {"--all"});
    EXPECT_EQ(run.exit_code, 6);
    ASSERT_EQ(run.err_lines().size(), 1u) << run.err;
    EXPECT_EQ(run.err.rfind("p11vault: error: 6 of 6 selected keys cannot be exported: 6 keys (key id=01 "
                            "label=\"kept\", key id=02 label=\"kept\", key id=03 label=\"kept\" and 3 more): ",
                            0),
              0u)
        << run.err;
    EXPECT_EQ(occurrences(run.err, "CKA_EXTRACTABLE=FALSE"), 1u) << run.err;
    EXPECT_FALSE(file_exists(path("x.p12")));

    // With --json the same line, and every key with its reason in a p11vault.error/1 document.
    const RunResult json_run = backup(token_, path("x.p12"), {"--all", "--json"});
    EXPECT_EQ(json_run.exit_code, 6);
    EXPECT_EQ(json_run.err, run.err);
    const nlohmann::json document = stdout_json(json_run);
    EXPECT_EQ(document.at("format"), "p11vault.error/1");
    EXPECT_EQ(document.at("command"), "backup");
    EXPECT_EQ(document.at("exit_code"), 6);
    EXPECT_EQ(document.at("kind"), "refused");
    EXPECT_EQ("p11vault: error: " + document.at("error").get<std::string>() + "\n", run.err);
    const nlohmann::json items = document.at("items");
    ASSERT_EQ(items.size(), 6u) << document.dump(2);
    for (std::size_t k = 0; k < items.size(); ++k) {
        EXPECT_EQ(items[k].at("id"), "0" + std::to_string(k + 1));
        EXPECT_EQ(items[k].at("label"), "kept");
        EXPECT_TRUE(items[k].at("where").is_null());
        EXPECT_NE(items[k].at("reason").get<std::string>().find("CKA_EXTRACTABLE=FALSE"), std::string::npos);
    }
    EXPECT_FALSE(file_exists(path("x.p12")));

    // A usage error has no document: the command line itself was wrong.
    const RunResult usage = backup(token_, "", {"--all", "--json"});
    EXPECT_EQ(usage.exit_code, 2);
    EXPECT_EQ(usage.out, "");
}

// docs/cli.md: backup reads the PIN, then the password; restore the password, then the PIN.
TEST_F(OperatorTokenErrors, TwoStdinSourcesAreReadInTheDocumentedOrder) {
    {
        auto session = token_.open_session();
        certify(*session, generate_ec(*session, "P-256", {0x01}, "k"));
    }
    RunOptions options;
    add_env_entries(options, token_.env_for_child());
    options.stdin_data = token_.user_pin() + "\n" + kTestPassword + "\n";
    std::vector<std::string> args = {"backup", "--pin", "stdin", "--password", "stdin", "--all",
                                     "--out", path("x.p12"), "--iter", "2000"};
    const auto token_args = token_.cli_token_args();
    args.insert(args.end(), token_args.begin(), token_args.end());
    const RunResult run = run_p11vault(args, options);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_EQ(read_p12(path("x.p12")).keys().size(), 1u);

    options.stdin_data = std::string(kTestPassword) + "\n" + token_.user_pin() + "\n";
    args = {"restore", "--pin", "stdin", "--password", "stdin", "--in", path("x.p12"), "--dry-run",
            "--on-conflict", "skip"};
    args.insert(args.end(), token_args.begin(), token_args.end());
    const RunResult restored = run_p11vault(args, options);
    EXPECT_EQ(restored.exit_code, 0) << restored.err;
}

}  // namespace
}  // namespace p11vault::testing
