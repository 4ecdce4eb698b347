// SPDX-License-Identifier: Apache-2.0
// Selecting and opening the token a subcommand works on (cli.md, "Selecting a token").
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "p11vault/events.hpp"
#include "p11vault/token.hpp"
#include "pkcs11/module.hpp"
#include "pkcs11/session.hpp"
#include "pkcs11/uri.hpp"

namespace p11vault {

struct TokenOptions {
    std::optional<std::string> module;        // --module, else $P11VAULT_MODULE, else p11-kit's proxy
    std::optional<std::string> module_init;   // --module-init, else $P11VAULT_MODULE_INIT
    std::optional<std::string> token_uri;     // --token pkcs11:...
    std::optional<std::string> token_label;   // --token-label
    std::optional<unsigned long> slot;        // --slot
    // --pin SRC: only for the legacy open_token without a SecretProvider (officer tokens of
    // src/escrow) and for pin_source_for; with a SecretProvider the provider reads it.
    std::optional<std::string> pin_source;
    // The options' names in messages: "" for --module, --token, --pin; "from-" and "to-"
    // for migrate's --from-module etc.
    std::string option_prefix;
    // Added to the PIN prompt after the token's name, e.g. " (recovery officer, certificate
    // CN=Officer 1)", so that whoever types the PIN knows which key it unlocks.
    std::string pin_prompt_detail;
};

// The module path the options resolve to: --module, else the module-path or module-name
// of the --token URI, else $P11VAULT_MODULE, else p11-kit's proxy. --module and
// $P11VAULT_MODULE may be a path or the name of a module registered with p11-kit
// ("softhsm2"), as may module-name. Error(usage) when --module and the URI name
// different modules; Error(token) saying how to choose one when there is none. Checks
// the options first (check_token_options).
std::string resolve_module_path(const TokenOptions& options);

// The usage errors of the token options, before anything is loaded: a bad --token URI,
// and a PIN given both by --pin and by the URI's pin-source.
void check_token_options(const TokenOptions& options);

// The PIN source: --pin, else the URI's pin-source as `file:PATH` (RFC 7512: the
// location of a file holding the PIN; p11vault takes file:PATH, file:///PATH and an
// absolute path), else none (prompt).
std::optional<std::string> pin_source_for(const TokenOptions& options);
// The SoftHSM2 module if installed (Debian paths), else empty.
std::string default_softhsm_module();

struct OpenToken {
    std::shared_ptr<pkcs11::Module> module;
    CK_SLOT_ID slot = 0;
    pkcs11::TokenInfo info;
    pkcs11::TokenUri uri;                     // object filters of --token (id=, object=)
    std::unique_ptr<pkcs11::Session> session;
};

// The options of a public TokenSpec (no PIN source: the SecretProvider reads the PIN).
TokenOptions token_options_of(const TokenSpec& spec);
// What the public API says of a token.
TokenDescription describe_token(CK_SLOT_ID slot, const pkcs11::TokenInfo& info);

// Loads the module, finds exactly one token matching the options (Error(token) naming
// what was searched for and what exists when none or several match), opens a session
// and, when `login` and the token requires it, logs in with the PIN `secrets` provides
// (SecretPurpose::token_pin, subject `token "LABEL"` and options.pin_prompt_detail),
// after refusing a locked PIN. Warns through `events` when the token reports a low PIN
// count or a final try, after the PIN was provided and before it is used. Never retries
// a PIN. Tells `events` the token it opened.
OpenToken open_token(const TokenOptions& options, bool read_write, bool login, SecretProvider& secrets,
                     Events& events);
// Without a provider: the PIN from options.pin_source (read_secret, a prompt when absent),
// warnings on stderr. For src/escrow's officer tokens until they take a SecretProvider.
OpenToken open_token(const TokenOptions& options, bool read_write, bool login);

// Logs in to a token opened with `login` false, as open_token would have (nothing when the
// token requires no login).
void log_in(OpenToken& token, const TokenOptions& options, SecretProvider& secrets, Events& events);
void log_in(OpenToken& token, const TokenOptions& options);

// Loads the module only (for `list` without a selected token).
std::shared_ptr<pkcs11::Module> load_module(const TokenOptions& options);

// open_token on a module already loaded with load_module (the module's path and init
// options are not looked at again).
OpenToken open_token(std::shared_ptr<pkcs11::Module> module, const TokenOptions& options, bool read_write,
                     bool login, SecretProvider& secrets, Events& events);

// Every slot of the module with a token present, in slot order, with its token info.
struct PresentToken {
    CK_SLOT_ID slot = 0;
    pkcs11::TokenInfo info;
};
std::vector<PresentToken> present_tokens(const pkcs11::Module& module);

// True when --token, --token-label or --slot is given.
bool token_selection_given(const TokenOptions& options);

}  // namespace p11vault
