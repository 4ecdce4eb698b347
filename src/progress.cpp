// SPDX-License-Identifier: Apache-2.0
#include "src/progress.hpp"

#include <utility>

namespace p11vault::progress {
namespace {

// Per thread: a public call runs on its caller's thread, and its events go to its sink.
thread_local Events* current_events = nullptr;
thread_local std::string current_phase;

}  // namespace

Scope::Scope(Events& events, std::string phase)
    : previous_events_(current_events), previous_phase_(std::move(current_phase)) {
    current_events = &events;
    current_phase = std::move(phase);
}

Scope::~Scope() {
    current_events = previous_events_;
    current_phase = std::move(previous_phase_);
}

void report(std::size_t done, std::size_t total, std::string_view current) {
    if (current_events != nullptr) current_events->progress({current_phase, done, total, current});
}

}  // namespace p11vault::progress
