// SPDX-License-Identifier: Apache-2.0
// A token that refuses clear secret keys (issue 4): NSS softoken in FIPS mode, reached
// through its FIPS entry point FC_GetFunctionList (the fault module forwards to it,
// P11VAULT_FAULT_ENTRY; no fault is injected). Its C_CreateObject of an AES key answers
// CKR_ATTRIBUTE_VALUE_INVALID, so the file key cannot be imported; p11vault has the
// token derive it itself with CKM_PKCS5_PBKD2 and still takes the token-wrap path on
// backup and the token-unwrap path on restore: the clear private key never reaches the
// host. Proof that the keys are right: `verify --drill` signs with every key of the
// backup, and a second backup from the token the first was restored into holds the same
// public keys.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
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

using nlohmann::json;

constexpr const char* kFipsPin = "Fips-Pin-0123!";  // FIPS mode wants a real password on the database
constexpr const char* kFipsLabel = "NSS FIPS 140-2 Certificate DB";

class FipsTokenTest : public ::testing::Test {
protected:
    FipsTokenTest() : work_(make_temp_dir("fips")) {
        write_text(pin_file(), std::string(kFipsPin) + "\n");
        std::filesystem::permissions(pin_file(), std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
        write_text(work_ + "/noise", std::string(64, 'n') + "certutil wants some noise");
    }
    ~FipsTokenTest() override { std::filesystem::remove_all(work_); }

    std::string pin_file() const { return work_ + "/pin.txt"; }

    // A new NSS database DIR (with the PIN), optionally with an RSA and an EC key and
    // self-signed certificates made by certutil.
    std::string make_database(const std::string& name, bool with_keys) {
        const std::string dir = work_ + "/" + name;
        std::filesystem::create_directory(dir);
        tool({"certutil", "-N", "-d", "sql:" + dir, "-f", pin_file()});
        if (with_keys) {
            tool({"certutil", "-S", "-d", "sql:" + dir, "-f", pin_file(), "-z", work_ + "/noise", "-n", "fips rsa",
                  "-s", "CN=fips rsa", "-x", "-t", "CT,,", "-k", "rsa", "-g", "2048", "-v", "12"});
            tool({"certutil", "-S", "-d", "sql:" + dir, "-f", pin_file(), "-z", work_ + "/noise", "-n", "fips ec",
                  "-s", "CN=fips ec", "-x", "-t", "CT,,", "-k", "ec", "-q", "nistp256", "-v", "12"});
        }
        return dir;
    }

    void tool(const std::vector<std::string>& argv) {
        const RunResult result = run_tool(argv);
        ASSERT_EQ(result.exit_code, 0) << argv[0] << " failed:\n" << result.out << result.err;
    }

    // p11vault SUBCOMMAND against the FIPS token of database `dir`.
    RunResult on_fips_token(const std::string& dir, const std::string& subcommand, const std::vector<std::string>& args) {
        RunOptions options;
        options.env["P11VAULT_FAULT_MODULE"] = nss_module_path;
        options.env["P11VAULT_FAULT_ENTRY"] = "FC_GetFunctionList";
        options.env[kPasswordVariable] = kTestPassword;
        std::vector<std::string> argv = {subcommand,
                                         "--module",
                                         P11VAULT_FAULT_MODULE_PATH,
                                         "--module-init",
                                         "configdir='sql:" + dir + "' certPrefix='' keyPrefix='' secmod='secmod.db' flags=",
                                         "--token-label",
                                         kFipsLabel,
                                         "--pin",
                                         "file:" + pin_file()};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_p11vault(argv, options);
    }

    RunResult verify_with_drill(const std::string& file) {
        RunOptions options;
        options.env[kPasswordVariable] = kTestPassword;
        return run_p11vault({"verify", "--in", file, "--password", std::string("env:") + kPasswordVariable, "--drill",
                             "--json"},
                            options);
    }

    std::string work_;
};

std::set<std::string> spki_hashes(const json& report) {
    std::set<std::string> out;
    for (const auto& key : report.at("keys")) out.insert(key.at("spki_sha256").get<std::string>());
    return out;
}

bool any_note_contains(const json& key, const std::string& text) {
    if (!key.contains("notes")) return false;
    for (const auto& note : key.at("notes"))
        if (note.get<std::string>().find(text) != std::string::npos) return true;
    return false;
}

// --profile fips on the FIPS-mode token (issue 20): the same token-wrap path, and a file
// whose MAC is PBMAC1, so that no part of it needs the PKCS#12 KDF.
TEST_F(FipsTokenTest, FipsProfileBackupIsTokenWrappedWithAPbmac1Mac) {
    const std::string source = make_database("source", true);
    const std::string file = work_ + "/fips-profile.p12";
    const RunResult backup = on_fips_token(source, "backup",
                                           {"--all", "--out", file, "--password", std::string("env:") + kPasswordVariable,
                                            "--iter", kFastIterations, "--profile", "fips", "--token-wrap-only",
                                            "--json"});
    ASSERT_EQ(backup.exit_code, 0) << backup.err;
    const json backed_up = stdout_json(backup);
    EXPECT_EQ(backed_up.at("profile"), "fips");
    ASSERT_EQ(backed_up.at("keys").size(), 2u) << backed_up.dump(2);
    for (const auto& key : backed_up.at("keys")) EXPECT_EQ(key.at("path"), "token-wrap") << key.dump();

    const RunResult drilled = verify_with_drill(file);
    ASSERT_EQ(drilled.exit_code, 0) << drilled.err;
    const json verified = stdout_json(drilled);
    EXPECT_EQ(verified.at("mac").get<std::string>().rfind("PBMAC1 (PBKDF2-HMAC-SHA256, HMAC-SHA256)", 0), 0u)
        << verified.dump(2);
    ASSERT_EQ(verified.at("drill").size(), 2u) << verified.dump(2);
    for (const auto& drill : verified.at("drill")) EXPECT_TRUE(drill.at("ok").get<bool>()) << drill.dump();
}

TEST_F(FipsTokenTest, TheTokenDerivesTheFileKeyAndWrapsAndUnwrapsItself) {
    const std::string source = make_database("source", true);
    const std::string file = work_ + "/fips.p12";
    const RunResult backup = on_fips_token(source, "backup",
                                           {"--all", "--out", file, "--password", std::string("env:") + kPasswordVariable,
                                            "--iter", kFastIterations, "--token-wrap-only", "--json"});
    ASSERT_EQ(backup.exit_code, 0) << backup.err;
    const json backed_up = stdout_json(backup);
    ASSERT_EQ(backed_up.at("keys").size(), 2u) << backed_up.dump(2);
    for (const auto& key : backed_up.at("keys")) {
        EXPECT_EQ(key.at("path"), "token-wrap") << key.dump();
        EXPECT_TRUE(any_note_contains(key, "CKM_PKCS5_PBKD2")) << key.dump();
    }

    const RunResult drilled = verify_with_drill(file);
    ASSERT_EQ(drilled.exit_code, 0) << drilled.err;
    const json verified = stdout_json(drilled);
    ASSERT_EQ(verified.at("drill").size(), 2u) << verified.dump(2);
    for (const auto& drill : verified.at("drill")) EXPECT_TRUE(drill.at("ok").get<bool>()) << drill.dump();

    const std::string target = make_database("target", false);
    const RunResult restore =
        on_fips_token(target, "restore",
                      {"--in", file, "--password", std::string("env:") + kPasswordVariable, "--extractable", "--json"});
    ASSERT_EQ(restore.exit_code, 0) << restore.err;
    const json restored = stdout_json(restore);
    ASSERT_EQ(restored.at("keys").size(), 2u) << restored.dump(2);
    for (const auto& key : restored.at("keys")) {
        EXPECT_EQ(key.at("status"), "restored") << key.dump();
        EXPECT_EQ(key.at("path"), "token-unwrap") << key.dump();
        EXPECT_TRUE(any_note_contains(key, "CKM_PKCS5_PBKD2")) << key.dump();
    }

    // What the second token holds (restored --extractable for this), backed up again the
    // same way, is the same key pair.
    const std::string again = work_ + "/again.p12";
    const RunResult second = on_fips_token(target, "backup",
                                           {"--all", "--out", again, "--password", std::string("env:") + kPasswordVariable,
                                            "--iter", kFastIterations, "--json"});
    ASSERT_EQ(second.exit_code, 0) << second.err;
    EXPECT_EQ(spki_hashes(stdout_json(second)), spki_hashes(backed_up));
    const RunResult drilled_again = verify_with_drill(again);
    EXPECT_EQ(drilled_again.exit_code, 0) << drilled_again.err;
}

// The legacy profile's key comes from the PKCS#12 KDF, which no PKCS#11 mechanism
// computes: on this token nothing can export the key, and nothing is written.
TEST_F(FipsTokenTest, LegacyProfileIsRefusedWithTheReasonAndNoFile) {
    const std::string source = make_database("source", true);
    const std::string file = work_ + "/legacy.p12";
    const RunResult backup = on_fips_token(source, "backup",
                                           {"--all", "--out", file, "--password", std::string("env:") + kPasswordVariable,
                                            "--profile", "legacy"});
    EXPECT_EQ(backup.exit_code, 6) << backup.err;
    EXPECT_FALSE(file_exists(file));
    EXPECT_NE(backup.err.find("CKR_ATTRIBUTE_VALUE_INVALID"), std::string::npos)
        << "the error must say what the token refused:\n"
        << backup.err;
}

}  // namespace
}  // namespace p11vault::testing
