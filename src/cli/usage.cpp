// SPDX-License-Identifier: Apache-2.0
#include "src/cli/usage.hpp"

#include <algorithm>
#include <sstream>

#include <fmt/format.h>

namespace p11vault::cli {
namespace {

// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
// two neighbours ("lable" for "label") each count as one edit.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[a.size()][b.size()];
}

// "--out" of "--out: 1 required FILE.p12 missing"; the text up to `separator`.
std::string before(const std::string& text, std::string_view separator) {
    const auto at = text.find(separator);
    return at == std::string::npos ? text : text.substr(0, at);
}

std::string after(const std::string& text, std::string_view separator) {
    const auto at = text.find(separator);
    return at == std::string::npos ? std::string() : text.substr(at + separator.size());
}

// The value placeholder an option shows in --help ("FILE.p12", "N"), or "VALUE".
std::string placeholder_of(const CLI::App& command, const std::string& name) {
    const CLI::Option* option = command.get_option_no_throw(name);
    if (option == nullptr) return "VALUE";
    if (!option->get_option_text().empty()) return option->get_option_text();
    if (!option->get_type_name().empty()) return option->get_type_name();
    return "VALUE";
}

// What a placeholder means, for "--slot takes a whole number".
std::string kind_of(const std::string& placeholder) {
    if (placeholder == "UINT" || placeholder == "INT" || placeholder == "N") return "a whole number";
    if (placeholder == "FLOAT" || placeholder == "SECONDS") return "a number";
    if (placeholder == "BYTES") return "a number of bytes";
    return placeholder;
}

// 'value' for an ordinary option; "(value not shown)" for a secret one.
std::string shown_value(const std::string& option, const std::string& value) {
    if (is_secret_option(option)) return "its value (not shown)";
    return "'" + value + "'";
}

// "86400" of "86400.000000".
std::string trimmed_number(std::string number) {
    if (number.find('.') == std::string::npos) return number;
    while (!number.empty() && number.back() == '0') number.pop_back();
    if (!number.empty() && number.back() == '.') number.pop_back();
    return number;
}

// Validator texts of CLI11 2.1 without their CLI11 phrasing ("Value 0 not in range 0.0
// to 86400.0", "Number less or equal to 0: (0)", "foo not in {modern,legacy}").
std::string explain_validation(const CLI::App& command, const std::string& option, const std::string& detail) {
    if (is_secret_option(option)) return option + ": the value was not accepted (not shown)";
    if (detail.find(" not in {") != std::string::npos) {
        std::string choices = after(detail, " not in {");
        choices = before(choices, "}");
        std::replace(choices.begin(), choices.end(), ',', ' ');
        return fmt::format("{} takes one of: {}; not '{}'", option, choices, before(detail, " not in {"));
    }
    if (detail.rfind("Number less or equal to 0", 0) == 0)
        return fmt::format("{} takes a number greater than 0; not {}", option,
                           before(after(detail, "("), ")"));
    if (detail.rfind("Value ", 0) == 0 && detail.find(" not in range ") != std::string::npos) {
        const std::string value = before(after(detail, "Value "), " not in range");
        const std::string range = after(detail, " not in range ");
        const std::string low = trimmed_number(before(range, " to "));
        const std::string high = trimmed_number(after(range, " to "));
        if (high.size() > 20)  // CLI::PositiveNumber: no upper bound to speak of
            return fmt::format("{} takes a number greater than {}; not {}", option, low, value);
        return fmt::format("{} takes a number from {} to {}; not {}", option, low, high, value);
    }
    (void)command;
    return option + ": " + detail;
}

}  // namespace

std::optional<std::string> nearest(std::string_view typed, const std::vector<std::string>& candidates) {
    std::optional<std::string> best;
    std::size_t best_distance = std::max<std::size_t>(1, typed.size() / 3) + 1;
    bool tie = false;
    for (const auto& candidate : candidates) {
        const std::size_t distance = edit_distance(typed, candidate);
        if (distance < best_distance) {
            best = candidate;
            best_distance = distance;
            tie = false;
        } else if (distance == best_distance && best) {
            tie = true;
        }
    }
    if (best && !tie) return best;
    // A beginning of exactly one candidate: "--token-lab", "rec".
    std::optional<std::string> prefixed;
    const std::size_t dashes = typed.find_first_not_of('-') == std::string_view::npos ? 0 : typed.find_first_not_of('-');
    if (typed.size() < dashes + 3) return std::nullopt;
    for (const auto& candidate : candidates) {
        if (candidate.size() > typed.size() && candidate.compare(0, typed.size(), typed) == 0) {
            if (prefixed) return std::nullopt;
            prefixed = candidate;
        }
    }
    return prefixed;
}

std::string did_you_mean(std::string_view typed, const std::vector<std::string>& candidates) {
    const auto suggestion = nearest(typed, candidates);
    return suggestion ? " (did you mean '" + *suggestion + "'?)" : std::string();
}

std::vector<std::string> option_names(const CLI::App& command) {
    std::vector<std::string> names;
    for (const CLI::Option* option : command.get_options()) {
        for (const auto& name : option->get_lnames()) names.push_back("--" + name);
    }
    return names;
}

bool is_secret_option(std::string_view name) {
    return name.find("pin") != std::string_view::npos || name.find("password") != std::string_view::npos ||
           name.find("secret") != std::string_view::npos || name.find("passphrase") != std::string_view::npos;
}

std::string explain_parse_error(const CLI::App& command, const CLI::ParseError& error) {
    const std::string what = error.what();
    if (dynamic_cast<const CLI::RequiredError*>(&error) != nullptr && what.ends_with(" is required")) {
        const std::string option = before(what, " is required");
        return fmt::format("{} needs {} {}", command.get_name(), option, placeholder_of(command, option));
    }
    if (dynamic_cast<const CLI::ArgumentMismatch*>(&error) != nullptr) {
        const std::string option = before(what, ":");
        if (what.find(" required but received ") != std::string::npos && what.find("At Most") != std::string::npos)
            return fmt::format("{} is given more than once; give it once", option);
        if (what.ends_with(" missing"))
            return fmt::format("{} needs a value: {} {}", option, option, placeholder_of(command, option));
    }
    if (dynamic_cast<const CLI::ConversionError*>(&error) != nullptr && what.rfind("Could not convert: ", 0) == 0) {
        const std::string rest = after(what, "Could not convert: ");
        const std::string option = before(rest, " = ");
        return fmt::format("{} takes {}; {} is not one", option, kind_of(placeholder_of(command, option)),
                           shown_value(option, after(rest, " = ")));
    }
    if (dynamic_cast<const CLI::ValidationError*>(&error) != nullptr && what.find(": ") != std::string::npos)
        return explain_validation(command, before(what, ": "), after(what, ": "));
    if (dynamic_cast<const CLI::ExcludesError*>(&error) != nullptr)
        return fmt::format("{} and {} cannot be given together", before(what, " excludes "), after(what, " excludes "));
    if (dynamic_cast<const CLI::RequiresError*>(&error) != nullptr)
        return fmt::format("{} needs {} as well", before(what, " requires "), after(what, " requires "));
    // Anything else CLI11 says names options, never values (values go through the
    // branches above); keep its words, first letter small as in the other messages.
    std::string text = what;
    if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z' && (text.size() < 2 || text[1] < 'A' || text[1] > 'Z'))
        text[0] = static_cast<char>(text[0] - 'A' + 'a');
    return text;
}

std::string wrap_help(const std::string& text, std::size_t description_column, std::size_t width) {
    std::istringstream in(text);
    std::string out;
    std::string line;
    while (std::getline(in, line)) {
        const bool is_entry = line.rfind("  ", 0) == 0 && line.size() > description_column &&
                              line[description_column - 1] == ' ' && line[description_column] != ' ';
        const std::size_t own_indent = std::min(line.find_first_not_of(' '), line.size());
        const std::size_t indent = is_entry ? description_column : own_indent;
        std::size_t first_break_allowed = is_entry ? description_column : own_indent;
        while (line.size() > width) {
            std::size_t cut = line.rfind(' ', width);
            if (cut == std::string::npos || cut <= first_break_allowed) cut = line.find(' ', width);
            if (cut == std::string::npos) break;
            out += line.substr(0, cut);
            out += '\n';
            const std::size_t next = line.find_first_not_of(' ', cut);
            if (next == std::string::npos) {
                line.clear();
                break;
            }
            line = std::string(indent, ' ') + line.substr(next);
            first_break_allowed = indent;
        }
        out += line;
        out += '\n';
    }
    if (!text.empty() && text.back() != '\n' && !out.empty()) out.pop_back();
    return out;
}

namespace {
constexpr std::size_t kDescriptionColumn = 30;
constexpr std::size_t kSubcommandColumn = 16;
}

HelpFormatter::HelpFormatter() { column_width(kDescriptionColumn); }

std::string HelpFormatter::make_help(const CLI::App* app, std::string name, CLI::AppFormatMode mode) const {
    return wrap_help(CLI::Formatter::make_help(app, std::move(name), mode), kDescriptionColumn);
}

std::string HelpFormatter::make_subcommand(const CLI::App* sub) const {
    // A narrower column than the options': each subcommand's summary stays on its line
    // (tests/packaging reads the names from the first word of each line).
    std::stringstream out;
    CLI::detail::format_help(out, sub->get_display_name(true), sub->get_description(), kSubcommandColumn);
    return out.str();
}

std::string HelpFormatter::make_usage(const CLI::App* app, std::string name) const {
    // "Usage: p11vault backup [OPTIONS]": the command line as typed, not CLI11's "backup".
    if (app->get_parent() != nullptr && name == app->get_name()) name = app->get_parent()->get_name() + " " + name;
    return CLI::Formatter::make_usage(app, std::move(name));
}

std::string examples_for(std::string_view command) {
    // Each line at most 80 columns: wrap_help would break a command line in the middle.
    if (command.empty())
        return "Examples:\n"
               "  p11vault list --module softhsm2\n"
               "  p11vault backup --token-label ca --pin env:PIN --all --out ca.p12\n"
               "  p11vault verify --in ca.p12 --drill\n"
               "  p11vault help backup";
    if (command == "list")
        return "Examples:\n"
               "  p11vault list --module softhsm2\n"
               "  p11vault list --token-label ca --pin env:PIN --json";
    if (command == "backup")
        return "Examples:\n"
               "  p11vault backup --token-label ca --pin env:PIN --all --out ca.p12\n"
               "  p11vault backup --token 'pkcs11:token=ca;id=%01' --pin env:PIN \\\n"
               "      --password file:pw.txt --out key01.p12";
    if (command == "restore")
        return "Examples:\n"
               "  p11vault restore --token-label new --pin env:PIN --in ca.p12 --dry-run\n"
               "  p11vault restore --token-label new --pin env:PIN --in ca.p12 \\\n"
               "      --on-conflict skip";
    if (command == "verify")
        return "Examples:\n"
               "  p11vault verify --in ca.p12 --drill\n"
               "  p11vault verify --in ca.p12 --token-label ca --pin env:PIN --json";
    if (command == "migrate")
        return "Examples:\n"
               "  p11vault migrate --from-token-label old --from-pin env:OLD \\\n"
               "      --to-token-label new --to-pin env:NEW --all --dry-run";
    if (command == "split")
        return "Examples:\n"
               "  p11vault split --generate --threshold 3 --shares 5 --out-dir shares \\\n"
               "      --sheet pdf\n"
               "  p11vault split --password file:pw.txt --threshold 2 --shares 3 \\\n"
               "      --out-dir shares --qr";
    if (command == "combine")
        return "Examples:\n"
               "  p11vault combine --share shares/share-1-of-5.txt \\\n"
               "      --share shares/share-4-of-5.txt --share shares/share-5-of-5.txt \\\n"
               "      --out pw.txt";
    if (command == "escrow-share")
        return "Examples:\n"
               "  p11vault escrow-share --in ca.p7m \\\n"
               "      --recipient-key 'pkcs11:token=KRA-1;object=officer1' \\\n"
               "      --recipient-pin env:KRA_PIN --out officer1.share";
    if (command == "record-check")
        return "Examples:\n"
               "  p11vault record-check ceremony.log";
    return {};
}

}  // namespace p11vault::cli
