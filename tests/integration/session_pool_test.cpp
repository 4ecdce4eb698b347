// SPDX-License-Identifier: Apache-2.0
// The session pool (src/session_pool.*) on a SoftHSM token, in process: how many sessions
// a run chooses (a quirk row or a module that cannot lock means one, with a warning for a
// --jobs that asked for more), the limit on --jobs, sessions opened only for the work there
// is, and the lowest failing task's error rethrown after every worker stopped.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "p11vault/error.hpp"
#include "src/session_pool.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

TEST(SessionPoolTest, AQuirkRowOfOneSessionMeansOneAndSaysWhy) {
    TestToken token(Backend::softhsm, "pool-quirk");
    auto session = token.open_session();
    TokenQuirks quirks;
    quirks.one_session_at_a_time = "the token's firmware serves one session at a time";
    std::vector<std::string> warnings;
    EXPECT_EQ(choose_jobs(*session, quirks, 4, /*read_write=*/true, warnings), 1u);
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_EQ(warnings[0], "--jobs 4: the token's firmware serves one session at a time; one session was used");
    warnings.clear();
    EXPECT_EQ(choose_jobs(*session, quirks, 0, /*read_write=*/true, warnings), 1u);
    EXPECT_TRUE(warnings.empty()) << "no --jobs was asked for: nothing to warn about";
}

TEST(SessionPoolTest, WithoutLimitsTheDefaultIsTheCapAndAskedJobsAreKept) {
    TestToken token(Backend::softhsm, "pool-default");
    auto session = token.open_session();
    std::vector<std::string> warnings;
    // SoftHSM sets no session limit (CK_EFFECTIVELY_INFINITE).
    EXPECT_EQ(choose_jobs(*session, TokenQuirks{}, 0, /*read_write=*/true, warnings), kDefaultJobsCap);
    EXPECT_EQ(choose_jobs(*session, TokenQuirks{}, 40, /*read_write=*/false, warnings), 40u);
    EXPECT_TRUE(warnings.empty());
    try {
        choose_jobs(*session, TokenQuirks{}, kMaxJobs + 1, /*read_write=*/true, warnings);
        ADD_FAILURE() << "jobs over kMaxJobs were accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::usage);
        EXPECT_EQ(std::string(e.what()), "--jobs 257: at most 256 sessions can work at once");
    }
}

TEST(SessionPoolTest, OpensSessionsForTheWorkThereIsAndGivesEachWorkerItsOwn) {
    TestToken token(Backend::softhsm, "pool-lazy");
    auto session = token.open_session();
    SessionPool pool(*session, 8, /*read_write=*/false);
    EXPECT_EQ(pool.size(), 8u);
    EXPECT_EQ(pool.sessions_open(), 1u) << "sessions opened before there was work for them";
    std::mutex mutex;
    std::set<unsigned> workers;
    std::set<CK_SESSION_HANDLE> handles;
    const auto record = [&](unsigned worker, std::size_t) {
        std::lock_guard lock(mutex);
        workers.insert(worker);
        handles.insert(pool.session(worker).handle());
        EXPECT_LT(worker, 3u) << "three tasks, yet a fourth worker";
    };
    pool.for_each(1, [&](unsigned worker, std::size_t) { EXPECT_EQ(worker, 0u); });
    EXPECT_EQ(pool.sessions_open(), 1u) << "one task needs no second session";
    pool.for_each(3, record);
    EXPECT_EQ(pool.sessions_open(), 3u) << "three tasks, three sessions";
    EXPECT_LE(workers.size(), 3u);
    EXPECT_EQ(handles.size(), workers.size()) << "two workers shared a session";
    // One task runs on the calling thread, in the main session; the pool keeps what it has.
    workers.clear();
    pool.for_each(1, [&](unsigned worker, std::size_t) { workers.insert(worker); });
    EXPECT_EQ(workers, std::set<unsigned>{0});
    EXPECT_EQ(pool.sessions_open(), 3u);
}

TEST(SessionPoolTest, TheLowestFailingTaskIsRethrownAfterEveryWorkerStopped) {
    TestToken token(Backend::softhsm, "pool-failure");
    auto session = token.open_session();
    SessionPool pool(*session, 4, /*read_write=*/false);
    std::atomic<int> running{0}, finished{0};
    try {
        // Every task fails: whichever ran first, task 0 is the lowest that failed (it is
        // handed out first, so it always starts).
        pool.for_each(8, [&](unsigned, std::size_t index) {
            ++running;
            ++finished;
            throw std::runtime_error("task " + std::to_string(index));
        });
        ADD_FAILURE() << "no failure rethrown";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()), "task 0");
    }
    EXPECT_EQ(running.load(), finished.load());
    EXPECT_LT(finished.load(), 8) << "tasks kept starting after a failure";
}

}  // namespace
}  // namespace p11vault::testing
