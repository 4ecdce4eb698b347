// SPDX-License-Identifier: Apache-2.0
#include "tests/support/run.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace p11vault::testing {
namespace {

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

// A descriptor closed when it goes out of scope.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(Fd&& other) noexcept : fd_(other.release()) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = other.release();
        }
        return *this;
    }
    int get() const { return fd_; }
    int release() {
        const int fd = fd_;
        fd_ = -1;
        return fd;
    }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

struct Pipe {
    Fd read_end, write_end;
};

// Pipe ends numbered 100 and up, close-on-exec, so a dup2 onto 0..99 in the child never
// meets a descriptor with the same number.
Pipe make_pipe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) fail("pipe2");
    Fd a(fds[0]), b(fds[1]);
    Pipe pipe;
    pipe.read_end = Fd(fcntl(a.get(), F_DUPFD_CLOEXEC, 100));
    pipe.write_end = Fd(fcntl(b.get(), F_DUPFD_CLOEXEC, 100));
    if (pipe.read_end.get() < 0 || pipe.write_end.get() < 0) fail("fcntl(F_DUPFD_CLOEXEC)");
    return pipe;
}

std::vector<std::string> child_environment(const RunOptions& options) {
    std::vector<std::string> env;
    for (char** entry = environ; *entry != nullptr; ++entry) {
        const std::string text(*entry);
        const std::string name = text.substr(0, text.find('='));
        bool removed = options.env.count(name) != 0;
        for (const auto& unset : options.unset_env) removed = removed || unset == name;
        if (!removed) env.push_back(text);
    }
    for (const auto& [name, value] : options.env) env.push_back(name + "=" + value);
    return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
    std::vector<char*> out;
    for (auto& s : strings) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

class FileActions {
public:
    FileActions() { posix_spawn_file_actions_init(&actions_); }
    ~FileActions() { posix_spawn_file_actions_destroy(&actions_); }
    FileActions(const FileActions&) = delete;
    FileActions& operator=(const FileActions&) = delete;
    void dup2(int from, int to) {
        if (posix_spawn_file_actions_adddup2(&actions_, from, to) != 0) fail("posix_spawn_file_actions_adddup2");
    }
    const posix_spawn_file_actions_t* get() const { return &actions_; }

private:
    posix_spawn_file_actions_t actions_;
};

class SpawnAttributes {
public:
    SpawnAttributes() {
        posix_spawnattr_init(&attributes_);
        sigset_t defaults;
        sigemptyset(&defaults);
        sigaddset(&defaults, SIGPIPE);
        posix_spawnattr_setsigdefault(&attributes_, &defaults);
        posix_spawnattr_setflags(&attributes_, POSIX_SPAWN_SETSIGDEF);
    }
    ~SpawnAttributes() { posix_spawnattr_destroy(&attributes_); }
    SpawnAttributes(const SpawnAttributes&) = delete;
    SpawnAttributes& operator=(const SpawnAttributes&) = delete;
    const posix_spawnattr_t* get() const { return &attributes_; }

private:
    posix_spawnattr_t attributes_;
};

}  // namespace

void add_env_entries(RunOptions& options, const std::vector<std::string>& entries) {
    for (const auto& entry : entries) {
        const auto equals = entry.find('=');
        if (equals == std::string::npos) throw std::invalid_argument("environment entry without '=': " + entry);
        options.env[entry.substr(0, equals)] = entry.substr(equals + 1);
    }
}

std::vector<std::string> RunResult::err_lines() const {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < err.size()) {
        std::size_t end = err.find('\n', start);
        if (end == std::string::npos) end = err.size();
        lines.push_back(err.substr(start, end - start));
        start = end + 1;
    }
    return lines;
}

RunResult run(const std::vector<std::string>& argv, const RunOptions& options) {
    if (argv.empty()) throw std::invalid_argument("run: empty argv");
    Pipe in = make_pipe(), out = make_pipe(), err = make_pipe();
    std::vector<Pipe> extra;
    FileActions actions;
    actions.dup2(in.read_end.get(), STDIN_FILENO);
    actions.dup2(out.write_end.get(), STDOUT_FILENO);
    actions.dup2(err.write_end.get(), STDERR_FILENO);
    for (const auto& [number, data] : options.extra_fds) {
        if (number < 3 || number >= 100) throw std::invalid_argument("run: extra fd numbers are 3..99");
        if (data.size() > 65536) throw std::invalid_argument("run: extra fd data is limited to 64 KiB");
        Pipe pipe = make_pipe();
        // Fits in the pipe buffer, so it can all be written before the child starts.
        if (!data.empty() && ::write(pipe.write_end.get(), data.data(), data.size()) !=
                                 static_cast<ssize_t>(data.size()))
            fail("write to extra fd pipe");
        pipe.write_end.reset();
        actions.dup2(pipe.read_end.get(), number);
        extra.push_back(std::move(pipe));
    }

    std::vector<std::string> args = argv;
    std::vector<std::string> env = child_environment(options);
    auto arg_pointers = pointers(args);
    auto env_pointers = pointers(env);
    // Writing to a child that stopped reading must be EPIPE here, not a dead test; the
    // child gets the default SIGPIPE back.
    ::signal(SIGPIPE, SIG_IGN);
    SpawnAttributes attributes;
    pid_t pid = -1;
    const int spawned = posix_spawnp(&pid, args[0].c_str(), actions.get(), attributes.get(), arg_pointers.data(),
                                     env_pointers.data());
    if (spawned != 0) {
        errno = spawned;
        fail("cannot start " + args[0]);
    }
    in.read_end.reset();
    out.write_end.reset();
    err.write_end.reset();
    extra.clear();

    // Feed stdin and drain stdout/stderr together, so neither side blocks on a full pipe.
    const std::string stdin_data = options.stdin_data.value_or("");
    std::size_t written = 0;
    if (stdin_data.empty()) in.write_end.reset();
    RunResult result;
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    bool killed = false;
    while (out.read_end.get() >= 0 || err.read_end.get() >= 0) {
        pollfd fds[3] = {{out.read_end.get(), POLLIN, 0}, {err.read_end.get(), POLLIN, 0},
                         {in.write_end.get(), POLLOUT, 0}};
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                                std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            ::kill(pid, SIGKILL);
            killed = true;
            break;
        }
        const int ready = ::poll(fds, 3, static_cast<int>(left.count()));
        if (ready < 0) {
            if (errno == EINTR) continue;
            fail("poll");
        }
        const std::pair<Fd*, std::string*> readers[] = {{&out.read_end, &result.out}, {&err.read_end, &result.err}};
        for (int i = 0; i < 2; ++i) {
            if (fds[i].revents == 0) continue;
            char buffer[4096];
            const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
            if (n > 0) {
                readers[i].second->append(buffer, static_cast<std::size_t>(n));
            } else if (n == 0 || errno != EINTR) {
                readers[i].first->reset();
            }
        }
        if (fds[2].revents != 0) {
            const ssize_t n = (fds[2].revents & POLLOUT) != 0
                                  ? ::write(in.write_end.get(), stdin_data.data() + written, stdin_data.size() - written)
                                  : -1;
            if (n > 0) written += static_cast<std::size_t>(n);
            if (n < 0 || written == stdin_data.size()) in.write_end.reset();  // EPIPE: the child stopped reading
        }
    }
    in.write_end.reset();

    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) fail("waitpid");
    }
    if (killed || WIFSIGNALED(status)) {
        result.exit_code = 128 + (killed ? SIGKILL : WTERMSIG(status));
    } else {
        result.exit_code = WEXITSTATUS(status);
    }
    return result;
}

RunResult run_p11vault(const std::vector<std::string>& args, const RunOptions& options) {
    std::vector<std::string> argv{P11VAULT_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, options);
}

}  // namespace p11vault::testing
