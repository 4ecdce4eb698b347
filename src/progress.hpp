// SPDX-License-Identifier: Apache-2.0
// Where long runs say how far they are: backup, restore, migrate and the drill report each
// key as they start it. The library only reports; the CLI decides whether anything is
// shown (a progress line on a terminal, src/cli/progress.hpp). Without a sink installed,
// reporting does nothing.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

namespace p11vault::progress {

// `done` keys of `total` finished; `current` names the key now being worked on (empty
// when all are done). Never a secret: ids, labels, types.
using Sink = std::function<void(std::size_t done, std::size_t total, std::string_view current)>;

// Installs `sink` for this process (an empty one removes it).
void set_sink(Sink sink);

void report(std::size_t done, std::size_t total, std::string_view current);

}  // namespace p11vault::progress
