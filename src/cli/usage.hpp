// SPDX-License-Identifier: Apache-2.0
// Usage errors and help text for people at a terminal: the nearest subcommand or option
// for a typo, CLI11's parse errors rewritten into the one `p11vault: error:` sentence of
// the contract (never quoting the value of a secret option), help wrapped at 80 columns
// with examples at the end.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace p11vault::cli {

// The candidate closest to `typed` when it is close enough to be a typo (edit distance,
// a swap of two neighbours counting as one edit, at most a third of the word), or the one
// candidate `typed` is a prefix of; nothing otherwise or when two are equally close.
std::optional<std::string> nearest(std::string_view typed, const std::vector<std::string>& candidates);

// " (did you mean 'backup'?)" or "".
std::string did_you_mean(std::string_view typed, const std::vector<std::string>& candidates);

// Every long option of `command` with its dashes ("--token-label"), and --help.
std::vector<std::string> option_names(const CLI::App& command);

// True for an option whose value may be a secret's source or a secret itself (--pin,
// --password, --from-pin, ...): error messages name such an option, never its value.
bool is_secret_option(std::string_view name);

// The sentence for a CLI11 parse error of `command` (the chosen subcommand, or the
// top-level app), without the "p11vault: error: " prefix and without the "(see ...
// --help)" hint.
std::string explain_parse_error(const CLI::App& command, const CLI::ParseError& error);

// Wraps every line longer than `width`: lines that start with two spaces (options,
// subcommands) continue at `description_column`, other lines at their own indentation.
std::string wrap_help(const std::string& text, std::size_t description_column, std::size_t width = 80);

// CLI11's formatter, with each help text wrapped at 80 columns.
class HelpFormatter : public CLI::Formatter {
public:
    HelpFormatter();
    std::string make_help(const CLI::App* app, std::string name, CLI::AppFormatMode mode) const override;
    std::string make_usage(const CLI::App* app, std::string name) const override;
    std::string make_subcommand(const CLI::App* sub) const override;
};

// The "Examples:" footer of `p11vault --help` (command empty) and of each subcommand.
std::string examples_for(std::string_view command);

}  // namespace p11vault::cli
