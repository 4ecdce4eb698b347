// SPDX-License-Identifier: Apache-2.0
// Parallel sessions (--jobs): a token on the network answers each call after a round trip
// of milliseconds but serves many sessions at once, so per-key work spread over sessions
// costs the token's work rather than calls x round trip. One login serves them all (PKCS#11
// login state belongs to the application, not the session); each worker thread has its own
// session, and what one worker made (objects, session keys) is its own until the run joins
// the workers. Results are put in file order by the caller: tasks are numbered.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "p11vault/token.hpp"
#include "pkcs11/session.hpp"
#include "src/quirks.hpp"

namespace p11vault {

// The most sessions a run uses by default: enough to hide a 5 ms round trip behind the
// token's work (measured in scripts/bench), few enough that the threads' memory stays small.
inline constexpr unsigned kDefaultJobsCap = 16;

// Error(usage) when `requested` (a spec's jobs) is over kMaxJobs; the API's entry points
// call it before asking for any secret.
void check_jobs(unsigned requested);

// How many sessions a run on `session`'s token uses: `requested` (--jobs; 0 = choose),
// else kDefaultJobsCap, never more than the token's session limits leave this run
// (ulMaxSessionCount, and ulMaxRwSessionCount for a `read_write` pool, less the sessions
// open besides the run's own), and 1 when the module
// took no CKF_OS_LOCKING_OK or the token's quirk row says it serves one session at a time.
// A --jobs that cannot be had adds a warning saying what was used and why.
unsigned choose_jobs(pkcs11::Session& session, const TokenQuirks& quirks, unsigned requested, bool read_write,
                     std::vector<std::string>& warnings);

class SessionPool {
public:
    // Worker 0 is `main` (the run's logged-in session); up to jobs - 1 more sessions are
    // opened on its slot (read-write when `read_write`), sharing its mechanism list, when a
    // for_each has the work for them (a run of three keys opens two more, not fifteen). A
    // token that refuses a further session (CKR_SESSION_COUNT) leaves the pool smaller,
    // never fails it.
    SessionPool(pkcs11::Session& main, unsigned jobs, bool read_write);
    // The pool a run on `main`'s token uses: choose_jobs(main, quirks, requested, ...) sessions.
    static SessionPool for_token(pkcs11::Session& main, const TokenQuirks& quirks, unsigned requested,
                                 bool read_write, std::vector<std::string>& warnings) {
        return SessionPool(main, choose_jobs(main, quirks, requested, read_write, warnings), read_write);
    }
    ~SessionPool();
    SessionPool(const SessionPool&) = delete;
    SessionPool& operator=(const SessionPool&) = delete;

    // The most workers a for_each uses: worker indices are below it.
    unsigned size() const { return jobs_; }
    // The sessions open now, the main one counted (opened as a for_each needs them).
    unsigned sessions_open() const { return static_cast<unsigned>(1 + extra_.size()); }
    // A worker's session, valid in the tasks of a for_each.
    pkcs11::Session& session(unsigned worker) { return worker == 0 ? main_ : *extra_[worker - 1]; }

    // Runs task(worker, index) for every index in [0, count), index order handed out one at
    // a time; with one worker on the calling thread, else on min(size(), count) threads
    // (which block SIGINT, SIGTERM and SIGHUP: those reach the calling thread's
    // InterruptGuard and the tasks ask throw_if_interrupted between keys). `started(index)`,
    // when given, is called on the calling thread as each task starts (progress lines are
    // per thread). After a failure no further task starts; once every worker stopped, the
    // failure of the lowest index is rethrown. Failed cleanups of the worker sessions go to
    // the main session.
    using Task = std::function<void(unsigned worker, std::size_t index)>;
    void for_each(std::size_t count, const Task& task, const std::function<void(std::size_t)>& started = {});

private:
    // Opens sessions until `wanted` (at most size()) are open, the main one counted, or the
    // token refuses one (then size() becomes what is open).
    void open_sessions(unsigned wanted);
    // What the worker sessions could not clean up (session keys), said by the main session.
    void forward_cleanup_failures();

    pkcs11::Session& main_;
    unsigned jobs_;
    bool read_write_;
    std::vector<std::unique_ptr<pkcs11::Session>> extra_;
};

}  // namespace p11vault
