// SPDX-License-Identifier: Apache-2.0
// Broken and hostile PKCS#11 modules (issue 19, item 9): the fault module
// (tests/fault/hostile_modes.inc) plays a module whose lists never fit, whose search never
// ends, whose lengths are absurd, whose function list is garbage or has holes. p11vault
// must neither spin, nor grow, nor crash: each run ends within the timeout with exit 5
// and one error line naming the module (and the call or the missing function).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tests/integration/fault_fixture.hpp"
#include "tests/support/test_ca.hpp"
#include "tests/support/test_keys.hpp"

namespace p11vault::testing {
namespace {

// Far longer than any of these runs takes (well under a second each); a p11vault that
// spins or grows is killed here and the exit code (137) fails the test.
constexpr std::chrono::seconds kTimeout{60};

class HostileModuleTest : public ::testing::Test {
protected:
    HostileModuleTest() : token_(Backend::softhsm, "hostile") {
        auto session = token_.open_session();
        certify(*session, generate_ec(*session, "P-256", {0x21}, "hostile-ec"));
    }

    RunOptions options(const std::map<std::string, std::string>& fault_env) const {
        RunOptions options;
        add_env_entries(options, token_.env_for_child());
        options.env["P11VAULT_FAULT_MODULE"] = softhsm_module_path;
        options.env[kPasswordVariable] = kTestPassword;
        options.unset_env = {"P11VAULT_FAULT_AT",     "P11VAULT_FAULT_FUNCTION", "P11VAULT_FAULT_NTH",
                             "P11VAULT_FAULT_RV",     "P11VAULT_FAULT_LOG",      "P11VAULT_FAULT_HOSTILE",
                             "P11VAULT_FAULT_NULL",   "P11VAULT_FAULT_LIST_VERSION", "P11VAULT_DEBUG",
                             "P11VAULT_MODULE"};
        for (const auto& [name, value] : fault_env) options.env[name] = value;
        options.timeout = kTimeout;
        return options;
    }

    // `p11vault list` of the token through the fault module.
    RunResult list(const std::map<std::string, std::string>& fault_env, const std::string& module = kFaultModule) {
        return run_p11vault({"list", "--module", module, "--token-label", token_.label(), "--pin",
                             "file:" + token_.write_pin_file()},
                            options(fault_env));
    }

    // `p11vault backup --all` of the token through the fault module.
    RunResult backup_all(const std::map<std::string, std::string>& fault_env) {
        return run_p11vault({"backup", "--module", kFaultModule, "--token-label", token_.label(), "--pin",
                             "file:" + token_.write_pin_file(), "--password", std::string("env:") + kPasswordVariable,
                             "--out", out_path(), "--all", "--iter", kFastIterations},
                            options(fault_env));
    }

    std::string out_path() const { return token_.dir() + "/hostile.p12"; }

    TestToken token_;
};

// Exit 5 (not a hang: 137; not a crash: 128 + signal), and one error line holding every
// one of `parts`, the module's path among them.
void expect_refused(const RunResult& result, const std::vector<std::string>& parts,
                    const std::string& module = kFaultModule) {
    EXPECT_EQ(result.exit_code, 5) << describe(result);
    const auto lines = result.err_lines();
    ASSERT_EQ(lines.size(), 1u) << describe(result);
    EXPECT_EQ(lines[0].rfind("p11vault: error: ", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find(module), std::string::npos) << "the module is not named: " << lines[0];
    for (const auto& part : parts) EXPECT_NE(lines[0].find(part), std::string::npos) << lines[0];
}

TEST_F(HostileModuleTest, ASlotListThatNeverFitsIsRefused) {
    expect_refused(list({{"P11VAULT_FAULT_HOSTILE", "slot-list-too-small"}}),
                   {"C_GetSlotList: CKR_BUFFER_TOO_SMALL", "8 times in a row"});
}

TEST_F(HostileModuleTest, AnAbsurdSlotCountIsRefusedBeforeItIsAllocated) {
    expect_refused(list({{"P11VAULT_FAULT_HOSTILE", "slot-count-huge"}}),
                   {"C_GetSlotList reports 4611686018427387904 entries", "more than 65536"});
}

TEST_F(HostileModuleTest, AMechanismListThatNeverFitsIsRefused) {
    expect_refused(backup_all({{"P11VAULT_FAULT_HOSTILE", "mechanism-list-too-small"}}),
                   {"C_GetMechanismList: CKR_BUFFER_TOO_SMALL", "8 times in a row"});
    EXPECT_FALSE(std::filesystem::exists(out_path()));
}

TEST_F(HostileModuleTest, ASearchThatNeverEndsIsRefused) {
    expect_refused(list({{"P11VAULT_FAULT_HOSTILE", "find-endless"}}),
                   {"C_FindObjects found more than 1048576 objects in one search"});
}

TEST_F(HostileModuleTest, ASearchThatReportsMoreHandlesThanItHadRoomForIsRefused) {
    expect_refused(list({{"P11VAULT_FAULT_HOSTILE", "find-count-lies"}}),
                   {"C_FindObjects reports 65 objects found into room for 64"});
}

TEST_F(HostileModuleTest, AnAbsurdAttributeLengthIsRefusedBeforeItIsAllocated) {
    expect_refused(list({{"P11VAULT_FAULT_HOSTILE", "attribute-length-huge"}}),
                   {"C_GetAttributeValue reports 4611686018427387904 bytes for CKA_", "over 16777216 bytes"});
}

TEST_F(HostileModuleTest, AnAttributeThatNeverFitsIsRefused) {
    expect_refused(list({{"P11VAULT_FAULT_HOSTILE", "attribute-too-small"}}),
                   {"C_GetAttributeValue: CKR_BUFFER_TOO_SMALL", "8 times in a row"});
}

TEST_F(HostileModuleTest, AWrappedKeyThatNeverFitsIsRefused) {
    expect_refused(backup_all({{"P11VAULT_FAULT_HOSTILE", "wrap-too-small"}}),
                   {"C_WrapKey: CKR_BUFFER_TOO_SMALL", "8 times in a row"});
    EXPECT_FALSE(std::filesystem::exists(out_path()));
}

TEST_F(HostileModuleTest, AGarbageFunctionListIsRefusedBeforeAnyCall) {
    expect_refused(list({{"P11VAULT_FAULT_HOSTILE", "garbage-list"}}),
                   {"function list of version 165.165", "not a Cryptoki 2.x or 3.x list"});
}

TEST_F(HostileModuleTest, AFunctionListOfAnotherVersionIsRefused) {
    for (const std::string version : {"1.0", "4.0", "0.0"}) {
        SCOPED_TRACE(version);
        expect_refused(list({{"P11VAULT_FAULT_LIST_VERSION", version}}), {"function list of version " + version});
    }
    // The versions p11vault reads (the fault module forwards a 2.40 list's entries).
    for (const std::string version : {"2.11", "3.0"}) {
        const RunResult result = list({{"P11VAULT_FAULT_LIST_VERSION", version}});
        EXPECT_EQ(result.exit_code, 0) << version << ": " << describe(result);
    }
}

// Checked at load: a hole in a function p11vault calls only later (C_WrapKey: backup,
// never list) refuses the module at once.
TEST_F(HostileModuleTest, AFunctionListWithAHoleIsRefusedNamingTheFunction) {
    for (const std::string function : {"C_Initialize", "C_GetSlotList", "C_FindObjects", "C_WrapKey",
                                       "C_GenerateRandom"}) {
        SCOPED_TRACE(function);
        expect_refused(list({{"P11VAULT_FAULT_NULL", function}}),
                       {"has no " + function + " (its function list holds NULL there)"});
    }
    // A hole in a function p11vault never calls does not matter.
    EXPECT_EQ(list({{"P11VAULT_FAULT_NULL", "C_DigestKey"}}).exit_code, 0);
}

// Issue 18, item 5: openCryptoki answers C_Initialize with CKR_HOST_MEMORY when its slot
// daemon is not running; the message says so, for openCryptoki's library only.
TEST_F(HostileModuleTest, OpenCryptokisHostMemoryAtInitializeHintsAtItsSlotDaemon) {
    const std::map<std::string, std::string> host_memory = {{"P11VAULT_FAULT_FUNCTION", "C_Initialize"},
                                                             {"P11VAULT_FAULT_RV", "CKR_HOST_MEMORY"}};
    const std::string hint = "openCryptoki answers this when its slot daemon pkcsslotd is not running";
    const std::string opencryptoki = token_.dir() + "/libopencryptoki.so";
    std::filesystem::create_symlink(kFaultModule, opencryptoki);
    expect_refused(list(host_memory, opencryptoki), {"C_Initialize: CKR_HOST_MEMORY", hint}, opencryptoki);

    const RunResult other = list(host_memory);
    expect_refused(other, {"C_Initialize: CKR_HOST_MEMORY"});
    EXPECT_EQ(other.err.find("pkcsslotd"), std::string::npos) << other.err;
}

}  // namespace
}  // namespace p11vault::testing
