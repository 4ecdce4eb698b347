// SPDX-License-Identifier: Apache-2.0
// Runs a program as a child process, the way a script would: argv without a shell, extra
// environment variables, optional bytes on stdin (and on further descriptors, for
// `--pin fd:N`), and captures stdout, stderr and the exit code.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace p11vault::testing {

struct RunOptions {
    // Set (or override) in the child's environment, which is otherwise the test's own.
    std::map<std::string, std::string> env;
    // Removed from the child's environment.
    std::vector<std::string> unset_env;
    // Bytes on the child's stdin (a pipe, never a terminal), then end of file.
    std::optional<std::string> stdin_data;
    // Descriptor number in the child -> bytes readable from it (then end of file).
    // At most 64 KiB each. Numbers must be 3 or more.
    std::map<int, std::string> extra_fds;
    // Killed (exit code 128 + SIGKILL) when it runs longer.
    std::chrono::seconds timeout{120};
};

// Adds "NAME=VALUE" entries (TestToken::env_for_child()) to options.env.
void add_env_entries(RunOptions& options, const std::vector<std::string>& entries);

struct RunResult {
    int exit_code = -1;     // the exit status, or 128 + signal number
    std::string out;        // stdout
    std::string err;        // stderr
    // stderr split into lines, without the newlines.
    std::vector<std::string> err_lines() const;
};

// Runs argv[0] (searched in PATH when it has no '/'). Throws std::runtime_error when the
// program cannot be started.
RunResult run(const std::vector<std::string>& argv, const RunOptions& options = {});

// Runs the built p11vault binary (P11VAULT_BINARY) with `args`.
RunResult run_p11vault(const std::vector<std::string>& args, const RunOptions& options = {});

}  // namespace p11vault::testing
