// SPDX-License-Identifier: Apache-2.0
// One writer per token (issue 19, item 3): two restores of one file onto one token at
// once leave every key once, not twice; a run that finds the token's lock taken waits
// --lock-wait seconds, then exits 6 naming the lock file, with the token unchanged;
// backups (shared lock) run side by side but never inside a writer's write phase.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <future>
#include <string>
#include <vector>

#include "src/token_lock.hpp"
#include "tests/integration/fault_fixture.hpp"

namespace p11vault::testing {
namespace {

// The token's lock file, held by the test as another p11vault run would hold it.
class HeldLock {
public:
    HeldLock(const TestToken& token, int operation)
        : path_(token_lock_path(token.module()->token_info(token.slot()), token.module_init().value_or(""))) {
        fd_ = ::open(path_.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
        EXPECT_GE(fd_, 0) << path_;
        EXPECT_EQ(::flock(fd_, operation | LOCK_NB), 0) << path_;
    }
    ~HeldLock() { release(); }
    void release() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
    int fd_ = -1;
};

class TokenLockTest : public FaultTest {};

TEST_F(TokenLockTest, RestoreWaitsForTheLockThenRefusesNamingIt) {
    ASSERT_NO_FATAL_FAILURE(SetUpRestore());
    HeldLock held(target_, LOCK_SH);  // a backup reading the token
    const RunResult refused = restore(target_, file_, {"--lock-wait", "0.3"});
    EXPECT_EQ(refused.exit_code, 6) << describe(refused);
    const auto lines = refused.err_lines();
    ASSERT_EQ(lines.size(), 1u) << describe(refused);
    EXPECT_NE(lines[0].find("another p11vault run is using this token (it holds " + held.path() + "); waited 0.3 s"),
              std::string::npos)
        << lines[0];
    EXPECT_NE(lines[0].find("--lock-wait SECONDS"), std::string::npos) << lines[0];
    EXPECT_EQ(target_.objects(), before_);

    held.release();
    const RunResult done = restore(target_, file_, {"--lock-wait", "0.3"});
    EXPECT_EQ(done.exit_code, 0) << describe(done);
    EXPECT_EQ(difference(target_.objects(), before_), complete_);
}

TEST_F(TokenLockTest, BackupsShareTheLockButWaitForAWriter) {
    ASSERT_NO_FATAL_FAILURE(SetUpRestore());
    const std::string out = source_.dir() + "/shared.p12";
    {
        HeldLock reader(source_, LOCK_SH);
        const RunResult made = backup(source_, out, {"--all", "--lock-wait", "0"});
        EXPECT_EQ(made.exit_code, 0) << describe(made);
    }
    HeldLock writer(source_, LOCK_EX);
    const RunResult refused = backup(source_, source_.dir() + "/during-write.p12", {"--all", "--lock-wait", "0.2"});
    EXPECT_EQ(refused.exit_code, 6) << describe(refused);
    EXPECT_NE(refused.err.find("another p11vault run is writing to this token (it holds " + writer.path()),
              std::string::npos)
        << refused.err;
    EXPECT_FALSE(file_exists(source_.dir() + "/during-write.p12"));
}

// Both runs are slowed at their first C_UnwrapKey (the first key written), so without
// the lock both would have planned against the empty target before either wrote.
TEST_F(TokenLockTest, TwoRestoresAtOnceWriteEveryKeyOnce) {
    ASSERT_NO_FATAL_FAILURE(SetUpRestore());
    FaultSpec slow;
    slow.function = "C_UnwrapKey";
    slow.nth = 1;
    slow.delay_ms = 1500;
    auto first = std::async(std::launch::async, [&] {
        return run_faulted(target_, source_.dir() + "/first.log", "restore", restore_args(), slow);
    });
    auto second = std::async(std::launch::async, [&] {
        return run_faulted(target_, source_.dir() + "/second.log", "restore", restore_args(), slow);
    });
    const RunResult a = first.get().result;
    const RunResult b = second.get().result;
    const int succeeded = (a.exit_code == 0) + (b.exit_code == 0);
    EXPECT_EQ(succeeded, 1) << describe(a) << "\n" << describe(b);
    const RunResult& loser = a.exit_code == 0 ? b : a;
    EXPECT_EQ(loser.exit_code, 6) << describe(loser);
    EXPECT_NE(loser.err.find("--on-conflict"), std::string::npos) << "a conflict, found under the lock: " << loser.err;
    EXPECT_EQ(difference(target_.objects(), before_), complete_) << "every key, public key and certificate once";
}

}  // namespace
}  // namespace p11vault::testing
