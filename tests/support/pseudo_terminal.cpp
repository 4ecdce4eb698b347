// SPDX-License-Identifier: Apache-2.0
#include "tests/support/pseudo_terminal.hpp"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include "p11vault/error.hpp"

namespace p11vault::testing {

PseudoTerminal::PseudoTerminal() {
    master_ = ::posix_openpt(O_RDWR | O_NOCTTY);
    if (master_ >= 0 && ::grantpt(master_) == 0 && ::unlockpt(master_) == 0) slave_name_ = ::ptsname(master_);
}

PseudoTerminal::~PseudoTerminal() {
    if (master_ >= 0) ::close(master_);
}

pid_t PseudoTerminal::spawn(const std::function<int()>& body) const {
    const pid_t pid = ::fork();
    if (pid != 0) return pid;
    ::close(master_);
    ::setsid();
    const int slave = ::open(slave_name_.c_str(), O_RDWR);  // becomes the controlling terminal
    if (slave < 0) ::_exit(120);
    ::dup2(slave, STDIN_FILENO);
    int code = 121;
    try {
        code = body();
    } catch (const Error&) {
        code = 122;
    } catch (...) {
        code = 121;
    }
    ::_exit(code);
}

pid_t PseudoTerminal::spawn_program(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                                    const std::string& output_path) const {
    // Everything exec needs is prepared before fork: the child only calls
    // async-signal-safe functions.
    std::vector<std::string> args_copy = argv;
    std::vector<char*> args;
    for (auto& arg : args_copy) args.push_back(arg.data());
    args.push_back(nullptr);
    std::vector<std::string> env_copy = env;
    return spawn([&]() -> int {
        for (auto& entry : env_copy) ::putenv(entry.data());
        if (!output_path.empty()) {
            const int out = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (out < 0) return 123;
            ::dup2(out, STDOUT_FILENO);
            ::dup2(out, STDERR_FILENO);
        }
        ::execv(args[0], args.data());
        return 124;
    });
}

std::string PseudoTerminal::read_until(const std::string& expected, std::string& seen) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (seen.find(expected) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        pollfd fd{master_, POLLIN, 0};
        if (::poll(&fd, 1, 200) <= 0) continue;
        char buffer[256];
        const ssize_t n = ::read(master_, buffer, sizeof buffer);
        if (n <= 0) break;
        seen.append(buffer, static_cast<std::size_t>(n));
    }
    return seen.find(expected) == std::string::npos ? std::string{} : expected;
}

void PseudoTerminal::drain(std::string& seen) const {
    pollfd fd{master_, POLLIN, 0};
    char buffer[256];
    ssize_t n;
    while (::poll(&fd, 1, 100) > 0 && (n = ::read(master_, buffer, sizeof buffer)) > 0)
        seen.append(buffer, static_cast<std::size_t>(n));
}

bool PseudoTerminal::type(const std::string& keys) const {
    return ::write(master_, keys.data(), keys.size()) == static_cast<ssize_t>(keys.size());
}

bool PseudoTerminal::echo_on() const {
    termios settings{};
    return ::tcgetattr(master_, &settings) == 0 && (settings.c_lflag & ECHO) != 0;
}

int wait_for(pid_t pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace p11vault::testing
