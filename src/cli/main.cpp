// SPDX-License-Identifier: Apache-2.0
// p11vault: the command line. One file per subcommand (commands.hpp); this file holds
// the table of subcommands, process hardening, and the one place where failures become
// the exit codes and the single `p11vault: error:` line of the contract
// (docs/cli.md).
#include <sys/prctl.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "p11vault/debug.hpp"
#include "p11vault/error.hpp"
#include "p11vault/version.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/common.hpp"
#include "src/cli/exit_code.hpp"
#include "src/cli/usage.hpp"

namespace {

using namespace p11vault;

struct Command {
    const char* name;
    const char* summary;
    void (*add)(CLI::App& command);
};

// Subcommands in the order `p11vault --help` shows them.
constexpr Command commands[] = {
    {"list", "show a module's tokens, and one token's keys and certificates", cli::add_list_command},
    {"backup", "write private keys of a token into a PKCS#12 file", cli::add_backup_command},
    {"restore", "put the keys of a PKCS#12 file onto a token", cli::add_restore_command},
    {"verify", "check a PKCS#12 backup, and compare it with a token", cli::add_verify_command},
    {"migrate", "move keys from one token to another, in memory", cli::add_migrate_command},
    {"split", "split a backup password into M-of-N shares", cli::add_split_command},
    {"combine", "recover a password from K or more shares", cli::add_combine_command},
    {"escrow-share", "open one recovery officer's share of an M-of-N escrowed backup", cli::add_escrow_share_command},
    {"record-check", "verify the hash chain of a --record file", cli::add_record_check_command},
};

// Secrets pass through this process: no core file, no ptrace by other users' processes,
// no /proc/PID/mem reads by anyone but root.
void harden_process() {
    const rlimit no_core{0, 0};
    (void)setrlimit(RLIMIT_CORE, &no_core);
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

constexpr int usage_exit = static_cast<int>(cli::ExitCode::usage);

// The contract's one error line: multi-line texts (from libraries) are folded into it,
// and other control characters (a token label may hold an escape sequence) shown as '?'.
int report_error(std::string_view message, int exit_code) {
    std::string line(message);
    for (char& c : line) {
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
    std::fprintf(stderr, "p11vault: error: %s\n", line.c_str());
    return exit_code;
}

// CLI11 names stray arguments with their values ("The following arguments were not
// expected: --pasword pass:SECRET"): a misspelled secret option would print its secret.
// Here an option is named up to any '=', and other arguments are only counted.
std::string describe_unexpected(const std::vector<std::string>& arguments, const std::vector<std::string>& known) {
    std::vector<std::string> options;
    std::size_t values = 0;
    for (const auto& argument : arguments) {
        if (argument.size() > 1 && argument.front() == '-')
            options.push_back(argument.substr(0, argument.find('=')));
        else
            ++values;
    }
    std::string text = "unexpected argument";
    if (!options.empty()) text += fmt::format("{} {}", options.size() == 1 ? "" : "s", fmt::join(options, ", "));
    if (options.size() == 1) text += cli::did_you_mean(options.front(), known);
    if (values != 0) {
        text += fmt::format("{}{} value{} (not shown)", options.empty() ? "s: " : " and ", values,
                            values == 1 ? "" : "s");
    }
    return text;
}

// A word of the command line in a message: control characters shown as '?' (the error
// line is folded the same way; this keeps a suggestion readable after it).
std::string printable_word(const std::string& word) { return cli::printable(word); }

std::vector<std::string> top_level_options(const CLI::App& app) {
    std::vector<std::string> names = cli::option_names(app);
    for (const Command& command : commands) names.emplace_back(command.name);
    return names;
}

bool debug_requested_by_environment() {
    const char* value = std::getenv("P11VAULT_DEBUG");
    return value != nullptr && std::string_view(value) == "1";
}

// `p11vault help [SUBCOMMAND]`, and a first word that is no subcommand (`p11vault bakup`,
// `p11vault foo backup`): decided before CLI11 parses, which would otherwise run the
// subcommand it finds further on and complain about the stray word only afterwards.
// The top level has only flags (--verbose, --help, --version), so its first word that does
// not start with '-' is the subcommand. Returns an exit code when the command line is
// handled here.
std::optional<int> handle_first_word(CLI::App& app, const std::vector<std::string>& arguments) {
    std::vector<std::string> subcommands;
    for (const Command& command : commands) subcommands.emplace_back(command.name);
    auto is_subcommand = [&](const std::string& word) {
        return std::find(subcommands.begin(), subcommands.end(), word) != subcommands.end();
    };
    std::vector<std::string> words;
    for (const auto& argument : arguments) {
        if (argument == "--") break;
        if (!argument.starts_with('-')) words.push_back(argument);
        if (!words.empty() && words.front() != "help") break;
    }
    if (words.empty()) return std::nullopt;
    if (words.front() == "help") {
        if (words.size() == 1) {
            std::fputs(app.help().c_str(), stdout);
            return static_cast<int>(cli::ExitCode::ok);
        }
        if (words.size() > 2)
            return report_error("help takes one subcommand, e.g. p11vault help backup", usage_exit);
        if (!is_subcommand(words[1]))
            return report_error(fmt::format("unknown subcommand '{}'{} (see p11vault --help)", printable_word(words[1]),
                                            cli::did_you_mean(words[1], subcommands)),
                                usage_exit);
        std::fputs(app.get_subcommand(words[1])->help().c_str(), stdout);
        return static_cast<int>(cli::ExitCode::ok);
    }
    if (!is_subcommand(words.front()))
        return report_error(fmt::format("unknown subcommand '{}'{} (see p11vault --help)", printable_word(words.front()),
                                        cli::did_you_mean(words.front(), subcommands)),
                            usage_exit);
    return std::nullopt;
}

// With --json, a run that fails after its options were taken prints one p11vault.error/1
// document (docs/json.md): the exit code, the error line's text and, for a refusal of many
// keys, every key with its reason. A usage error (exit 2) has no document: the command
// line itself was wrong, and the error line says how.
void print_failure_document(const CLI::App& app, std::string_view message, int exit_code, ErrorKind kind,
                            const std::vector<ErrorItem>& items) {
    if (exit_code == usage_exit || cli::json_document_printed()) return;
    const auto chosen = app.get_subcommands();
    if (chosen.empty()) return;
    const CLI::Option* json = chosen.front()->get_option_no_throw("--json");
    if (json == nullptr || json->count() == 0) return;
    nlohmann::ordered_json document;
    document["format"] = cli::json_format("error");
    document["command"] = chosen.front()->get_name();
    document["exit_code"] = exit_code;
    document["kind"] = error_kind_name(kind);
    document["error"] = std::string(message);
    document["items"] = nlohmann::ordered_json::array();
    const auto text_or_null = [](const std::string& text) {
        return text.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(text);
    };
    for (const ErrorItem& item : items)
        document["items"].push_back({{"id", text_or_null(item.id)},
                                     {"label", text_or_null(item.label)},
                                     {"where", text_or_null(item.where)},
                                     {"reason", item.reason}});
    cli::print_json(document);
}

}  // namespace

int main(int argc, char** argv) {
    harden_process();
    if (debug_requested_by_environment()) set_debug_logging(true);

    CLI::App app{"Back up private keys from PKCS#11 tokens into PKCS#12 files, and restore them.", "p11vault"};
    app.formatter(std::make_shared<cli::HelpFormatter>());
    app.footer(cli::examples_for(""));
    app.set_version_flag("--version", version_text());
    app.add_flag_callback(
        "--verbose", [] { set_debug_logging(true); },
        "log every PKCS#11 call and its result (never argument values) to stderr; also P11VAULT_DEBUG=1");
    app.require_subcommand(1);
    app.fallthrough();  // `p11vault list --verbose` works as well as `p11vault --verbose list`
    for (const Command& command : commands) {
        CLI::App* subcommand = app.add_subcommand(command.name, command.summary);
        subcommand->footer(cli::examples_for(command.name));
        command.add(*subcommand);
    }

    const std::vector<std::string> arguments(argv + std::min(argc, 1), argv + argc);
    if (const auto handled = handle_first_word(app, arguments)) return *handled;

    try {
        app.parse(argc, argv);
        return static_cast<int>(cli::ExitCode::ok);
    } catch (const CLI::Success& request) {  // --help, --version
        return app.exit(request, std::cout, std::cerr);
    } catch (const CLI::ParseError& error) {
        if (app.get_subcommands().empty() && dynamic_cast<const CLI::RequiredError*>(&error) != nullptr) {
            const auto unexpected = app.remaining();
            if (!unexpected.empty()) {
                const std::string word = unexpected.front().substr(0, unexpected.front().find('='));
                return report_error(fmt::format("unknown option '{}'{} (see p11vault --help)", word,
                                                cli::did_you_mean(word, top_level_options(app))),
                                    usage_exit);
            }
            std::fputs(app.help().c_str(), stderr);
            return report_error("give a subcommand (see the list above)", usage_exit);
        }
        const auto chosen = app.get_subcommands();
        const CLI::App& command = chosen.empty() ? app : *chosen.front();
        const std::string help = chosen.empty() ? "p11vault --help" : "p11vault " + command.get_name() + " --help";
        if (dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr)
            return report_error(describe_unexpected(app.remaining(true), cli::option_names(command)) + " (see " +
                                    help + ")",
                                usage_exit);
        return report_error(cli::explain_parse_error(command, error) + " (see " + help + ")", usage_exit);
    } catch (const Error& error) {
        print_failure_document(app, error.what(), cli::exit_code_of(error), error.kind(), error.items());
        return report_error(error.what(), cli::exit_code_of(error));
    } catch (const std::exception& error) {
        const int failure_exit = static_cast<int>(cli::ExitCode::failure);
        print_failure_document(app, error.what(), failure_exit, ErrorKind::failure, {});
        return report_error(error.what(), failure_exit);
    }
}
