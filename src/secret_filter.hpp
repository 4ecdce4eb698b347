// SPDX-License-Identifier: Apache-2.0
// Runs a helper program (qrencode) on secret bytes: the secret goes to its stdin, never on
// its command line, where every user of the machine could read it; the program is named
// by an absolute path found in system directories, not in the caller's PATH; and it gets
// a minimal environment (PATH of system directories, LC_ALL=C), none of ours, since one of
// our variables may hold the secret itself (`--password env:VAR`).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "p11vault/secret.hpp"

namespace p11vault {

// Runs argv (argv[0] an absolute path) with `input` on stdin and returns its stdout (at
// most `max_output` bytes; the child is killed beyond that). stderr is discarded: it
// could only echo what stdin held. Throws Error(failure) "PROGRAM: what went wrong" +
// `hint` when the program cannot start, does not read its input, exits other than 0, or
// says too much.
SecretBytes run_filter(const std::vector<std::string>& argv, std::span<const std::uint8_t> input,
                       std::size_t max_output, const std::string& hint);

// The first executable `name` in /usr/bin, /bin, /usr/local/bin; empty when none.
std::string find_system_program(const std::string& name);

}  // namespace p11vault
