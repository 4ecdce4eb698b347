// SPDX-License-Identifier: Apache-2.0
// Interrupts during writes: Ctrl-C (SIGINT), SIGTERM or SIGHUP while objects are being
// written to a token or a backup file is being written must not leave half of it behind.
// While an InterruptGuard lives, these signals only note that they arrived; the writing
// code asks at points where stopping is safe (between two objects, before a file is put
// in place) and throws Interrupted, which the writer's usual failure path undoes.
// Outside a guard the signals keep their default action: nothing is half-written then.
#pragma once

#include <string>

#include "p11vault/error.hpp"

namespace p11vault {

// Error of kind `interrupted`; the CLI exits with 128 + signal (129 SIGHUP, 130 SIGINT,
// 143 SIGTERM), as a shell reports a process the signal killed.
class Interrupted : public Error {
public:
    Interrupted(int signal, const std::string& message);
};

class InterruptGuard {
public:
    // Installs the noting handlers (nested guards keep the outer one's).
    InterruptGuard();
    // Restores the previous handlers. A signal that arrived after the last question is
    // dropped: the work it would have stopped is complete (owners ask take() at the end
    // and say so), or is failing anyway.
    ~InterruptGuard();
    InterruptGuard(const InterruptGuard&) = delete;
    InterruptGuard& operator=(const InterruptGuard&) = delete;

    // The signal that arrived since the guard was made (0: none), and marks it handled.
    static int take();
};

// Throws Interrupted ("interrupted by SIGINT during <during>") when a signal arrived.
void throw_if_interrupted(const std::string& during);

// "SIGINT", "SIGTERM", "SIGHUP".
std::string signal_name(int signal);

}  // namespace p11vault
