// SPDX-License-Identifier: Apache-2.0
// A PKCS#11 module that plays a network HSM, for tests and scripts/bench: every function
// forwards to a real module after sleeping a set time, as every call to an HSM on the
// network is a round trip of 1-10 ms, and it can limit the sessions open at once and
// refuse to be used from several threads. The sleep holds no lock: calls made at once
// sleep at once, as round trips to a device that serves many sessions overlap.
//
// Environment (read once, by the first C_GetFunctionList):
//   P11VAULT_LATENCY_MODULE  the real module (default /usr/lib/softhsm/libsofthsm2.so)
//   P11VAULT_LATENCY_ENTRY   the real module's entry point (default C_GetFunctionList)
//   P11VAULT_LATENCY_MS      the sleep before every call but C_GetFunctionList, in
//                            milliseconds: digits with at most one decimal point (5, 0.5),
//                            at most 60000; default 0 (no sleep)
//   P11VAULT_LATENCY_MAX_SESSIONS=N  C_OpenSession answers CKR_SESSION_COUNT (without
//                            reaching the real module) while N sessions are open, on all
//                            slots together; C_GetTokenInfo reports ulMaxSessionCount and
//                            ulMaxRwSessionCount N, and in ulSessionCount and
//                            ulRwSessionCount the slot's sessions open through the module
//   P11VAULT_LATENCY_NO_THREADS=1  play a module that cannot be used from several threads:
//                            C_Initialize with CKF_OS_LOCKING_OK or mutex callbacks answers
//                            CKR_CANT_LOCK; with NULL (or neither) it is forwarded
//   P11VAULT_LATENCY_STATS=FILE  at every C_Finalize, FILE is replaced by one line
//                            "calls=N max_in_flight=M sessions_max_open=S": the calls made
//                            through the module since it was loaded (every call but
//                            C_GetFunctionList, including those it answered itself: each
//                            slept once, so N x the latency is the time a caller spends
//                            asleep if it makes one call at a time), the most calls in
//                            progress at once, and the most sessions open at once.
// A bad setting makes C_GetFunctionList fail with CKR_ARGUMENTS_BAD after a line on
// stderr, so a typo cannot pass silently.
#include <fcntl.h>
#include <p11-kit/pkcs11.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "tests/support/forwarding_module.hpp"

namespace {

using namespace p11vault::forwarding;

struct LatencyModule;
using Forward = Forwarding<LatencyModule>;

constexpr double max_latency_ms = 60000;

struct Settings {
    std::chrono::nanoseconds latency{0};
    std::optional<CK_ULONG> max_sessions;
    bool no_threads = false;
    std::string stats;
};
Settings settings;

// Digits and, when `fraction`, at most one '.' between digits ("5", "0.5"). Computed here:
// strtod would read the decimal point of whatever locale the host program has set.
std::optional<double> parse_decimal(const char* text, bool fraction) {
    const std::size_t length = std::strlen(text);
    if (length == 0 || text[0] == '.' || text[length - 1] == '.') return std::nullopt;
    double value = 0;
    double scale = 1;
    bool point = false;
    for (const char* at = text; *at != '\0'; ++at) {
        if (*at >= '0' && *at <= '9') {
            if (point) value += (*at - '0') * (scale /= 10);
            else value = value * 10 + (*at - '0');
        } else if (*at == '.' && fraction && !point) {
            point = true;
        } else {
            return std::nullopt;
        }
    }
    return value;
}

bool complain(const std::string& what) {
    std::fprintf(stderr, "p11vault latency module: %s\n", what.c_str());
    return false;
}

bool read_latency_settings(RealModule& real) {
    real.read("P11VAULT_LATENCY_MODULE", "P11VAULT_LATENCY_ENTRY");
    bool valid = true;
    if (const char* text = setting("P11VAULT_LATENCY_MS")) {
        std::optional<double> ms = parse_decimal(text, true);
        if (!ms || *ms > max_latency_ms)
            valid = complain(std::string("P11VAULT_LATENCY_MS must be a number of milliseconds from 0 to 60000 "
                                         "(digits, at most one decimal point), not ") + text);
        else settings.latency = std::chrono::nanoseconds(static_cast<long long>(*ms * 1e6));
    }
    if (const char* text = setting("P11VAULT_LATENCY_MAX_SESSIONS")) {
        std::optional<double> count = parse_decimal(text, false);
        if (!count || *count > 1e9)
            valid = complain(std::string("P11VAULT_LATENCY_MAX_SESSIONS must be a whole number up to 1000000000, not ") +
                             text);
        else settings.max_sessions = static_cast<CK_ULONG>(*count);
    }
    if (const char* text = setting("P11VAULT_LATENCY_NO_THREADS")) {
        if (std::strcmp(text, "1") == 0) settings.no_threads = true;
        else valid = complain(std::string("P11VAULT_LATENCY_NO_THREADS must be 1, not ") + text);
    }
    if (const char* text = setting("P11VAULT_LATENCY_STATS")) settings.stats = text;
    return valid;
}

// ---- What the stats file reports ---------------------------------------------------------
std::atomic<unsigned long> calls{0};
std::atomic<unsigned long> in_flight{0};
std::atomic<unsigned long> max_in_flight{0};

void raise_to(std::atomic<unsigned long>& maximum, unsigned long value) {
    unsigned long seen = maximum.load();
    while (value > seen && !maximum.compare_exchange_weak(seen, value)) {
    }
}

// One call in progress, from its start (before the sleep) to its return.
class InFlight {
public:
    InFlight() {
        calls.fetch_add(1);
        raise_to(max_in_flight, in_flight.fetch_add(1) + 1);
    }
    ~InFlight() { in_flight.fetch_sub(1); }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;
};

// ---- Sessions ----------------------------------------------------------------------------
struct OpenSession {
    CK_SLOT_ID slot;
    bool read_write;
};

// The open sessions (by handle) and the ones being opened:
// a place is taken before the real C_OpenSession, so that calls made at once cannot
// together pass the limit. The lock is never held across a sleep or a forwarded call.
std::mutex sessions_mutex;
std::map<CK_SESSION_HANDLE, OpenSession> open_sessions;
CK_ULONG sessions_being_opened = 0;
CK_ULONG sessions_max_open = 0;

CK_RV open_session(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR application, CK_NOTIFY notify,
                   CK_SESSION_HANDLE_PTR session) {
    {
        std::lock_guard lock(sessions_mutex);
        if (settings.max_sessions && open_sessions.size() + sessions_being_opened >= *settings.max_sessions)
            return CKR_SESSION_COUNT;
        ++sessions_being_opened;
    }
    CK_RV rv = Forward::forward<&CK_FUNCTION_LIST::C_OpenSession>(slot, flags, application, notify, session);
    std::lock_guard lock(sessions_mutex);
    --sessions_being_opened;
    if (rv == CKR_OK && session != nullptr) {
        open_sessions[*session] = OpenSession{slot, (flags & CKF_RW_SESSION) != 0};
        sessions_max_open = std::max<CK_ULONG>(sessions_max_open, open_sessions.size());
    }
    return rv;
}

void session_closed(CK_RV rv, CK_SESSION_HANDLE session) {
    if (rv != CKR_OK && rv != CKR_SESSION_HANDLE_INVALID && rv != CKR_SESSION_CLOSED) return;
    std::lock_guard lock(sessions_mutex);
    open_sessions.erase(session);
}

void slot_sessions_closed(CK_RV rv, CK_SLOT_ID slot) {
    if (rv != CKR_OK) return;
    std::lock_guard lock(sessions_mutex);
    std::erase_if(open_sessions, [slot](const auto& entry) { return entry.second.slot == slot; });
}

void report_sessions(CK_RV rv, CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info) {
    if (rv != CKR_OK || info == nullptr || !settings.max_sessions) return;
    info->ulMaxSessionCount = info->ulMaxRwSessionCount = *settings.max_sessions;
    std::lock_guard lock(sessions_mutex);
    info->ulSessionCount = info->ulRwSessionCount = 0;
    for (const auto& [handle, session] : open_sessions) {
        if (session.slot != slot) continue;
        ++info->ulSessionCount;
        if (session.read_write) ++info->ulRwSessionCount;
    }
}

// ---- Initialize and finalize -------------------------------------------------------------
bool asks_for_locking(CK_VOID_PTR init_args) {
    const auto* args = static_cast<const CK_C_INITIALIZE_ARGS*>(init_args);
    return args != nullptr && ((args->flags & CKF_OS_LOCKING_OK) != 0 || args->CreateMutex != nullptr);
}

void write_stats() {
    if (settings.stats.empty()) return;
    unsigned long max_open = 0;
    {
        std::lock_guard lock(sessions_mutex);
        max_open = sessions_max_open;
    }
    char line[128];
    int length = std::snprintf(line, sizeof line, "calls=%lu max_in_flight=%lu sessions_max_open=%lu\n", calls.load(),
                               max_in_flight.load(), max_open);
    int fd = ::open(settings.stats.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::write(fd, line, static_cast<std::size_t>(length)) != length) {
        std::fprintf(stderr, "p11vault latency module: cannot write %s: %s\n", settings.stats.c_str(),
                     std::strerror(errno));
    }
    if (fd >= 0) ::close(fd);
}

void finalized(CK_RV rv) {
    if (rv == CKR_OK) {
        std::lock_guard lock(sessions_mutex);
        open_sessions.clear();
    }
    write_stats();
}

struct LatencyModule {
    static constexpr const char* name = "p11vault latency module";

    static bool read_settings(RealModule& real) { return read_latency_settings(real); }
    static CK_FUNCTION_LIST* published(CK_FUNCTION_LIST* table) { return table; }

    template <auto Member, int Index, typename... Args>
    static CK_RV call(Args... args) {
        InFlight call_in_flight;
        if (settings.latency.count() > 0) std::this_thread::sleep_for(settings.latency);
        if constexpr (Index == C_Initialize_index) {
            if (settings.no_threads && asks_for_locking(args...)) return CKR_CANT_LOCK;
        }
        if constexpr (Index == C_OpenSession_index) {
            return open_session(args...);
        } else {
            CK_RV rv = Forward::forward<Member>(args...);
            if constexpr (Index == C_CloseSession_index) session_closed(rv, args...);
            if constexpr (Index == C_CloseAllSessions_index) slot_sessions_closed(rv, args...);
            if constexpr (Index == C_GetTokenInfo_index) report_sessions(rv, args...);
            if constexpr (Index == C_Finalize_index) finalized(rv);
            return rv;
        }
    }
};

}  // namespace

extern "C" __attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) {
    return Forward::get_function_list(list);
}
