// SPDX-License-Identifier: Apache-2.0
// Interrupted runs (issue 19, item 1): SIGINT, SIGTERM or SIGHUP during the write phase
// of a restore leaves the token as it was and exits 128 + the signal with one line
// saying so. The signal is sent by the fault module at an exact call (P11VAULT_FAULT_SIGNAL),
// so each test interrupts the same point of the run every time.
// A backup's temporary file never survives a signal, and one left by kill -9 is removed
// by the next backup into that directory, which says so.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/integration/fault_fixture.hpp"

namespace p11vault::testing {
namespace {

struct SignalCase {
    const char* name;
    int exit_code;
};

class InterruptTest : public FaultTest, public ::testing::WithParamInterface<SignalCase> {};

// The 4th object-writing call of a 3-key restore: the first key, its public key and the
// second private key are on the token by then.
TEST_P(InterruptTest, SignalDuringRestoreLeavesTheTokenAsItWas) {
    ASSERT_NO_FATAL_FAILURE(SetUpRestore());
    FaultSpec spec;
    spec.function = "C_CreateObject";
    spec.nth = 4;
    spec.signal = GetParam().name;
    const FaultedRun run = run_faulted(target_, log_path(), "restore", restore_args(), spec);
    EXPECT_EQ(run.result.exit_code, GetParam().exit_code) << describe(run.result);
    const auto lines = run.result.err_lines();
    ASSERT_EQ(lines.size(), 1u) << describe(run.result);
    EXPECT_EQ(lines[0].rfind(std::string("p11vault: error: interrupted by ") + GetParam().name +
                                 " during the restore; the token was left as it was (the ",
                             0),
              0u)
        << lines[0];
    EXPECT_NE(lines[0].find("objects written were destroyed)"), std::string::npos) << lines[0];
    EXPECT_EQ(target_.objects(), before_);
    EXPECT_TRUE(run.result.out.empty()) << run.result.out;
}

// A signal before anything is written ends the run the default way: nothing to undo.
TEST_P(InterruptTest, SignalBeforeTheWritePhaseChangesNothing) {
    ASSERT_NO_FATAL_FAILURE(SetUpRestore());
    FaultSpec spec;
    spec.function = "C_FindObjectsInit";
    spec.nth = 1;
    spec.signal = GetParam().name;
    const FaultedRun run = run_faulted(target_, log_path(), "restore", restore_args(), spec);
    EXPECT_NE(run.result.exit_code, 0) << describe(run.result);
    EXPECT_EQ(target_.objects(), before_);
}

INSTANTIATE_TEST_SUITE_P(Signals, InterruptTest,
                         ::testing::Values(SignalCase{"SIGINT", 130}, SignalCase{"SIGTERM", 143},
                                           SignalCase{"SIGHUP", 129}),
                         [](const auto& info) { return std::string(info.param.name); });

class StaleTemporaryTest : public FaultTest {};

// kill -9 during a backup's fsync leaves a complete encrypted file under a temporary
// name; the next backup into the directory removes it and says so, but never a file a
// live writer holds locked, nor a file that only looks similar.
TEST_F(StaleTemporaryTest, NextBackupRemovesWhatAKilledBackupLeft) {
    {
        auto session = source_.open_session();
        certify(*session, generate_ec(*session, "P-256", {0x21}, "stale"));
    }
    const std::string dir = source_.dir() + "/out";
    ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
    const std::string stale = dir + "/.p11vault-Ab12Cd";
    const std::string live = dir + "/.p11vault-Ef34Gh";
    const std::string other = dir + "/.p11vault-notours.p12";
    write_text(stale, "left by kill -9");
    write_text(live, "being written");
    write_text(other, "someone else's");
    const int live_fd = ::open(live.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(live_fd, 0);
    ASSERT_EQ(::flock(live_fd, LOCK_EX | LOCK_NB), 0);

    const RunResult made = backup(source_, dir + "/new.p12", {"--all"});
    ::close(live_fd);
    EXPECT_EQ(made.exit_code, 0) << describe(made);
    EXPECT_EQ(directory_entries(dir), (std::vector<std::string>{".p11vault-Ef34Gh", ".p11vault-notours.p12", "new.p12"}));
    EXPECT_NE(made.err.find("p11vault: warning: removed " + stale +
                            ", a temporary file an interrupted p11vault run left"),
              std::string::npos)
        << made.err;
}

}  // namespace
}  // namespace p11vault::testing
