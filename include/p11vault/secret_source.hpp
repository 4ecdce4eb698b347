// SPDX-License-Identifier: Apache-2.0
// Secret sources of the command-line contract: pass:TEXT (warns), env:VAR, file:PATH
// (first line), fd:N, stdin, shares:FILE,... (passwords only; see shares.hpp), and a
// no-echo prompt when the option is absent and stdin is a terminal.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "p11vault/export.hpp"
#include "p11vault/secret.hpp"

namespace p11vault {

enum class Prompt {
    once,     // ask once (PINs, passwords to open a file)
    confirm,  // ask twice and require the same answer (a password that protects a new file)
};

// Reads the secret named by `source` ("env:PW", "file:/x", ...). `what` names it in
// prompts and errors ("PIN", "password"). When `source` is absent: prompt without echo
// if stdin is a terminal, else Error(usage) saying which option to give.
// Errors never contain the secret; a missing env var, unreadable file etc. are
// Error(usage) naming the source, not its content. pass: prints one warning to stderr
// (argv is visible to other users of the machine).
P11VAULT_EXPORT SecretBytes read_secret(const std::optional<std::string>& source, std::string_view what,
                                        std::string_view option_name, Prompt prompt = Prompt::once);

}  // namespace p11vault
