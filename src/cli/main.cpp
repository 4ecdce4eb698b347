// SPDX-License-Identifier: Apache-2.0
// p11vault: the command line. One file per subcommand (commands.hpp); this file holds
// the table of subcommands, process hardening, and the one place where failures become
// the exit codes and the single `p11vault: error:` line of the contract
// (docs/cli.md).
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "p11vault/error.hpp"
#include "p11vault/version.hpp"
#include "pkcs11/error.hpp"
#include "src/cli/commands.hpp"

namespace {

using namespace p11vault;

struct Command {
    const char* name;
    const char* summary;
    void (*add)(CLI::App& command);
};

// Subcommands in the order `p11vault --help` shows them.
constexpr Command commands[] = {
    {"list", "show the tokens of a module, and the keys and certificates of one token", cli::add_list_command},
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

// The contract's one error line: multi-line texts (from libraries) are folded into it,
// and other control characters (a token label may hold an escape sequence) shown as '?'.
int report_error(std::string_view message, ExitCode code) {
    std::string line(message);
    for (char& c : line) {
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
    std::fprintf(stderr, "p11vault: error: %s\n", line.c_str());
    return static_cast<int>(code);
}

// CLI11 names stray arguments with their values ("The following arguments were not
// expected: --pasword pass:SECRET"): a misspelled secret option would print its secret.
// Here an option is named up to any '=', and other arguments are only counted.
std::string describe_unexpected(const std::vector<std::string>& arguments) {
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
    if (values != 0) {
        text += fmt::format("{}{} value{} (not shown)", options.empty() ? "s: " : " and ", values,
                            values == 1 ? "" : "s");
    }
    return text;
}

bool debug_requested_by_environment() {
    const char* value = std::getenv("P11VAULT_DEBUG");
    return value != nullptr && std::string_view(value) == "1";
}

}  // namespace

int main(int argc, char** argv) {
    harden_process();
    if (debug_requested_by_environment()) pkcs11::set_debug_logging(true);

    CLI::App app{"Back up private keys from PKCS#11 tokens into PKCS#12 files, and restore them.", "p11vault"};
    app.set_version_flag("--version", version_text());
    app.add_flag_callback(
        "--verbose", [] { pkcs11::set_debug_logging(true); },
        "log every PKCS#11 call and its result (never argument values) to stderr; also P11VAULT_DEBUG=1");
    app.require_subcommand(1);
    app.fallthrough();  // `p11vault list --verbose` works as well as `p11vault --verbose list`
    for (const Command& command : commands) {
        CLI::App* subcommand = app.add_subcommand(command.name, command.summary);
        command.add(*subcommand);
    }

    try {
        app.parse(argc, argv);
        return static_cast<int>(ExitCode::ok);
    } catch (const CLI::Success& request) {  // --help, --version
        return app.exit(request, std::cout, std::cerr);
    } catch (const CLI::ParseError& error) {
        if (app.get_subcommands().empty() && dynamic_cast<const CLI::RequiredError*>(&error) != nullptr) {
            const auto unexpected = app.remaining();
            if (!unexpected.empty()) {
                const bool is_option = unexpected.front().rfind('-', 0) == 0;
                return report_error(fmt::format("unknown {} '{}' (see p11vault --help)",
                                                is_option ? "option" : "subcommand", unexpected.front()),
                                    ExitCode::usage);
            }
            std::fputs(app.help().c_str(), stderr);
            return report_error("give a subcommand (see the list above)", ExitCode::usage);
        }
        const auto chosen = app.get_subcommands();
        const std::string help = chosen.empty() ? "p11vault --help" : "p11vault " + chosen.front()->get_name() + " --help";
        if (dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr)
            return report_error(describe_unexpected(app.remaining(true)) + " (see " + help + ")",
                                ExitCode::usage);
        return report_error(std::string(error.what()) + " (see " + help + ")", ExitCode::usage);
    } catch (const Error& error) {
        return report_error(error.what(), error.code());
    } catch (const std::exception& error) {
        return report_error(error.what(), ExitCode::failure);
    }
}
