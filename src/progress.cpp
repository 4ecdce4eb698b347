// SPDX-License-Identifier: Apache-2.0
#include "src/progress.hpp"

#include <utility>

namespace p11vault::progress {
namespace {

// One per process: p11vault runs one command, on one thread.
Sink& installed() {
    static Sink sink;
    return sink;
}

}  // namespace

void set_sink(Sink sink) { installed() = std::move(sink); }

void report(std::size_t done, std::size_t total, std::string_view current) {
    if (installed()) installed()(done, total, current);
}

}  // namespace p11vault::progress
