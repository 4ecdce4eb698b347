// SPDX-License-Identifier: Apache-2.0
// What every subcommand shares: the token options of the contract, JSON output, and
// plain-text tables.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p11vault/token.hpp"

namespace p11vault::cli {

// A token as the command line selects it: --module, --module-init, --token,
// --token-label, --slot and --pin (migrate: --from-* and --to-*). token_spec_of
// (api_bridge.hpp) makes the library's TokenSpec of it; the PIN source stays here, read
// by the run's SecretProvider.
struct TokenOptions {
    std::optional<std::string> module;       // --module PATH|NAME
    std::optional<std::string> module_init;  // --module-init STRING
    std::optional<std::string> token_uri;    // --token pkcs11:...
    std::optional<std::string> token_label;  // --token-label
    std::optional<unsigned long> slot;       // --slot
    std::optional<std::string> pin_source;   // --pin SRC
    // The options' names in messages: "" for --module, --token, --pin; "from-" and "to-"
    // for migrate's --from-module etc.
    std::string option_prefix;
};

// --module, --module-init, --token, --token-label, --slot and --pin
// (docs/cli.md, "Selecting a token"), stored into `options`, which must outlive
// the parse.
void add_token_options(CLI::App& command, TokenOptions& options);

// "p11vault.<command>/<major>": the `format` field of every JSON document. The major
// changes only when a field changes meaning or disappears; added fields keep it
// (docs/json.md).
std::string json_format(std::string_view command, int major = 1);

// Writes `document` as the one JSON document on stdout (pretty, newline-terminated;
// bytes that are not UTF-8, e.g. in a token label, become U+FFFD).
void print_json(const nlohmann::json& document);
void print_json(const nlohmann::ordered_json& document);
// Whether this run printed its --json document (a failure then prints no second one).
bool json_document_printed();

// The "token" object of the --json documents of list, backup, restore and migrate
// (docs/json.md).
nlohmann::ordered_json token_json(const TokenDescription& token);

// Makes text from a token safe to print on a terminal: control characters (a label could
// hold an escape sequence) become '?'.
std::string printable(std::string_view text);

// Left-aligned columns separated by two spaces, for human output.
class Table {
public:
    explicit Table(std::vector<std::string> headings);
    void add_row(std::vector<std::string> cells);
    bool empty() const { return rows_.empty(); }
    void print(std::FILE* out) const;

private:
    std::vector<std::string> headings_;
    std::vector<std::vector<std::string>> rows_;
};

}  // namespace p11vault::cli
