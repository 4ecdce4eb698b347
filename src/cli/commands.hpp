// SPDX-License-Identifier: Apache-2.0
// The subcommands of p11vault, one file each (BoringSSL's tool/ layout). main.cpp holds
// the table from name to add function; adding a subcommand is one file plus one row.
//
// An add function receives the subcommand's own CLI::App (name and summary already set
// from the table), adds the subcommand's options (add_token_options for token commands)
// and sets its callback. The callback runs after the whole command line parsed; it
// reports failure by throwing p11vault::Error, whose exit code main returns. Option
// storage must outlive the parse: keep it in a std::shared_ptr captured by the callback.
#pragma once

#include <CLI/CLI.hpp>

namespace p11vault::cli {

void add_list_command(CLI::App& command);
void add_backup_command(CLI::App& command);
void add_restore_command(CLI::App& command);
void add_verify_command(CLI::App& command);
void add_split_command(CLI::App& command);
void add_combine_command(CLI::App& command);
void add_record_check_command(CLI::App& command);
void add_migrate_command(CLI::App& command);
void add_escrow_share_command(CLI::App& command);

}  // namespace p11vault::cli
