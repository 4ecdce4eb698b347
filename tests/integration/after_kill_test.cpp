// SPDX-License-Identifier: Apache-2.0
// After a kill -9 the way back is obvious (issue 19, item 2). A restore killed half-way
// (SIGKILL cannot be caught, so nothing is rolled back) leaves keys without their public
// key objects and certificates. Then: the next restore's conflict message says these are
// the file's own keys and what fixes it; `verify` against the token names every missing
// piece (exit 4); `restore --on-conflict skip` adds exactly what is missing, after which
// the token holds what one complete restore writes and verify agrees.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/integration/fault_fixture.hpp"

namespace p11vault::testing {
namespace {

class AfterKillTest : public FaultTest {};

TEST_F(AfterKillTest, ConflictVerifyAndSkipLeadBackToACompleteRestore) {
    ASSERT_NO_FATAL_FAILURE(SetUpRestore());
    // Slow the 4th C_CreateObject down far beyond the run's timeout: the run is killed
    // with SIGKILL while waiting in it.
    FaultSpec slow;
    slow.function = "C_CreateObject";
    slow.nth = 4;
    slow.delay_ms = 60000;
    slow.timeout_seconds = 8;
    const FaultedRun killed = run_faulted(target_, log_path(), "restore", restore_args(), slow);
    ASSERT_EQ(killed.result.exit_code, 128 + 9) << describe(killed.result);
    const auto half = difference(target_.objects(), before_);
    ASSERT_FALSE(half.empty()) << "the kill came before anything was written";
    ASSERT_LT(half.size(), complete_.size()) << "the kill came after everything was written";

    const RunResult conflict = restore(target_, file_, {});
    EXPECT_EQ(conflict.exit_code, 6) << describe(conflict);
    EXPECT_NE(conflict.err.find("the file's own key: did a restore of this file stop half-way? --on-conflict skip "
                                "keeps it and adds its missing public key and certificate"),
              std::string::npos)
        << conflict.err;

    const RunResult incomplete = run_with_token(target_, "verify", {"--in", file_});
    EXPECT_EQ(incomplete.exit_code, 4) << describe(incomplete);
    EXPECT_NE(incomplete.out.find("without the file's certificate"), std::string::npos) << incomplete.out;
    // The last key has no public key object: on SoftHSM its EC private key shows no point,
    // so verify cannot match it and says it is not on the token; where it can, it says
    // the public key object is missing.
    EXPECT_TRUE(incomplete.out.find("without its public key object") != std::string::npos ||
                incomplete.out.find("is not on the token") != std::string::npos)
        << incomplete.out;

    const RunResult completed = restore(target_, file_, {"--on-conflict", "skip"});
    EXPECT_EQ(completed.exit_code, 0) << describe(completed);
    EXPECT_EQ(difference(target_.objects(), before_), complete_) << describe(completed);

    // The bystander key on the target is the one difference left ("not in the file").
    const RunResult verified = run_with_token(target_, "verify", {"--in", file_});
    EXPECT_NE(verified.err.find("(1 difference;"), std::string::npos) << describe(verified);
    EXPECT_EQ(verified.out.find("without"), std::string::npos) << verified.out;
    EXPECT_NE(verified.out.find("3 keys match"), std::string::npos) << verified.out;
}

// A different key under the same id is not "the file's own key": skip leaves it and
// adds nothing next to it.
TEST_F(AfterKillTest, SkipAddsNothingNextToADifferentKey) {
    ASSERT_NO_FATAL_FAILURE(SetUpRestore());
    {
        auto session = target_.open_session();
        generate_rsa(*session, 2048, {0x11}, "someone-else");
    }
    const auto with_other = target_.objects();
    const RunResult conflict = restore(target_, file_, {});
    EXPECT_EQ(conflict.exit_code, 6) << describe(conflict);
    EXPECT_EQ(conflict.err.find("the file's own key"), std::string::npos) << conflict.err;
    const RunResult skipped = restore(target_, file_, {"--on-conflict", "skip"});
    EXPECT_EQ(skipped.exit_code, 0) << describe(skipped);
    // Keys 12 and 13 with public keys and certificates: 6 objects; nothing for id 11.
    const auto added = difference(target_.objects(), with_other);
    EXPECT_EQ(added.size(), 6u);
    for (const auto& object : added) EXPECT_NE(object.id, (pkcs11::Bytes{0x11})) << object.label;
}

}  // namespace
}  // namespace p11vault::testing
