// SPDX-License-Identifier: Apache-2.0
// Where long runs say how far they are: backup, restore, migrate and the drill report each
// key as they start it. The library only reports, to the Events sink of the public call
// that is running on this thread (include/p11vault/events.hpp); the caller decides whether
// anything is shown (the CLI's progress line on a terminal). Outside such a call,
// reporting does nothing.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "p11vault/events.hpp"

namespace p11vault::progress {

// Routes report() on this thread to `events` as ProgressEvents of `phase` while it lives
// (the previous route is restored afterwards, so scopes nest).
class Scope {
public:
    Scope(Events& events, std::string phase);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

private:
    Events* previous_events_;
    std::string previous_phase_;
};

// `done` keys of `total` finished; `current` names the key now being worked on (empty
// when all are done). Never a secret: ids, labels, types.
void report(std::size_t done, std::size_t total, std::string_view current);

}  // namespace p11vault::progress
