// SPDX-License-Identifier: Apache-2.0
// A pseudo-terminal for tests of the no-echo prompt: a child process (a function, or
// a program) gets the slave as its controlling terminal and stdin; the test reads the
// prompts from the master and types the answers.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace p11vault::testing {

class PseudoTerminal {
public:
    PseudoTerminal();
    ~PseudoTerminal();
    PseudoTerminal(const PseudoTerminal&) = delete;
    PseudoTerminal& operator=(const PseudoTerminal&) = delete;

    bool ok() const { return !slave_name_.empty(); }
    int master() const { return master_; }

    // Forks a child whose controlling terminal and stdin are the slave; it runs `body`,
    // which reports through its exit code (122 for a p11vault::Error, 121 for another
    // exception).
    pid_t spawn(const std::function<int()>& body) const;
    // The same, executing `argv` (argv[0] a path) with `env` added to the environment;
    // stdout and stderr stay the test's unless redirected to `output_path`.
    pid_t spawn_program(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                        const std::string& output_path = "") const;

    // Reads what the child wrote until `expected` appears; empty on timeout (20 s).
    std::string read_until(const std::string& expected, std::string& seen) const;
    // After the child exited: everything it left in the terminal.
    void drain(std::string& seen) const;
    // Types `keys` into the terminal; false when they could not all be written.
    bool type(const std::string& keys) const;
    // Echo as the slave's line discipline has it now (Linux applies termios calls on the
    // master to the slave).
    bool echo_on() const;

private:
    int master_ = -1;
    std::string slave_name_;
};

// waitpid: the exit status, or 128 + the signal.
int wait_for(pid_t pid);

}  // namespace p11vault::testing
