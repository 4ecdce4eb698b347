// SPDX-License-Identifier: Apache-2.0
// The one root error type of p11vault. Every failure that reaches the CLI is an Error
// carrying the exit code of the command-line contract (docs/cli.md) and a
// message that says what went wrong and what to do next. Messages never hold secrets.
#pragma once

#include <stdexcept>
#include <string>

namespace p11vault {

// Exit codes of the command-line contract. Scripts depend on these numbers.
enum class ErrorKind : int {
    ok = 0,
    failure = 1,       // any other failure
    usage = 2,         // bad or missing option
    bad_password = 3,  // wrong password or MAC mismatch
    bad_input = 4,     // input file malformed, unsupported or inconsistent
    token = 5,         // module, slot, token not found; PIN wrong or locked
    refused = 6,       // key not extractable, conflict, target exists
    // Stopped by a signal during a write, after undoing it: 128 + the signal's number,
    // as a shell reports a process the signal killed.
    interrupted_hup = 129,   // SIGHUP
    interrupted_int = 130,   // SIGINT (Ctrl-C)
    interrupted_term = 143,  // SIGTERM
};

class Error : public std::runtime_error {
public:
    Error(ErrorKind code, const std::string& message) : std::runtime_error(message), code_(code) {}
    ErrorKind code() const noexcept { return code_; }

private:
    ErrorKind code_;
};

}  // namespace p11vault
