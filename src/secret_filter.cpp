// SPDX-License-Identifier: Apache-2.0
#include "src/secret_filter.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "p11vault/error.hpp"

namespace p11vault {
namespace {

class Descriptor {
public:
    explicit Descriptor(int fd = -1) : fd_(fd) {}
    Descriptor(const Descriptor&) = delete;
    Descriptor& operator=(const Descriptor&) = delete;
    ~Descriptor() { reset(); }
    int get() const { return fd_; }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};

// SIGPIPE ignored while it lives: a child that exits before reading all of its input
// must give EPIPE on our write, not end p11vault.
class SigpipeIgnored {
public:
    SigpipeIgnored() {
        struct sigaction ignore {};
        ignore.sa_handler = SIG_IGN;
        ::sigemptyset(&ignore.sa_mask);
        ::sigaction(SIGPIPE, &ignore, &saved_);
    }
    SigpipeIgnored(const SigpipeIgnored&) = delete;
    SigpipeIgnored& operator=(const SigpipeIgnored&) = delete;
    ~SigpipeIgnored() { ::sigaction(SIGPIPE, &saved_, nullptr); }

private:
    struct sigaction saved_ {};
};

}  // namespace

SecretBytes run_filter(const std::vector<std::string>& argv, std::span<const std::uint8_t> input,
                       std::size_t max_output, const std::string& hint) {
    const std::string program = argv.empty() ? std::string() : argv.front();
    const auto fail = [&](const std::string& what) {
        throw Error(ErrorKind::failure, program.substr(program.rfind('/') + 1) + ": " + what + hint);
    };
    if (program.empty() || program.front() != '/') fail("not an absolute program path");
    int to_child[2], from_child[2];
    if (::pipe2(to_child, O_CLOEXEC) != 0) fail(std::string("pipe: ") + std::strerror(errno));
    Descriptor child_stdin(to_child[0]), write_end(to_child[1]);
    if (::pipe2(from_child, O_CLOEXEC) != 0) fail(std::string("pipe: ") + std::strerror(errno));
    Descriptor read_end(from_child[0]), child_stdout(from_child[1]);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, child_stdin.get(), STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, child_stdout.get(), STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    std::vector<char*> args;
    std::vector<std::string> copies = argv;
    for (auto& arg : copies) args.push_back(arg.data());
    args.push_back(nullptr);
    // The child gets SIGPIPE back at its default, whatever this process does with it.
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t default_signals;
    ::sigemptyset(&default_signals);
    ::sigaddset(&default_signals, SIGPIPE);
    posix_spawnattr_setsigdefault(&attributes, &default_signals);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF);
    const SigpipeIgnored sigpipe_ignored;
    pid_t pid = -1;
    // The child's whole environment: no variable of ours (one may have held the secret,
    // `--password env:VAR`), and a PATH of system directories only.
    char path[] = "PATH=/usr/bin:/bin";
    char locale[] = "LC_ALL=C";
    char* environment[] = {path, locale, nullptr};
    const int spawned = ::posix_spawn(&pid, args[0], &actions, &attributes, args.data(), environment);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    child_stdin.reset();
    child_stdout.reset();
    if (spawned != 0) fail(fmt::format("cannot run {}: {}", argv[0], std::strerror(spawned)));

    // The input is a few hundred bytes, the output a few KiB: write everything, close,
    // then read; neither side can fill a pipe first.
    std::size_t written = 0;
    while (written < input.size()) {
        const ssize_t n = ::write(write_end.get(), input.data() + written, input.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        written += static_cast<std::size_t>(n);
    }
    write_end.reset();
    SecretBytes output;
    std::uint8_t buffer[4096];
    bool too_large = false;
    for (;;) {
        const ssize_t n = ::read(read_end.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (output.size() + static_cast<std::size_t>(n) > max_output) {
            too_large = true;
            ::kill(pid, SIGKILL);
            break;
        }
        output.append(buffer, static_cast<std::size_t>(n));
    }
    secure_wipe(buffer, sizeof buffer);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (too_large) fail("its output is implausibly large");
    if (written != input.size()) fail("it did not read its input");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail(WIFEXITED(status) ? fmt::format("exited with status {}", WEXITSTATUS(status)) : "was killed");
    return output;
}


std::string find_system_program(const std::string& name) {
    for (const char* directory : {"/usr/bin", "/bin", "/usr/local/bin"}) {
        const std::string path = std::string(directory) + "/" + name;
        if (::access(path.c_str(), X_OK) == 0) return path;
    }
    return {};
}

}  // namespace p11vault
