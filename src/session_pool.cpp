// SPDX-License-Identifier: Apache-2.0
#include "src/session_pool.hpp"

#include <pthread.h>
#include <signal.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "p11vault/error.hpp"
#include "pkcs11/error.hpp"

namespace p11vault {

namespace {

// The sessions of one kind a token still lets this run have, its main session counted in
// when it is of that kind; nullopt when the token sets no limit. A token that gives the
// limit but not how many are open (SoftHSM says CK_UNAVAILABLE_INFORMATION) is taken to
// have only this run's sessions open: the limit is the whole pool.
std::optional<CK_ULONG> sessions_allowed(CK_ULONG max, CK_ULONG open, bool main_counted) {
    if (max == CK_EFFECTIVELY_INFINITE || max == CK_UNAVAILABLE_INFORMATION) return std::nullopt;
    if (open == CK_UNAVAILABLE_INFORMATION) return max;
    const CK_ULONG others = open - std::min<CK_ULONG>(open, main_counted ? 1 : 0);
    return max > others ? max - others : 1;
}

// A pool of read-write sessions counts against both of the token's limits, a read-only
// pool against the total only.
std::optional<CK_ULONG> free_sessions(const pkcs11::Session& main, const pkcs11::TokenInfo& info, bool read_write) {
    std::optional<CK_ULONG> allowed = sessions_allowed(info.max_session_count, info.session_count, true);
    if (read_write)
        if (auto rw = sessions_allowed(info.max_rw_session_count, info.rw_session_count, main.read_write()))
            allowed = allowed ? std::min(*allowed, *rw) : *rw;
    return allowed;
}

// Blocks the interrupt signals on the calling thread while it lives: threads started
// meanwhile inherit the mask, so a signal reaches the thread that holds the InterruptGuard.
class BlockedInterrupts {
public:
    BlockedInterrupts() {
        sigset_t blocked;
        sigemptyset(&blocked);
        for (int signal : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&blocked, signal);
        pthread_sigmask(SIG_BLOCK, &blocked, &previous_);
    }
    ~BlockedInterrupts() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
    BlockedInterrupts(const BlockedInterrupts&) = delete;
    BlockedInterrupts& operator=(const BlockedInterrupts&) = delete;

private:
    sigset_t previous_;
};

}  // namespace

void check_jobs(unsigned requested) {
    if (requested > kMaxJobs)
        throw Error(ErrorKind::usage,
                    fmt::format("--jobs {}: at most {} sessions can work at once", requested, kMaxJobs));
}

unsigned choose_jobs(pkcs11::Session& session, const TokenQuirks& quirks, unsigned requested, bool read_write,
                     std::vector<std::string>& warnings) {
    const auto one = [&](const std::string& why) {
        if (requested > 1) warnings.push_back(fmt::format("--jobs {}: {}; one session was used", requested, why));
        if (pkcs11::debug_logging()) pkcs11::debug_log("jobs: 1 (" + why + ")");
        return 1u;
    };
    check_jobs(requested);
    if (!session.module().thread_safe())
        return one(session.module().owns_initialization()
                       ? "the module cannot be called from several threads (C_Initialize: CKR_CANT_LOCK)"
                       : "the module was initialized by another user of this process, not for several threads");
    if (quirks.one_session_at_a_time != nullptr) return one(quirks.one_session_at_a_time);
    unsigned jobs = requested != 0 ? requested : kDefaultJobsCap;
    if (auto free = free_sessions(session, session.module().token_info(session.slot()), read_write);
        free && *free < jobs) {
        if (requested != 0)
            warnings.push_back(fmt::format("--jobs {}: the token allows this run {} {}session{}; {} used", requested,
                                           *free, read_write ? "read-write " : "", *free == 1 ? "" : "s",
                                           *free == 1 ? "one was" : fmt::format("{} were", *free)));
        jobs = static_cast<unsigned>(*free);
    }
    if (pkcs11::debug_logging())
        pkcs11::debug_log(fmt::format("jobs: {}{}", jobs, requested != 0 ? " (--jobs)" : ""));
    return jobs;
}

SessionPool::SessionPool(pkcs11::Session& main, unsigned jobs, bool read_write)
    : main_(main), jobs_(std::max(jobs, 1u)), read_write_(read_write) {}

void SessionPool::open_sessions(unsigned wanted) {
    while (1 + extra_.size() < wanted) {
        const unsigned k = static_cast<unsigned>(1 + extra_.size());
        try {
            extra_.push_back(std::make_unique<pkcs11::Session>(main_.shared_module(), main_.slot(), read_write_));
        } catch (const pkcs11::Pkcs11Error& e) {
            // A token may count sessions other applications hold: use what it gave.
            if (e.rv() != CKR_SESSION_COUNT && e.rv() != CKR_DEVICE_MEMORY && e.rv() != CKR_HOST_MEMORY) throw;
            if (pkcs11::debug_logging())
                pkcs11::debug_log(fmt::format("jobs: {} (the token refused session {}: {})", k, k + 1, e.what()));
            jobs_ = k;
            return;
        }
        extra_.back()->adopt_mechanisms(main_.mechanisms());
    }
}

SessionPool::~SessionPool() { forward_cleanup_failures(); }

void SessionPool::forward_cleanup_failures() {
    for (auto& session : extra_)
        for (std::string& failure : session->take_cleanup_failures()) main_.report_cleanup_failure(std::move(failure));
}

void SessionPool::for_each(std::size_t count, const Task& task, const std::function<void(std::size_t)>& started) {
    if (count > 1) open_sessions(static_cast<unsigned>(std::min<std::size_t>(count, jobs_)));
    if (extra_.empty() || count <= 1) {
        for (std::size_t index = 0; index < count; ++index) {
            if (started) started(index);
            task(0, index);
        }
        return;
    }

    std::mutex mutex;
    std::condition_variable changed;
    std::size_t next = 0;                       // the next index to hand out
    std::vector<std::size_t> newly_started;     // for `started`, on this thread
    unsigned running = 0;
    std::atomic<bool> stop{false};
    std::optional<std::pair<std::size_t, std::exception_ptr>> failure;  // the lowest index

    const auto work = [&](unsigned worker) {
        for (;;) {
            std::size_t index;
            {
                std::lock_guard lock(mutex);
                if (stop || next == count) break;
                index = next++;
                if (started) newly_started.push_back(index);
            }
            // Only the calling thread waits on `changed`: wake it for `started`, else when done.
            if (started) changed.notify_one();
            try {
                task(worker, index);
            } catch (...) {
                std::lock_guard lock(mutex);
                stop = true;
                if (!failure || index < failure->first) failure.emplace(index, std::current_exception());
            }
        }
        {
            std::lock_guard lock(mutex);
            --running;
        }
        changed.notify_one();
    };

    const unsigned workers = static_cast<unsigned>(std::min<std::size_t>(1 + extra_.size(), count));
    std::vector<std::thread> threads;
    {
        BlockedInterrupts blocked;
        running = workers;
        try {
            for (unsigned worker = 0; worker < workers; ++worker) threads.emplace_back(work, worker);
        } catch (...) {
            // No thread could be started (std::system_error): the ones running finish alone.
            std::lock_guard lock(mutex);
            running -= workers - static_cast<unsigned>(threads.size());
            if (threads.empty()) throw;
        }
    }
    std::unique_lock lock(mutex);
    for (;;) {
        changed.wait(lock, [&] { return !newly_started.empty() || running == 0; });
        std::vector<std::size_t> batch = std::exchange(newly_started, {});
        const bool done = running == 0;
        lock.unlock();
        try {
            if (started)
                for (std::size_t index : batch) started(index);
        } catch (...) {
            // The workers must be joined before anything unwinds: stop them, then fail.
            lock.lock();
            stop = true;
            if (!failure) failure.emplace(0, std::current_exception());
            lock.unlock();
        }
        lock.lock();
        if (done && newly_started.empty()) break;
    }
    lock.unlock();
    for (std::thread& thread : threads) thread.join();
    forward_cleanup_failures();
    if (failure) std::rethrow_exception(failure->second);
}

}  // namespace p11vault
