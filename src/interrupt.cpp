// SPDX-License-Identifier: Apache-2.0
#include "src/interrupt.hpp"

#include <signal.h>

#include <atomic>

namespace p11vault {

namespace {

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};

// Written by the handler: a lock-free atomic is async-signal-safe.
std::atomic<int> arrived{0};
static_assert(std::atomic<int>::is_always_lock_free);

int depth = 0;
struct sigaction previous[3];

extern "C" void note_signal(int signal) {
    int expected = 0;
    // The first signal wins; a second Ctrl-C does not change what is reported.
    arrived.compare_exchange_strong(expected, signal);
}

}  // namespace

Interrupted::Interrupted(int signal, const std::string& message)
    : Error(message, signal) {}

std::string signal_name(int signal) {
    switch (signal) {
        case SIGHUP:
            return "SIGHUP";
        case SIGINT:
            return "SIGINT";
        case SIGTERM:
            return "SIGTERM";
        default:
            return "signal " + std::to_string(signal);
    }
}

InterruptGuard::InterruptGuard() {
    if (depth++ != 0) return;
    arrived.store(0);
    struct sigaction noting {};
    noting.sa_handler = note_signal;
    sigemptyset(&noting.sa_mask);
    // SA_RESTART: a PKCS#11 module's own read() or write() must not fail with EINTR
    // because of us; the signal is acted on at the next safe point instead.
    noting.sa_flags = SA_RESTART;
    for (std::size_t i = 0; i < std::size(kSignals); ++i) sigaction(kSignals[i], &noting, &previous[i]);
}

InterruptGuard::~InterruptGuard() {
    if (--depth != 0) return;
    for (std::size_t i = 0; i < std::size(kSignals); ++i) sigaction(kSignals[i], &previous[i], nullptr);
    arrived.store(0);
}

int InterruptGuard::take() { return arrived.exchange(0); }

void throw_if_interrupted(const std::string& during) {
    if (depth == 0) return;
    int signal = InterruptGuard::take();
    if (signal == 0) return;
    throw Interrupted(signal, "interrupted by " + signal_name(signal) + " during " + during);
}

}  // namespace p11vault
