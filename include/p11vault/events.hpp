// SPDX-License-Identifier: Apache-2.0
// What the library tells its caller while it works, and where it gets secrets from. The
// library never writes to stderr, never prompts and never reads the environment for a
// secret: a program embedding p11vault passes an Events sink and a SecretProvider, and
// the command-line tool passes ones that print, draw the progress line and read the
// --pin/--password sources (src/cli/).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "p11vault/export.hpp"
#include "p11vault/secret.hpp"

namespace p11vault {

struct TokenDescription;  // p11vault/token.hpp

// How far a long run is: `done` of `total` items of `phase` ("backup", "restore",
// "checking", "writing", "decrypting", "drill") finished; `current` names the item being
// worked on (an id and label, never a secret), empty when all are done.
struct ProgressEvent {
    std::string_view phase;
    std::size_t done = 0;
    std::size_t total = 0;
    std::string_view current;
};

// The sink of a run. Every member has a do-nothing default, so a caller overrides only
// what it shows. Calls come from the thread that called the library, in order.
class P11VAULT_EXPORT Events {
public:
    virtual ~Events();
    // Something the operator should read although the run goes on ("the file's MAC uses
    // MD5", "decrypted on this host for a moment"). Never holds a secret.
    virtual void warning(std::string_view text);
    virtual void progress(const ProgressEvent& event);
    // A token the run opened (found and, when it needs a login, logged in to), as soon as
    // it is open: a caller that logs failed runs can still name the token.
    virtual void token_opened(const TokenDescription& token);
};

// What a secret is for; the provider decides how to get it (a prompt, a file, a vault).
enum class SecretPurpose {
    token_pin,         // the user PIN of `subject`, a token ("token \"CA\" (SoftHSM serial 1a2b)")
    file_password,     // the password that opens an existing file `subject`
    new_file_password, // the password that will protect a new file `subject` (confirm it)
};

struct SecretRequest {
    SecretPurpose purpose;
    std::string subject;  // what the secret opens, for a prompt or an error message
};

// Returns the secret asked for, or throws p11vault::Error (e.g. usage: no source given).
// Called at most once per secret per run, and only when the run needs it (after the
// checks that need no secret).
class P11VAULT_EXPORT SecretProvider {
public:
    virtual ~SecretProvider();
    virtual SecretBytes provide(const SecretRequest& request) = 0;
};

}  // namespace p11vault
