// SPDX-License-Identifier: Apache-2.0
// The exit codes of the command-line contract (docs/cli.md), which scripts depend on. The
// library reports kinds of errors (p11vault::ErrorKind); only the command line turns them
// into these numbers.
#pragma once

#include "p11vault/error.hpp"

namespace p11vault::cli {

enum class ExitCode : int {
    ok = 0,
    failure = 1,       // any other failure
    usage = 2,         // bad or missing option
    bad_password = 3,  // wrong password or MAC mismatch
    bad_input = 4,     // input file malformed, unsupported or inconsistent
    token = 5,         // module, slot, token not found; PIN wrong or locked
    refused = 6,       // key not extractable, conflict, target exists
    // Stopped by a signal during a write, after undoing it: 128 + the signal's number
    // (129 SIGHUP, 130 SIGINT, 143 SIGTERM), as a shell reports a process the signal killed.
};

// The exit code of an error of `kind` (an interrupted run without a signal: failure).
int exit_code_of(ErrorKind kind, int signal = 0);
inline int exit_code_of(const Error& error) { return exit_code_of(error.kind(), error.signal()); }

}  // namespace p11vault::cli
