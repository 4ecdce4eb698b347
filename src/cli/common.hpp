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

#include "pkcs11/module.hpp"
#include "src/inventory.hpp"
#include "src/token.hpp"

namespace p11vault::cli {

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

// JSON pieces several commands report (list, backup records, verify).
nlohmann::ordered_json module_json(const pkcs11::Module& module);
nlohmann::ordered_json token_json(CK_SLOT_ID slot, const pkcs11::TokenInfo& token);
// "private-key", "public-key", "secret-key", "certificate", "data", ...
std::string object_class_text(CK_OBJECT_CLASS object_class);
// One-line RFC 2253 form of an X.509 name ("CN=x,O=y").
std::string name_text(const X509_NAME* name);
// "RSA-2048", "EC-P256", "Ed25519", "AES-256"; empty when unknown.
std::string algorithm_text(const std::optional<keys::KeyDescription>& description);

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
