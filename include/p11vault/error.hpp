// SPDX-License-Identifier: Apache-2.0
// The one root error type of p11vault. Every failure that reaches the CLI is an Error
// carrying the exit code of the command-line contract (docs/cli.md) and a
// message that says what went wrong and what to do next. Messages never hold secrets.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace p11vault {

// Exit codes of the command-line contract. Scripts depend on these numbers.
enum class ExitCode : int {
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

// One thing an error is about, when it is about many: a refusal of 100 keys is one line of
// text with the reason once and the keys counted, and every key in here (with --json the
// CLI lists them in its p11vault.error/1 document, docs/json.md). Never a secret.
struct ErrorItem {
    std::string id;      // lower-case hex CKA_ID / localKeyID, empty when there is none
    std::string label;   // CKA_LABEL / friendlyName, empty when there is none
    std::string where;   // "bag 3" for an item of a file, empty for an object of a token
    std::string reason;  // why, as in the message
};

class Error : public std::runtime_error {
public:
    Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    Error(ExitCode code, const std::string& message, std::vector<ErrorItem> items)
        : std::runtime_error(message), code_(code), items_(std::move(items)) {}
    ExitCode code() const noexcept { return code_; }
    const std::vector<ErrorItem>& items() const noexcept { return items_; }

private:
    ExitCode code_;
    std::vector<ErrorItem> items_;
};

}  // namespace p11vault
