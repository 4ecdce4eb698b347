// SPDX-License-Identifier: Apache-2.0
// Process hardening (issue 8): a running p11vault has no core dumps (RLIMIT_CORE 0) and
// is not dumpable (PR_SET_DUMPABLE 0), so another process of the same unprivileged user
// cannot ptrace it or read its memory, environment or descriptors through /proc.
//
// The kernel shows "not dumpable" by giving /proc/PID/status and friends to root instead
// of the process's user. The test therefore runs p11vault as the user nobody (setpriv,
// which needs the test to run as root), blocked on reading its password from a pipe,
// and looks at /proc/PID while it waits. A `cat` run the same way is the control: its
// files do belong to nobody, so the test would notice a p11vault that forgot to harden.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

extern char** environ;

namespace p11vault::testing {
namespace {

constexpr uid_t kNobody = 65534;

bool can_switch_user() {
    if (::geteuid() != 0) return false;
    try {
        return run({"setpriv", "--version"}).exit_code == 0;
    } catch (const std::exception&) {
        return false;
    }
}

// A child started as nobody with a pipe on stdin that stays open until stop().
class BlockedChild {
public:
    explicit BlockedChild(const std::vector<std::string>& command) {
        int fds[2];
        if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
        std::vector<std::string> argv = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
        argv.insert(argv.end(), command.begin(), command.end());
        std::vector<char*> args;
        for (auto& arg : argv) args.push_back(arg.data());
        args.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[0], 0);
        posix_spawn_file_actions_addclose(&actions, fds[1]);
        const int rc = posix_spawnp(&pid_, "setpriv", &actions, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        ::close(fds[0]);
        write_end_ = fds[1];
        if (rc != 0) {
            ::close(write_end_);
            throw std::runtime_error(std::string("posix_spawnp setpriv: ") + std::strerror(rc));
        }
    }
    ~BlockedChild() { stop(); }

    pid_t pid() const { return pid_; }

    // Closes the pipe (the child reads an empty secret and exits) and reaps it.
    void stop() {
        if (pid_ <= 0) return;
        ::close(write_end_);
        int status = 0;
        for (int i = 0; i < 100 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (::waitpid(pid_, &status, WNOHANG) == 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
        }
        pid_ = -1;
    }

private:
    pid_t pid_ = -1;
    int write_end_ = -1;
};

std::optional<uid_t> owner(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    return st.st_uid;
}

std::string exe_of(pid_t pid) {
    char target[4096];
    const ssize_t n = ::readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), target, sizeof target - 1);
    return n > 0 ? std::string(target, static_cast<std::size_t>(n)) : std::string();
}

// Waits until `pid` runs `program` (setpriv has exec'd it) and /proc/PID/status belongs
// to `expected_owner`; returns the owner seen last.
std::optional<uid_t> wait_for_owner(pid_t pid, const std::string& program, uid_t expected_owner) {
    const std::string status = "/proc/" + std::to_string(pid) + "/status";
    std::optional<uid_t> seen;
    for (int i = 0; i < 200; ++i) {
        if (exe_of(pid).find(program) != std::string::npos) {
            seen = owner(status);
            if (seen == expected_owner) return seen;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return seen;
}

std::string core_limit_line(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("Max core file size", 0) == 0) return line;
    return {};
}

TEST(Hardening, ARunningP11vaultIsNotDumpableAndWritesNoCore) {
    if (!can_switch_user()) GTEST_SKIP() << "needs root and setpriv (util-linux) to run p11vault as another user";
    if (run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", P11VAULT_BINARY, "--version"}).exit_code != 0)
        GTEST_SKIP() << "the user nobody cannot run " << P11VAULT_BINARY << " (a directory above it is not searchable)";
    const std::string dir = make_temp_dir("hardening");
    ::chmod(dir.c_str(), 0755);
    const std::string file = dir + "/any.p12";
    std::ofstream(file) << "not read before the password";
    ::chmod(file.c_str(), 0644);

    // The control: an ordinary process of nobody owns its /proc files.
    BlockedChild control({"cat"});
    EXPECT_EQ(wait_for_owner(control.pid(), "cat", kNobody), kNobody)
        << "the control process's /proc files do not belong to nobody: the test cannot see dumpability";
    control.stop();

    BlockedChild p11vault({P11VAULT_BINARY, "verify", "--in", file, "--password", "stdin"});
    EXPECT_EQ(wait_for_owner(p11vault.pid(), "p11vault", 0), uid_t{0})
        << "/proc/PID/status of a running p11vault belongs to its user: it is dumpable (PR_SET_DUMPABLE)";
    const std::string limit = core_limit_line(p11vault.pid());
    EXPECT_NE(limit.find(" 0 "), std::string::npos) << limit;
    EXPECT_EQ(limit.find("unlimited"), std::string::npos) << limit;
    p11vault.stop();
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace p11vault::testing
