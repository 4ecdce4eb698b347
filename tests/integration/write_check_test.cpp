// SPDX-License-Identifier: Apache-2.0
// Trust, then verify every write (issue 18, item 1): a token that ignores the protection
// asked for in C_UnwrapKey's template (openCryptoki 3.8 does; played here by the fault
// module's P11VAULT_FAULT_UNPROTECT on SoftHSM) gets its keys repaired with
// C_SetAttributeValue, and the run says so; a token that also refuses the repair fails
// the run, which rolls back.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/integration/fault_fixture.hpp"

namespace p11vault::testing {
namespace {

struct PrivateKeyState {
    std::optional<bool> sensitive;
    std::optional<bool> extractable;
    bool secret_readable = false;
};

PrivateKeyState private_key_state(const TestToken& token, const pkcs11::Bytes& id) {
    auto session = token.open_session(false, true);
    pkcs11::AttributeTemplate match;
    match.add_class(CKO_PRIVATE_KEY).add_bytes(CKA_ID, id);
    const auto found = session->find(match);
    EXPECT_EQ(found.size(), 1u) << "private key " << hex(id);
    if (found.size() != 1u) return {};
    PrivateKeyState state;
    state.sensitive = session->get_bool(found[0], CKA_SENSITIVE);
    state.extractable = session->get_bool(found[0], CKA_EXTRACTABLE);
    const auto key_type = session->get_ulong(found[0], CKA_KEY_TYPE);
    state.secret_readable =
        session->get_secret(found[0], key_type == CKK_RSA ? CKA_PRIVATE_EXPONENT : CKA_VALUE).has_value();
    return state;
}

std::size_t count_lines_with(const RunResult& result, const std::string& text) {
    std::size_t n = 0;
    for (const auto& line : result.err_lines())
        if (line.find(text) != std::string::npos) ++n;
    return n;
}

const pkcs11::Bytes kKeyIds[] = {{0x11}, {0x12}, {0x13}};

TEST_F(FaultTest, RestoreRepairsTheProtectionATokenIgnored) {
    ASSERT_NO_FATAL_FAILURE(SetUpRestore());
    FaultSpec spec;
    spec.unprotect = true;
    std::vector<std::string> args = restore_args();
    args.push_back("--json");
    const FaultedRun run = run_faulted(target_, log_path(), "restore", args, spec);
    ASSERT_EQ(run.result.exit_code, 0) << describe(run.result);
    EXPECT_EQ(difference(target_.objects(), before_), complete_);
    for (const auto& id : kKeyIds) {
        const PrivateKeyState state = private_key_state(target_, id);
        EXPECT_EQ(state.sensitive, true) << hex(id);
        EXPECT_EQ(state.extractable, false) << hex(id);
        EXPECT_FALSE(state.secret_readable) << hex(id);
    }
    const auto document = stdout_json(run.result);
    ASSERT_EQ(document["keys"].size(), 3u);
    for (const auto& key : document["keys"])
        EXPECT_EQ(key["repaired"], nlohmann::json::array({"CKA_SENSITIVE", "CKA_EXTRACTABLE"})) << key.dump();
    EXPECT_EQ(count_lines_with(run.result, "did not apply CKA_SENSITIVE, CKA_EXTRACTABLE of C_UnwrapKey"), 3u)
        << describe(run.result);
    EXPECT_GE(run.calls_of("C_SetAttributeValue"), 6u);
}

// With --extractable only CKA_SENSITIVE is wrong: the repair is exactly what the token
// got wrong, and an extractable key stays extractable.
TEST_F(FaultTest, RestoreRepairsOnlyWhatTheTokenGotWrong) {
    ASSERT_NO_FATAL_FAILURE(SetUpRestore());
    FaultSpec spec;
    spec.unprotect = true;
    std::vector<std::string> args = restore_args();
    args.insert(args.end(), {"--json", "--extractable"});
    const FaultedRun run = run_faulted(target_, log_path(), "restore", args, spec);
    ASSERT_EQ(run.result.exit_code, 0) << describe(run.result);
    for (const auto& id : kKeyIds) {
        const PrivateKeyState state = private_key_state(target_, id);
        EXPECT_EQ(state.sensitive, true) << hex(id);
        EXPECT_EQ(state.extractable, true) << hex(id);
    }
    const auto document = stdout_json(run.result);
    for (const auto& key : document["keys"])
        EXPECT_EQ(key["repaired"], nlohmann::json::array({"CKA_SENSITIVE"})) << key.dump();
}

TEST_F(FaultTest, RestoreWithoutRepairsReportsNone) {
    ASSERT_NO_FATAL_FAILURE(SetUpRestore());
    std::vector<std::string> args = restore_args();
    args.push_back("--json");
    const FaultedRun run = run_faulted(target_, log_path(), "restore", args, std::nullopt);
    ASSERT_EQ(run.result.exit_code, 0) << describe(run.result);
    const nlohmann::json report = stdout_json(run.result);
    ASSERT_FALSE(report.at("keys").empty()) << report.dump(2);
    for (const auto& key : report.at("keys"))
        EXPECT_EQ(key.at("repaired"), nlohmann::json::array()) << key.dump();
    EXPECT_EQ(run.calls_of("C_SetAttributeValue"), 0u);
    EXPECT_EQ(count_lines_with(run.result, "did not apply"), 0u) << describe(run.result);
}

// The token ignores the template and refuses the repair: exit 5, one error line naming
// the object, the attribute and the token's answer, and the token as it was.
TEST_F(FaultTest, RestoreFailsAndRollsBackWhenTheTokenRefusesTheRepair) {
    ASSERT_NO_FATAL_FAILURE(SetUpRestore());
    FaultSpec spec;
    spec.unprotect = true;
    spec.function = "C_SetAttributeValue";
    spec.rv = "CKR_ATTRIBUTE_READ_ONLY";
    const FaultedRun run = run_faulted(target_, log_path(), "restore", restore_args(), spec);
    EXPECT_EQ(run.result.exit_code, 5) << describe(run.result);
    const auto lines = run.result.err_lines();
    ASSERT_EQ(lines.size(), 1u) << describe(run.result);
    EXPECT_NE(lines[0].find("p11vault: error: private key id=11 label=\"fault-rsa\": C_UnwrapKey ignored "
                            "CKA_SENSITIVE=TRUE (the token holds FALSE), and repairing it failed: "
                            "C_SetAttributeValue: CKR_ATTRIBUTE_READ_ONLY"),
              std::string::npos)
        << lines[0];
    EXPECT_NE(lines[0].find("nothing was left on the token"), std::string::npos) << lines[0];
    EXPECT_EQ(target_.objects(), before_);
}

}  // namespace
}  // namespace p11vault::testing
