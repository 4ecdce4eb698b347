// SPDX-License-Identifier: Apache-2.0
// valgrind memcheck of a backup and a restore (issue 8): one key with its certificate,
// SoftHSM, --iter 1000. No memory error and no definite leak (exit 99 otherwise), in
// p11vault or in what it loads. Skipped where valgrind is missing and in the sanitizer
// build (ASan and valgrind do not mix). Suppressions, if a module ever needs them, go in
// tests/valgrind.supp, each with the reason (none are needed for SoftHSM 2.6.1).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/sanitizers.hpp"
#include "tests/support/test_token.hpp"


namespace p11vault::testing {
namespace {

bool valgrind_available() {
    try {
        return run({"valgrind", "--version"}).exit_code == 0;
    } catch (const std::exception&) {
        return false;
    }
}

RunResult under_valgrind(const TestToken& token, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"valgrind", "--error-exitcode=99", "--leak-check=full",
                                     "--errors-for-leak-kinds=definite", "--track-origins=yes", "--quiet"};
    const std::string suppressions = std::string(P11VAULT_SOURCE_DIR) + "/tests/valgrind.supp";
    if (file_exists(suppressions)) argv.push_back("--suppressions=" + suppressions);
    argv.push_back(P11VAULT_BINARY);
    argv.insert(argv.end(), args.begin(), args.end());
    RunOptions options;
    add_env_entries(options, token.env_for_child());
    options.env[kPasswordVariable] = kTestPassword;
    options.timeout = std::chrono::seconds(300);
    return run(argv, options);
}

TEST(Valgrind, BackupAndRestoreAreClean) {
#ifdef P11VAULT_TEST_SANITIZED
    GTEST_SKIP() << "built with AddressSanitizer: valgrind cannot run it";
#endif
    if (!valgrind_available()) GTEST_SKIP() << "valgrind is not installed (scripts/setup installs it)";

    TestToken source(Backend::softhsm, "valgrind-source");
    TestToken target(Backend::softhsm, "valgrind-target");
    {
        auto session = source.open_session();
        certify(*session, generate_ec(*session, "P-256", {0x51}, "valgrind-ec"));
    }
    const std::string file = source.dir() + "/valgrind.p12";
    const std::vector<std::string> password = {"--password", std::string("env:") + kPasswordVariable};

    std::vector<std::string> backup_args = {"backup", "--module", source.module_path(), "--token-label", source.label(),
                                            "--pin", "file:" + source.write_pin_file(), "--all", "--iter", "1000",
                                            "--out", file};
    backup_args.insert(backup_args.end(), password.begin(), password.end());
    const RunResult backup = under_valgrind(source, backup_args);
    ASSERT_EQ(backup.exit_code, 0) << "valgrind reports errors in backup (exit 99) or backup failed:\n" << backup.err;
    ASSERT_TRUE(file_exists(file));

    const std::size_t before = target.object_count();
    std::vector<std::string> restore_args = {"restore", "--module", target.module_path(), "--token-label",
                                             target.label(), "--pin", "file:" + target.write_pin_file(), "--in", file};
    restore_args.insert(restore_args.end(), password.begin(), password.end());
    const RunResult restore = under_valgrind(target, restore_args);
    ASSERT_EQ(restore.exit_code, 0) << "valgrind reports errors in restore (exit 99) or restore failed:\n"
                                    << restore.err;
    EXPECT_EQ(target.object_count(), before + 3) << "private key, public key, certificate";
}

}  // namespace
}  // namespace p11vault::testing
