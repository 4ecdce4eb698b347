// SPDX-License-Identifier: Apache-2.0
// Fault injection (issue 8): p11vault runs against tests/fault/fault_module.cpp, a PKCS#11
// module that forwards to SoftHSM and fails one chosen call. For every call of a restore
// and of a backup in turn:
// - restore exits non-zero with one `p11vault: error:` line naming the failed call, and
//   the token holds exactly the objects it held before (all or nothing); when the
//   rollback fails as well, the message lists the objects left behind, and those are
//   exactly the extra objects on the token;
// - backup exits non-zero and leaves neither the output file nor a temporary file.
// "Every call" is every counted call of the fault module (all but loading, unloading and
// the read-only information queries); the queries are failed by name, at their first and
// last call. The failing return values of a restore's C_UnwrapKey and C_CreateObject
// calls also vary: CKR_DEVICE_ERROR, CKR_SESSION_HANDLE_INVALID, CKR_DEVICE_MEMORY,
// CKR_TOKEN_NOT_PRESENT.
//
// Calls whose failure cannot change the outcome are allowed to end in exit 0, and only
// with the complete result (check_restore, check_backup): C_CloseSession at the very end
// (the session's work is done; p11vault logs the failure) and C_DestroyObject of a
// session object: an ephemeral session key, or the session-only public key object that
// asks the token whether it takes a curve (they vanish with the session; p11vault warns).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/integration/fault_fixture.hpp"

namespace p11vault::testing {
namespace {

TEST_F(FaultTest, RestoreFailingAtEveryCallLeavesTheTokenAsItWas) {
    ASSERT_NO_FATAL_FAILURE(SetUpRestore());
    const unsigned long total = baseline_.counted_calls();
    ASSERT_GT(total, 20u) << "the call log is implausibly short";
    ASSERT_GE(baseline_.calls_of("C_UnwrapKey") + baseline_.calls_of("C_CreateObject"), 9u);
    std::size_t failures = 0;
    for (unsigned long k = 1; k <= total; ++k) {
        FaultSpec spec;
        spec.at = k;
        if (check_restore(spec)) ++failures;
        if (::testing::Test::HasFailure()) return;  // one broken k says enough
    }
    RecordProperty("calls", static_cast<int>(total));
    RecordProperty("failed", static_cast<int>(failures));
    // Every C_DestroyObject of a successful restore is of a session object.
    const unsigned long tolerated = 1 + baseline_.calls_of("C_DestroyObject");
    EXPECT_LE(tolerated, 4u) << "more session objects than one key and one trial per curve";
    EXPECT_GE(failures + tolerated, total) << "at most the final C_CloseSession and the C_DestroyObject of session "
                                              "objects may fail without failing the restore";
}

TEST_F(FaultTest, RestoreFailingInAnInformationQueryLeavesTheTokenAsItWas) {
    ASSERT_NO_FATAL_FAILURE(SetUpRestore());
    const auto specs = query_faults(baseline_);
    ASSERT_GE(specs.size(), 4u) << "slot list, token info, mechanism list and info at least";
    for (const FaultSpec& spec : specs) {
        EXPECT_TRUE(check_restore(spec)) << describe(spec) << " did not fail the restore";
        if (::testing::Test::HasFailure()) return;
    }
}

TEST_F(FaultTest, RestoreFailingInUnwrapOrCreateWithTokenErrorsLeavesTheTokenAsItWas) {
    ASSERT_NO_FATAL_FAILURE(SetUpRestore());
    for (const std::string function : {"C_UnwrapKey", "C_CreateObject"}) {
        const std::size_t calls = baseline_.calls_of(function);
        ASSERT_GE(calls, 1u) << function << " is not called by a SoftHSM restore any more";
        for (const std::string rv :
             {"CKR_DEVICE_ERROR", "CKR_SESSION_HANDLE_INVALID", "CKR_DEVICE_MEMORY", "CKR_TOKEN_NOT_PRESENT"}) {
            for (std::size_t nth = 1; nth <= calls; ++nth) {
                FaultSpec spec;
                spec.function = function;
                spec.nth = nth;
                spec.rv = rv;
                EXPECT_TRUE(check_restore(spec)) << describe(spec) << " did not fail the restore";
                if (::testing::Test::HasFailure()) return;
            }
        }
    }
}

// A fault in the write phase plus every C_DestroyObject failing: the rollback cannot
// undo anything. The message must say so and name every object left behind, and those
// must be exactly the extra objects on the token.
TEST_F(FaultTest, RestoreWhoseRollbackFailsNamesTheObjectsLeftBehind) {
    ASSERT_NO_FATAL_FAILURE(SetUpRestore());
    // On SoftHSM the first token object is the first private key, made by C_UnwrapKey
    // (the C_CreateObject before it makes the ephemeral session key): every
    // object-creating call after that one fails with something to roll back.
    std::vector<unsigned long> write_calls;
    bool created = false;
    for (const auto& call : baseline_.calls) {
        if (call.function != "C_UnwrapKey" && call.function != "C_CreateObject") continue;
        if (created) write_calls.push_back(call.number);
        created = created || call.function == "C_UnwrapKey";
    }
    ASSERT_EQ(write_calls.size(), 8u) << "2 private keys, 3 public keys and 3 certificates after the first key";
    std::size_t with_leftovers = 0;
    for (unsigned long k : write_calls) {
        FaultSpec spec;
        spec.at = k;
        spec.function = "C_DestroyObject";
        SCOPED_TRACE("fault: " + describe(spec));
        const FaultedRun run = run_faulted(target_, log_path(), "restore", restore_args(), spec);
        EXPECT_NE(run.result.exit_code, 0) << describe(run.result);
        EXPECT_LT(run.result.exit_code, 128);
        const auto extra = difference(target_.objects(), before_);
        // The error line is the last line; the failed removal of the ephemeral session
        // key adds a warning before it.
        const auto lines = run.result.err_lines();
        ASSERT_FALSE(lines.empty());
        const std::string& error = lines.back();
        EXPECT_EQ(error.rfind("p11vault: error: ", 0), 0u) << error;
        std::size_t errors = 0;
        for (const auto& line : lines) {
            if (line.rfind("p11vault: error: ", 0) == 0) ++errors;
            else EXPECT_EQ(line.rfind("p11vault: warning: ", 0), 0u) << line;
        }
        EXPECT_EQ(errors, 1u) << describe(run.result);
        // The session key's failed removal reaches the operator although the PKCS#11
        // layer writes nothing itself (the session reports it to the CLI).
        EXPECT_NE(run.result.err.find("p11vault: warning: could not remove object"), std::string::npos)
            << describe(run.result);
        const auto injected = run.injected();
        ASSERT_FALSE(injected.empty()) << describe(run.result);
        EXPECT_NE(error.find(injected.front().function), std::string::npos) << error;
        if (extra.empty()) {
            EXPECT_NE(error.find("nothing was left on the token"), std::string::npos) << error;
        } else {
            ++with_leftovers;
            EXPECT_NE(error.find("the rollback failed too"), std::string::npos) << error;
            EXPECT_EQ(named_leftovers(error), extra) << "the message must name exactly the objects left: " << error;
            remove_extra_objects(target_, before_);
        }
        if (::testing::Test::HasFatalFailure()) return;
    }
    EXPECT_EQ(with_leftovers, write_calls.size()) << "every one of these faults comes after an object was created";
}

// The module itself: a fault that names an unknown function must not pass silently.
TEST_F(FaultTest, FaultModuleRefusesABadSetting) {
    RunOptions options;
    add_env_entries(options, target_.env_for_child());
    options.env["P11VAULT_FAULT_FUNCTION"] = "C_NoSuchFunction";
    const RunResult run = run_p11vault({"list", "--module", kFaultModule}, options);
    EXPECT_EQ(run.exit_code, 5) << describe(run);
    EXPECT_NE(run.err.find("unknown function C_NoSuchFunction"), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("C_GetFunctionList: CKR_ARGUMENTS_BAD"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace p11vault::testing
