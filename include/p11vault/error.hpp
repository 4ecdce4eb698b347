// SPDX-License-Identifier: Apache-2.0
// The one root error type of p11vault. Every failure the library reports is an Error with
// a kind and a message that says what went wrong and what to do next. Messages never hold
// secrets.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "p11vault/export.hpp"

namespace p11vault {

// What kind of failure an Error is. The command-line tool maps each kind to an exit code
// of its contract (docs/cli.md: src/cli/exit_code.hpp); a program embedding the library
// decides for itself. New kinds may be added; a `default:` keeps a switch working.
enum class ErrorKind {
    failure,       // anything else (a bug, memory, an OpenSSL failure that should not happen)
    usage,         // a bad or missing option or argument: nothing was done
    bad_password,  // a wrong password or a MAC mismatch
    bad_input,     // an input file malformed, unsupported or inconsistent
    token,         // module, slot or token not found; PIN wrong or locked; a call the token failed
    refused,       // a key that may not leave, a conflict, a target that exists
    interrupted,   // stopped by a signal during a write, after undoing it (Error::signal())
};

// "usage", "bad-password", ...: the kind as a word, for logs and messages.
inline const char* error_kind_name(ErrorKind kind) noexcept {
    switch (kind) {
        case ErrorKind::usage: return "usage";
        case ErrorKind::bad_password: return "bad-password";
        case ErrorKind::bad_input: return "bad-input";
        case ErrorKind::token: return "token";
        case ErrorKind::refused: return "refused";
        case ErrorKind::interrupted: return "interrupted";
        case ErrorKind::failure: break;
    }
    return "failure";
}

// One thing an error is about, when it is about many: a refusal of 100 keys is one line of
// text with the reason once and the keys counted, and every key in here (with --json the
// CLI lists them in its p11vault.error/1 document, docs/json.md). Never a secret.
struct ErrorItem {
    std::string id;      // lower-case hex CKA_ID / localKeyID, empty when there is none
    std::string label;   // CKA_LABEL / friendlyName, empty when there is none
    std::string where;   // "bag 3" for an item of a file, empty for an object of a token
    std::string reason;  // why, as in the message
};

class P11VAULT_EXPORT Error : public std::runtime_error {
public:
    Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
    Error(ErrorKind kind, const std::string& message, std::vector<ErrorItem> items)
        : std::runtime_error(message), kind_(kind), items_(std::move(items)) {}
    ErrorKind kind() const noexcept { return kind_; }
    const std::vector<ErrorItem>& items() const noexcept { return items_; }
    // The signal (SIGINT, SIGTERM, SIGHUP) that stopped an `interrupted` run; 0 otherwise.
    int signal() const noexcept { return signal_; }

    // The same error (kind, items, signal) saying `message` instead: for code that adds
    // what it did about the failure ("...; nothing was left on the token").
    Error with_message(const std::string& message) const {
        Error copy(kind_, message, items_);
        copy.signal_ = signal_;
        return copy;
    }

protected:
    // An `interrupted` error (src/interrupt.hpp's Interrupted).
    Error(const std::string& message, int signal)
        : std::runtime_error(message), kind_(ErrorKind::interrupted), signal_(signal) {}

private:
    ErrorKind kind_;
    std::vector<ErrorItem> items_;
    int signal_ = 0;
};

}  // namespace p11vault
