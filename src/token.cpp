// SPDX-License-Identifier: Apache-2.0
// Selecting and opening a token (docs/cli.md, "Selecting a token").
#include "src/token.hpp"

#include <unistd.h>

#include <strings.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "p11vault/error.hpp"
#include "p11vault/secret_source.hpp"
#include "pkcs11/error.hpp"
#include "pkcs11/registry.hpp"
#include "src/new_secret_policy.hpp"

namespace p11vault {
namespace {

// Debian's SoftHSM2 paths, in the order the package installs them.
constexpr const char* softhsm_module_paths[] = {
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
};

std::optional<std::string> non_empty_environment(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') return std::nullopt;
    return std::string(value);
}

std::string option_name(const TokenOptions& options, const char* name) {
    return "--" + options.option_prefix + name;
}

// The module of `path_or_name` as registered with p11-kit, by name (case-insensitive, as
// RFC 7512 compares module-name).
std::string registered_module_path(const std::string& name) {
    const auto registered = pkcs11::registered_modules();
    for (const auto& module : registered) {
        if (module.name == name) return module.path;
    }
    for (const auto& module : registered) {
        if (::strcasecmp(module.name.c_str(), name.c_str()) == 0) return module.path;
    }
    std::vector<std::string> names;
    for (const auto& module : registered) names.push_back(module.name);
    const std::string listed =
        names.empty() ? "none is registered" : fmt::format("registered: {}", fmt::join(names, ", "));
    throw Error(ErrorKind::token, fmt::format("no PKCS#11 module named \"{}\" is registered with p11-kit ({}): give "
                                             "the module's path, or a name `p11-kit list-modules` shows",
                                             name, listed));
}

// --module, $P11VAULT_MODULE: a path or a p11-kit module name.
std::string module_path_for(const std::string& path_or_name) {
    // A path, or a library file name for the loader's own search ("libsofthsm2.so").
    if (path_or_name.find('/') != std::string::npos || path_or_name.find(".so") != std::string::npos)
        return path_or_name;
    return registered_module_path(path_or_name);
}

// Whether two module paths name one library (a symlink and its target, say).
bool same_library(const std::string& a, const std::string& b) {
    if (a == b) return true;
    std::error_code error;
    const bool equivalent = std::filesystem::equivalent(a, b, error);
    return !error && equivalent;
}

// RFC 7512's module-name is the library's name without "lib" and suffix ("softhsm2" for
// libsofthsm2.so); p11-kit's registry uses the same names.
bool file_is_named(const std::string& path, const std::string& name) {
    const std::string file = std::filesystem::path(path).filename().string();
    for (const std::string& candidate : {"lib" + name + ".so", name + ".so", name}) {
        if (::strcasecmp(file.c_str(), candidate.c_str()) == 0) return true;
    }
    return false;
}

// The module the URI's query names (module-path, module-name), or none.
std::optional<std::string> uri_module_path(const pkcs11::TokenUri& uri, const TokenOptions& options) {
    const std::string token = option_name(options, "token");
    if (uri.module_name && uri.module_name->find('/') != std::string::npos) {
        throw Error(ErrorKind::usage, fmt::format("the module-name of {} is a name, not a path (\"{}\"): give a path "
                                                 "as module-path",
                                                 token, *uri.module_name));
    }
    if (!uri.module_path) {
        if (uri.module_name) return registered_module_path(*uri.module_name);
        return std::nullopt;
    }
    const std::string& path = *uri.module_path;
    if (path.empty() || path.front() != '/')
        throw Error(ErrorKind::usage, fmt::format("the module-path of {} must be an absolute path", token));
    std::error_code error;
    if (std::filesystem::is_directory(path, error)) {
        // RFC 7512: a directory of modules, in which module-name names one.
        if (!uri.module_name) {
            throw Error(ErrorKind::usage, fmt::format("the module-path of {} is a directory ({}): add module-name= or "
                                                     "give the library's path",
                                                     token, path));
        }
        std::vector<std::string> tried;
        for (const std::string& file : {"lib" + *uri.module_name + ".so", *uri.module_name + ".so"}) {
            const std::string candidate = (std::filesystem::path(path) / file).string();
            if (std::filesystem::is_regular_file(candidate, error)) return candidate;
            tried.push_back(candidate);
        }
        throw Error(ErrorKind::token, fmt::format("no PKCS#11 module {} in {} (the module-path and module-name of {}; "
                                                 "looked for {})",
                                                 *uri.module_name, path, token, fmt::join(tried, ", ")));
    }
    if (uri.module_name && !file_is_named(path, *uri.module_name)) {
        // A name that is neither the file's nor, through p11-kit, the same library.
        bool registered_as_that = false;
        try {
            registered_as_that = same_library(registered_module_path(*uri.module_name), path);
        } catch (const Error&) {
        }
        if (!registered_as_that) {
            throw Error(ErrorKind::usage, fmt::format("the module-path ({}) and module-name ({}) of {} name different "
                                                     "modules: give one of them",
                                                     path, *uri.module_name, token));
        }
    }
    return path;
}

// Where the module comes from, for messages ("check --module").
struct ModuleChoice {
    std::string path;
    std::string origin;
};

ModuleChoice choose_module(const TokenOptions& options) {
    check_token_options(options);
    std::optional<std::string> from_uri;
    if (options.token_uri) from_uri = uri_module_path(pkcs11::parse_token_uri(*options.token_uri), options);
    const std::string module_option = option_name(options, "module");
    if (options.module) {
        if (options.module->empty())
            throw Error(ErrorKind::usage, module_option + " needs the path of a PKCS#11 library or a p11-kit module name");
        std::string path = module_path_for(*options.module);
        if (from_uri && !same_library(path, *from_uri)) {
            throw Error(ErrorKind::usage, fmt::format("{} {} and the module of {} ({}) disagree: give one of them",
                                                     module_option, *options.module, option_name(options, "token"),
                                                     *from_uri));
        }
        return {path, module_option};
    }
    // The URI is more specific than the environment's default.
    if (from_uri) return {*from_uri, "the module-path or module-name of " + option_name(options, "token")};
    if (auto from_environment = non_empty_environment("P11VAULT_MODULE"))
        return {module_path_for(*from_environment), "$P11VAULT_MODULE"};
    const std::string proxy = pkcs11::p11kit_proxy_path();
    if (::access(proxy.c_str(), R_OK) == 0) return {proxy, module_option};
    throw Error(ErrorKind::token, fmt::format("no PKCS#11 module: the default, p11-kit's proxy {}, is not installed "
                                             "(apt-get install p11-kit-modules); or give --module PATH|NAME or set "
                                             "P11VAULT_MODULE",
                                             proxy));
}

// RFC 7512's pin-source as a p11vault secret source: file:PATH (RFC 8089's file:///PATH
// and file://localhost/PATH too) or an absolute path. Nothing else: the value is never
// named in the message (it may be a PIN typed in the wrong place).
std::string pin_file_source(const std::string& pin_source, const TokenOptions& options) {
    std::string path;
    if (pin_source.rfind("file://", 0) == 0) {
        std::string rest = pin_source.substr(7);
        if (rest.rfind("localhost/", 0) == 0) rest.erase(0, 9);
        if (!rest.empty() && rest.front() == '/') path = rest;
    } else if (pin_source.rfind("file:", 0) == 0) {
        path = pin_source.substr(5);
    } else if (!pin_source.empty() && pin_source.front() == '/') {
        path = pin_source;
    }
    if (path.empty()) {
        throw Error(ErrorKind::usage, fmt::format("the pin-source of {} must name a file: file:PATH or an absolute "
                                                 "path (p11vault reads no other PIN source from a URI)",
                                                 option_name(options, "token")));
    }
    return "file:" + path;
}

std::string describe_tokens(const std::vector<PresentToken>& tokens) {
    if (tokens.empty()) return "the module has no token";
    std::string text = "tokens present: ";
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        if (i != 0) text += ", ";
        const auto& token = tokens[i];
        text += token.info.token_initialized() ? fmt::format("\"{}\" (slot {})", token.info.label, token.slot)
                                               : fmt::format("uninitialized (slot {})", token.slot);
    }
    return text;
}

// What the options ask for, as the user wrote it, for messages.
std::string describe_selection(const TokenOptions& options) {
    std::vector<std::string> parts;
    if (options.token_uri) parts.push_back("--token " + *options.token_uri);
    if (options.token_label) parts.push_back("--token-label \"" + *options.token_label + "\"");
    if (options.slot) parts.push_back(fmt::format("--slot {}", *options.slot));
    std::string text;
    for (const auto& part : parts) text += (text.empty() ? "" : " ") + part;
    return text;
}

bool matches(const PresentToken& token, const TokenOptions& options, const pkcs11::TokenUri& uri) {
    if (options.slot && token.slot != *options.slot) return false;
    if (uri.slot_id && token.slot != *uri.slot_id) return false;
    // Labels, serials etc. of an uninitialized token mean nothing; only --slot reaches it.
    if (!token.info.token_initialized() && (options.token_label || options.token_uri)) return false;
    if (options.token_label && token.info.label != *options.token_label) return false;
    if (options.token_uri && !uri.matches(token.info)) return false;
    return true;
}

PresentToken select_token(const pkcs11::Module& module, const TokenOptions& options,
                          const pkcs11::TokenUri& uri) {
    const auto tokens = present_tokens(module);
    if (!token_selection_given(options)) {
        // Uninitialized tokens (SoftHSM always offers one free slot) cannot be meant.
        std::vector<PresentToken> usable;
        for (const auto& token : tokens) {
            if (token.info.token_initialized()) usable.push_back(token);
        }
        if (usable.size() == 1) return usable.front();
        if (usable.empty()) {
            throw Error(ErrorKind::token, fmt::format("no initialized token in module {}: initialize one "
                                                     "(e.g. softhsm2-util --init-token) or choose another --module",
                                                     module.path()));
        }
        throw Error(ErrorKind::token, fmt::format("module {} has {} tokens ({}): choose one with --token-label "
                                                 "or --slot",
                                                 module.path(), usable.size(), describe_tokens(usable)));
    }

    std::vector<PresentToken> found;
    for (const auto& token : tokens) {
        if (matches(token, options, uri)) found.push_back(token);
    }
    if (found.empty()) {
        throw Error(ErrorKind::token, fmt::format("no token matches {} in module {} ({}): check the selection",
                                                 describe_selection(options), module.path(),
                                                 describe_tokens(tokens)));
    }
    if (found.size() > 1) {
        throw Error(ErrorKind::token, fmt::format("{} tokens match {} ({}): choose one with --slot", found.size(),
                                                 describe_selection(options), describe_tokens(found)));
    }
    if (!found.front().info.token_initialized()) {
        throw Error(ErrorKind::token, fmt::format("the token in slot {} is not initialized: initialize it "
                                                 "(e.g. softhsm2-util --init-token) or choose another slot",
                                                 found.front().slot));
    }
    return found.front();
}

// What to do about a locked user PIN, whether the flags said so before C_Login or the
// token answered CKR_PIN_LOCKED.
std::string locked_pin_advice(const pkcs11::TokenInfo& info) {
    return fmt::format("the user PIN of token \"{}\" is locked: unlock it with the SO PIN (C_InitPIN, e.g. the "
                       "token vendor's tool) and try again",
                       info.label);
}

void refuse_locked_pin(const pkcs11::TokenInfo& info) {
    if (info.pin_locked()) throw Error(ErrorKind::token, locked_pin_advice(info));
}

void warn_about_pin_tries(const pkcs11::TokenInfo& info) {
    if (info.pin_final_try()) {
        std::fprintf(stderr,
                     "p11vault: warning: token \"%s\": one PIN try left; a wrong PIN now locks the user PIN\n",
                     info.label.c_str());
    } else if (info.pin_count_low()) {
        std::fprintf(stderr, "p11vault: warning: token \"%s\": a wrong PIN was entered recently; few tries left\n",
                     info.label.c_str());
    }
}

// What a refused C_Login means for the operator, and what to do: the token's label, that
// p11vault tried once, and the PIN state the token reports now (re-read after the
// refusal: the flags change with it).
std::string login_refusal_hint(CK_RV rv, const pkcs11::TokenInfo& info, const pkcs11::TokenInfo& now) {
    switch (rv) {
        case CKR_PIN_INCORRECT: {
            const char* tries = now.pin_locked()       ? "; the user PIN is now locked: unlock it with the SO PIN"
                                : now.pin_final_try() ? "; the token says one try is left"
                                : now.pin_count_low() ? "; the token says few tries are left"
                                                      : "";
            return fmt::format("token \"{}\" refused the PIN; p11vault does not retry: check the --pin source "
                               "before trying again{}",
                               info.label, tries);
        }
        case CKR_PIN_LOCKED:
            return locked_pin_advice(info);
        case CKR_USER_PIN_NOT_INITIALIZED:
            return fmt::format("token \"{}\" has no user PIN yet: set one with the SO PIN (e.g. pkcs11-tool "
                               "--init-pin) and try again",
                               info.label);
        case CKR_PIN_LEN_RANGE:
            return fmt::format("token \"{}\" takes PINs of {} to {} characters", info.label, info.min_pin_len,
                               info.max_pin_len);
        default:
            return fmt::format("token \"{}\"", info.label);
    }
}

void log_in(const pkcs11::Module& module, CK_SLOT_ID slot, pkcs11::Session& session, const pkcs11::TokenInfo& info,
            const TokenOptions& options) {
    refuse_locked_pin(info);
    // The warning comes right before the PIN is used: before a prompt, or after a PIN
    // source was read (so a bad --pin option gives its error line alone).
    const std::optional<std::string> pin_source = pin_source_for(options);
    const bool prompting = !pin_source && isatty(STDIN_FILENO);
    if (prompting) warn_about_pin_tries(info);
    const std::string what = fmt::format("PIN of token \"{}\"{}", info.label, options.pin_prompt_detail);
    // Messages about a URI's pin-source name it as such (its file: rules are --pin's).
    const std::string source_name = options.pin_source || !pin_source
                                        ? option_name(options, "pin")
                                        : "the pin-source of " + option_name(options, "token") + ":";
    const SecretBytes pin = read_secret(pin_source, what, source_name, Prompt::once);
    check_pin(pin, what);
    if (!prompting) warn_about_pin_tries(info);
    try {
        session.login(pin);  // never retried: each wrong PIN brings the token closer to locking
    } catch (const pkcs11::Pkcs11Error& refused) {
        pkcs11::TokenInfo now = info;
        try {
            now = module.token_info(slot);
        } catch (const Error&) {  // the refusal is what to report; the flags only add to it
        }
        throw pkcs11::Pkcs11Error(refused.function(), refused.rv(), login_refusal_hint(refused.rv(), info, now));
    }
}

}  // namespace

std::string default_softhsm_module() {
    for (const char* path : softhsm_module_paths) {
        if (::access(path, R_OK) == 0) return path;
    }
    return {};
}

void check_token_options(const TokenOptions& options) {
    // A typo in the URI is a usage error, reported before anything is loaded.
    if (options.token_uri) (void)pin_source_for(options);
}

std::optional<std::string> pin_source_for(const TokenOptions& options) {
    if (!options.token_uri) return options.pin_source;
    const pkcs11::TokenUri uri = pkcs11::parse_token_uri(*options.token_uri);
    if (!uri.pin_source) return options.pin_source;
    if (options.pin_source) {
        throw Error(ErrorKind::usage, fmt::format("{} and the pin-source of {} both give the PIN: give one of them",
                                                 option_name(options, "pin"), option_name(options, "token")));
    }
    return pin_file_source(*uri.pin_source, options);
}

std::string resolve_module_path(const TokenOptions& options) { return choose_module(options).path; }

std::shared_ptr<pkcs11::Module> load_module(const TokenOptions& options) {
    const ModuleChoice module = choose_module(options);
    std::optional<std::string> init = options.module_init;
    if (!init) init = non_empty_environment("P11VAULT_MODULE_INIT");
    return pkcs11::Module::load(module.path, init, module.origin);
}

std::vector<PresentToken> present_tokens(const pkcs11::Module& module) {
    std::vector<PresentToken> tokens;
    for (CK_SLOT_ID slot : module.slots(true)) tokens.push_back({slot, module.token_info(slot)});
    return tokens;
}

bool token_selection_given(const TokenOptions& options) {
    return options.token_uri.has_value() || options.token_label.has_value() || options.slot.has_value();
}

OpenToken open_token(const TokenOptions& options, bool read_write, bool login) {
    check_token_options(options);
    return open_token(load_module(options), options, read_write, login);
}

OpenToken open_token(std::shared_ptr<pkcs11::Module> module, const TokenOptions& options, bool read_write,
                     bool login) {
    pkcs11::TokenUri uri;
    if (options.token_uri) uri = pkcs11::parse_token_uri(*options.token_uri);

    OpenToken token;
    token.module = std::move(module);
    const PresentToken chosen = select_token(*token.module, options, uri);
    token.slot = chosen.slot;
    token.info = chosen.info;
    token.uri = std::move(uri);
    token.session = std::make_unique<pkcs11::Session>(token.module, token.slot, read_write);

    // NSS softoken with an empty password has no CKF_LOGIN_REQUIRED: logging in would fail.
    if (login && token.info.login_required())
        log_in(*token.module, token.slot, *token.session, token.info, options);
    return token;
}

void log_in(OpenToken& token, const TokenOptions& options) {
    if (token.info.login_required()) log_in(*token.module, token.slot, *token.session, token.info, options);
}

}  // namespace p11vault
