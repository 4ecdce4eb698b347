// SPDX-License-Identifier: Apache-2.0
// The key ceremony commands through the real binary: split/combine of the password with
// their failure modes, shares: as a password source, and migrate between two tokens.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

// p11vault SUBCOMMAND <token options> --pin file:... ARGS, in the token's environment.
RunResult on_token(const TestToken& token, const std::string& subcommand, std::vector<std::string> args) {
    std::vector<std::string> argv = {subcommand};
    for (const auto& a : token.cli_token_args()) argv.push_back(a);
    argv.push_back("--pin");
    argv.push_back("file:" + token.write_pin_file());
    argv.insert(argv.end(), args.begin(), args.end());
    RunOptions options;
    for (const auto& entry : token.env_for_child()) {
        auto eq = entry.find('=');
        options.env[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
    return run_p11vault(argv, options);
}

std::string share(const std::string& dir, int i, int n) {
    return dir + "/share-" + std::to_string(i) + "-of-" + std::to_string(n) + ".txt";
}

TEST(CeremonyCli, SplitWritesPrivateSharesAndAnyKCombine) {
    std::string dir = make_temp_dir("split");
    RunOptions options;
    options.env["P11VAULT_TEST_PW"] = "the ceremony password";
    RunResult split = run_p11vault({"split", "--password", "env:P11VAULT_TEST_PW", "--threshold", "2", "--shares", "3",
                                    "--out-dir", dir},
                                   options);
    ASSERT_EQ(split.exit_code, 0) << split.err;
    for (int i = 1; i <= 3; ++i) {
        EXPECT_EQ(file_mode(share(dir, i, 3)), 0600u);
        EXPECT_EQ(read_text(share(dir, i, 3)).find("ceremony"), std::string::npos);
    }
    RunResult combined = run_p11vault({"combine", "--share", share(dir, 3, 3), "--share", share(dir, 1, 3)});
    EXPECT_EQ(combined.exit_code, 0) << combined.err;
    EXPECT_EQ(combined.out, "the ceremony password");

    RunResult too_few = run_p11vault({"combine", "--share", share(dir, 2, 3)});
    EXPECT_EQ(too_few.exit_code, 4);
    ASSERT_EQ(too_few.err_lines().size(), 1u);
    EXPECT_EQ(too_few.out, "");

    // Splitting again into the same directory would overwrite shares: refused.
    RunResult again = run_p11vault({"split", "--generate", "--threshold", "2", "--shares", "3", "--out-dir", dir});
    EXPECT_EQ(again.exit_code, 6);
    std::filesystem::remove_all(dir);
}

TEST(CeremonyCli, SplitMakesAMissingOutDirPrivateButNotItsParents) {
    const std::string parent = make_temp_dir("split-parent");
    const std::string dir = parent + "/shares";
    RunResult split = run_p11vault({"split", "--generate", "--threshold", "2", "--shares", "2", "--out-dir", dir});
    ASSERT_EQ(split.exit_code, 0) << split.err;
    EXPECT_EQ(std::filesystem::status(dir).permissions(), std::filesystem::perms::owner_all);
    EXPECT_TRUE(std::filesystem::exists(share(dir, 2, 2)));

    const std::string deeper = parent + "/missing/shares";
    split = run_p11vault({"split", "--generate", "--threshold", "2", "--shares", "2", "--out-dir", deeper});
    EXPECT_EQ(split.exit_code, 2) << split.err;
    ASSERT_EQ(split.err_lines().size(), 1u) << split.err;
    EXPECT_NE(split.err.find("parent directory must exist"), std::string::npos) << split.err;
    EXPECT_FALSE(std::filesystem::exists(parent + "/missing"));

    // A split that fails after making the directory (its password source is unset) takes it away again.
    RunOptions unset;
    unset.unset_env = {"P11VAULT_UNSET_PASSWORD"};
    const std::string unused = parent + "/unused";
    split = run_p11vault({"split", "--password", "env:P11VAULT_UNSET_PASSWORD", "--threshold", "2", "--shares", "2",
                          "--out-dir", unused},
                         unset);
    EXPECT_EQ(split.exit_code, 2) << split.err;
    EXPECT_FALSE(std::filesystem::exists(unused));
    std::filesystem::remove_all(parent);
}

TEST(CeremonyCli, SharesOfDifferentSetsAreRefused) {
    std::string a = make_temp_dir("split-a"), b = make_temp_dir("split-b");
    ASSERT_EQ(run_p11vault({"split", "--generate", "--threshold", "2", "--shares", "2", "--out-dir", a}).exit_code, 0);
    ASSERT_EQ(run_p11vault({"split", "--generate", "--threshold", "2", "--shares", "2", "--out-dir", b}).exit_code, 0);
    RunResult mixed = run_p11vault({"combine", "--share", share(a, 1, 2), "--share", share(b, 2, 2)});
    EXPECT_EQ(mixed.exit_code, 4);
    EXPECT_NE(mixed.err.find("different sets"), std::string::npos) << mixed.err;
    std::filesystem::remove_all(a);
    std::filesystem::remove_all(b);
}

TEST(CeremonyCli, GeneratedPasswordProtectsABackupThatRestoresFromOtherShares) {
    TestToken source(Backend::softhsm, "ceremony-old");
    TestToken target(Backend::softhsm, "ceremony-new");
    {
        auto session = source.open_session();
        certify(*session, generate_ec(*session, "P-256", {0x0c}, "ceremony-key"));
    }
    std::string dir = source.dir() + "/shares";
    std::filesystem::create_directory(dir);
    ASSERT_EQ(run_p11vault({"split", "--generate", "--threshold", "2", "--shares", "3", "--out-dir", dir}).exit_code, 0);
    std::string file = source.dir() + "/ceremony.p12";
    RunResult made = on_token(source, "backup", {"--all", "--iter", "2000", "--out", file, "--password",
                                                 "shares:" + share(dir, 1, 3) + "," + share(dir, 2, 3)});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    RunResult wrong_pw = restore(target, file, {"--dry-run"});  // the default test password is not it
    EXPECT_EQ(wrong_pw.exit_code, 3);
    RunResult restored =
        on_token(target, "restore", {"--in", file, "--password", "shares:" + share(dir, 3, 3) + "," + share(dir, 1, 3)});
    EXPECT_EQ(restored.exit_code, 0) << restored.err;
    EXPECT_EQ(target.object_count(), 3u);  // private key, public key, certificate
}

TEST(CeremonyCli, MigrateMovesKeysAndChecksTheirPublicKeys) {
    TestToken source(Backend::softhsm, "migrate-from");
    TestToken target(Backend::softhsm, "migrate-to");
    {
        auto session = source.open_session();
        certify(*session, generate_rsa(*session, 2048, {0x01}, "migrate-rsa"));
        certify(*session, generate_ec(*session, "P-384", {0x02}, "migrate-ec"));
        generate_rsa(*session, 2048, {0x03}, "stays", KeyFlags{true, false});
    }
    auto before = target.objects();
    std::string pin = source.write_pin_file();
    std::vector<std::string> common = {"--from-module", source.module_path(), "--from-token-label", source.label(),
                                       "--from-pin", "file:" + pin, "--to-token-label", target.label(), "--to-pin",
                                       "file:" + pin};
    RunOptions options;
    for (const auto& entry : source.env_for_child()) {
        auto eq = entry.find('=');
        options.env[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
    // A non-extractable key among the selection: refused, nothing written to the target.
    std::vector<std::string> all = {"migrate", "--all", "--json"};
    all.insert(all.end(), common.begin(), common.end());
    RunResult refused = run_p11vault(all, options);
    EXPECT_EQ(refused.exit_code, 6);
    EXPECT_NE(refused.err.find("stays"), std::string::npos) << refused.err;
    EXPECT_EQ(target.objects(), before);

    std::vector<std::string> two = {"migrate", "--id", "01", "--id", "02", "--json", "--record",
                                    source.dir() + "/migrate.jsonl"};
    two.insert(two.end(), common.begin(), common.end());
    RunResult moved = run_p11vault(two, options);
    ASSERT_EQ(moved.exit_code, 0) << moved.err;
    auto json = stdout_json(moved);
    ASSERT_EQ(json["keys"].size(), 2u);
    for (const auto& key : json["keys"]) {
        EXPECT_EQ(key["status"], "restored");
        EXPECT_NE(key["path"].get<std::string>().find("->"), std::string::npos);
    }
    EXPECT_EQ(target.objects().size(), before.size() + 6);  // 2 x (private, public, certificate)
    RunResult again = run_p11vault(two, options);
    EXPECT_EQ(again.exit_code, 6) << "migrating twice must conflict";
    RunResult check = run_p11vault({"record-check", source.dir() + "/migrate.jsonl"});
    EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}

}  // namespace
}  // namespace p11vault::testing
