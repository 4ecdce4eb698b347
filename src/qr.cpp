// SPDX-License-Identifier: Apache-2.0
#include "src/qr.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "p11vault/error.hpp"

extern char** environ;

namespace p11vault::qr {

namespace {

// QR version 40 with error correction M holds at most 2,331 bytes; the largest share
// text is far below that, so anything near it is a bug, not a share.
constexpr std::size_t kMaxText = 2331;
// A PNG of a version-40 code at the default module size is about 10 KiB; a runaway
// child is cut off well above that.
constexpr std::size_t kMaxImage = 1u << 20;

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

[[noreturn]] void fail(const std::string& what) {
    throw Error(ExitCode::failure, "qrencode: " + what + " (install it with: apt install qrencode, or leave out --qr)");
}

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

// Runs `argv` with `input` on stdin; returns stdout. stderr is discarded (it would only
// say what stdin held). Exit status other than 0 is an error.
SecretBytes run_filter(const std::vector<std::string>& argv, std::span<const std::uint8_t> input) {
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
    const int spawned = ::posix_spawnp(&pid, args[0], &actions, &attributes, args.data(), environ);
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
        if (output.size() + static_cast<std::size_t>(n) > kMaxImage) {
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
    if (output.empty()) fail("no image");
    return output;
}

}  // namespace

bool available() {
    try {
        const std::uint8_t probe[] = {'p'};
        (void)run_filter({"qrencode", "-t", "PNG", "-o", "-"}, probe);
        return true;
    } catch (const Error&) {
        return false;
    }
}

SecretBytes png_of(const SecretBytes& text) {
    if (text.size() > kMaxText) fail(fmt::format("{} bytes do not fit in a QR code", text.size()));
    // -8: the bytes as they are (no Kanji or other mode guessing); -l M: error correction
    // for a printed page that gets creased; -m 4: the quiet zone scanners need.
    return run_filter({"qrencode", "-8", "-l", "M", "-m", "4", "-s", "6", "-t", "PNG", "-o", "-"}, text.bytes());
}

}  // namespace p11vault::qr
