// SPDX-License-Identifier: Apache-2.0
// `split --qr` (issue 9): each share also as a QR code that a scanner turns back into the
// share text. The test scans the images with zbarimg (zbar-tools) and combines the
// scanned texts: the password comes back. Without qrencode, --qr fails before writing
// anything; a qrencode planted in PATH is never run (p11vault runs the system's, by
// absolute path, with none of its environment: src/secret_filter.hpp).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

constexpr const char* kCeremonyPassword = "the ceremony password \u263a";

RunResult split_with_qr(const std::string& dir, RunOptions options = {}) {
    options.env["P11VAULT_TEST_PW"] = kCeremonyPassword;
    return run_p11vault({"split", "--password", "env:P11VAULT_TEST_PW", "--threshold", "2", "--shares", "3", "--out-dir",
                         dir, "--qr"},
                        options);
}

TEST(ShareQrTest, ScannedQrCodesCombineIntoThePassword) {
    const std::string dir = make_temp_dir("split-qr");
    const RunResult split = split_with_qr(dir);
    ASSERT_EQ(split.exit_code, 0) << split.err;
    EXPECT_EQ(directory_entries(dir), (std::vector<std::string>{"share-1-of-3.png", "share-1-of-3.txt",
                                                                "share-2-of-3.png", "share-2-of-3.txt",
                                                                "share-3-of-3.png", "share-3-of-3.txt"}));
    std::vector<std::string> scanned;
    for (int i : {1, 3}) {
        const std::string png = dir + "/share-" + std::to_string(i) + "-of-3.png";
        EXPECT_EQ(file_mode(png), 0600u) << png;
        const RunResult scan = run({"zbarimg", "--raw", "-q", png});
        ASSERT_EQ(scan.exit_code, 0) << "zbarimg cannot read " << png << ": " << scan.err;
        // zbarimg ends what it read with a newline of its own.
        std::string text = scan.out;
        ASSERT_FALSE(text.empty());
        text.pop_back();
        EXPECT_EQ(text, read_text(dir + "/share-" + std::to_string(i) + "-of-3.txt"))
            << "the QR code does not hold the share text exactly";
        scanned.push_back(dir + "/scanned-" + std::to_string(i) + ".txt");
        write_text(scanned.back(), scan.out);
    }
    const RunResult combined =
        run_p11vault({"combine", "--share", scanned[0], "--share", scanned[1], "--out", dir + "/recovered"});
    ASSERT_EQ(combined.exit_code, 0) << combined.err;
    EXPECT_EQ(read_text(dir + "/recovered"), kCeremonyPassword);
    std::filesystem::remove_all(dir);
}

// Runs `argv` in a private mount namespace where the system's qrencode is not executable
// (/dev/null bound over it): needs root and unshare (util-linux).
RunResult without_system_qrencode(const std::vector<std::string>& argv, const RunOptions& options) {
    std::vector<std::string> wrapped = {"unshare", "--mount", "--propagation", "private", "sh", "-c",
                                        "mount --bind /dev/null /usr/bin/qrencode && exec \"$@\"", "sh"};
    wrapped.insert(wrapped.end(), argv.begin(), argv.end());
    return run(wrapped, options);
}

TEST(ShareQrTest, WithoutQrencodeNothingIsWritten) {
    if (::geteuid() != 0 || run({"unshare", "--version"}).exit_code != 0)
        GTEST_SKIP() << "needs root and unshare (util-linux) to hide /usr/bin/qrencode in a mount namespace";
    const std::string dir = make_temp_dir("split-qr-missing");
    RunOptions options;
    options.env["P11VAULT_TEST_PW"] = kCeremonyPassword;
    const RunResult split =
        without_system_qrencode({P11VAULT_BINARY, "split", "--password", "env:P11VAULT_TEST_PW", "--threshold", "2",
                                 "--shares", "3", "--out-dir", dir, "--qr"},
                                options);
    EXPECT_EQ(split.exit_code, 1) << split.err;
    ASSERT_EQ(split.err_lines().size(), 1u) << split.err;
    EXPECT_NE(split.err.find("qrencode"), std::string::npos) << split.err;
    EXPECT_TRUE(directory_entries(dir).empty());
    std::filesystem::remove_all(dir);
}

TEST(ShareQrTest, AQrencodeInPathIsNeverRun) {
    const std::string dir = make_temp_dir("split-qr-planted");
    const std::string planted = make_temp_dir("planted-path");
    const std::string marker = planted + "/ran";
    write_text(planted + "/qrencode", "#!/bin/sh\ncat > '" + marker + "'\nexit 1\n");
    ::chmod((planted + "/qrencode").c_str(), 0755);
    RunOptions options;
    options.env["PATH"] = planted + ":/usr/bin:/bin";
    const RunResult split = split_with_qr(dir, options);
    EXPECT_EQ(split.exit_code, 0) << split.err;
    EXPECT_FALSE(std::filesystem::exists(marker)) << "the qrencode planted in PATH was given a share";
    EXPECT_EQ(directory_entries(dir).size(), 6u);
    std::filesystem::remove_all(dir);
    std::filesystem::remove_all(planted);
}

}  // namespace
}  // namespace p11vault::testing
