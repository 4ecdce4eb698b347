// SPDX-License-Identifier: Apache-2.0
// Secret sources (include/p11vault/secret_source.hpp): every source of the contract, the
// errors and their exit code, that no error message holds a secret, the pass: warning,
// and the no-echo prompt on a real pseudo-terminal (echo back on after success, after an
// error and after a signal).
#include "p11vault/secret_source.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "p11vault/error.hpp"
#include "tests/support/pseudo_terminal.hpp"

namespace p11vault {
namespace {

using testing::PseudoTerminal;
using testing::wait_for;

std::string text(const SecretBytes& secret) { return std::string(secret.reveal_text()); }

// The Error a call throws; fails the test when it throws nothing.
Error error_of(const std::function<void()>& call) {
    try {
        call();
    } catch (const Error& error) {
        return error;
    }
    ADD_FAILURE() << "no p11vault::Error thrown";
    return Error(ErrorKind::ok, "");
}

class TempDir {
public:
    TempDir() {
        char pattern[] = "/tmp/p11vault-secret-test-XXXXXX";
        path_ = ::mkdtemp(pattern);
    }
    ~TempDir() {
        std::error_code ignored;  // a test's leftovers in /tmp are not worth failing over
        std::filesystem::remove_all(path_, ignored);
    }
    std::string write(const std::string& name, const std::string& content) const {
        const std::string file = path_ + "/" + name;
        std::ofstream(file, std::ios::binary) << content;
        return file;
    }

private:
    std::string path_;
};

// A pipe whose read end the test hands out as fd:N.
struct Pipe {
    int read_end = -1, write_end = -1;
    explicit Pipe(const std::string& content) {
        int fds[2];
        EXPECT_EQ(::pipe(fds), 0);
        read_end = fds[0];
        write_end = fds[1];
        EXPECT_EQ(::write(write_end, content.data(), content.size()), static_cast<ssize_t>(content.size()));
        ::close(write_end);
        write_end = -1;
    }
    ~Pipe() { ::close(read_end); }
    std::string rest() const {
        std::string out;
        char buffer[256];
        ssize_t n;
        while ((n = ::read(read_end, buffer, sizeof buffer)) > 0) out.append(buffer, static_cast<std::size_t>(n));
        return out;
    }
};

// Puts `fd` on stdin for its lifetime.
class StdinFrom {
public:
    explicit StdinFrom(int fd) : saved_(::dup(STDIN_FILENO)) { ::dup2(fd, STDIN_FILENO); }
    ~StdinFrom() {
        ::dup2(saved_, STDIN_FILENO);
        ::close(saved_);
    }

private:
    int saved_;
};

// Runs `body` in a forked child with stderr captured; returns its exit code and stderr.
std::pair<int, std::string> in_child(const std::function<int()>& body) {
    int fds[2];
    if (::pipe(fds) != 0) return {-1, ""};
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(fds[1], STDERR_FILENO);
        ::close(fds[0]);
        int code = 100;
        try {
            code = body();
        } catch (...) {
            code = 101;
        }
        std::fflush(stderr);
        ::_exit(code);
    }
    ::close(fds[1]);
    std::string err;
    char buffer[512];
    ssize_t n;
    while ((n = ::read(fds[0], buffer, sizeof buffer)) > 0) err.append(buffer, static_cast<std::size_t>(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), err};
}

TEST(SecretSourceTest, EnvReadsTheVariable) {
    ::setenv("P11VAULT_TEST_SECRET", "env secret", 1);
    EXPECT_EQ(text(read_secret("env:P11VAULT_TEST_SECRET", "PIN", "--pin")), "env secret");
}

TEST(SecretSourceTest, EnvMissingVariableIsUsageErrorNamingIt) {
    ::unsetenv("P11VAULT_TEST_UNSET");
    const Error error = error_of([] { read_secret("env:P11VAULT_TEST_UNSET", "PIN", "--pin"); });
    EXPECT_EQ(error.kind(), ErrorKind::usage);
    EXPECT_NE(std::string(error.what()).find("P11VAULT_TEST_UNSET"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("--pin"), std::string::npos) << error.what();
}

TEST(SecretSourceTest, FileReadsFirstLineWithoutLineEnd) {
    TempDir dir;
    EXPECT_EQ(text(read_secret("file:" + dir.write("lf", "first\nsecond\n"), "PIN", "--pin")), "first");
    EXPECT_EQ(text(read_secret("file:" + dir.write("crlf", "windows\r\nsecond\r\n"), "PIN", "--pin")), "windows");
    EXPECT_EQ(text(read_secret("file:" + dir.write("bare", "no newline"), "PIN", "--pin")), "no newline");
    EXPECT_EQ(text(read_secret("file:" + dir.write("empty-line", "\nsecond\n"), "PIN", "--pin")), "");
    EXPECT_EQ(text(read_secret("file:" + dir.write("spaces", " spaced pass \n"), "PIN", "--pin")), " spaced pass ");
}

TEST(SecretSourceTest, FileMissingIsUsageErrorSayingSo) {
    const Error error = error_of([] { read_secret("file:/nonexistent/p11vault/pin", "PIN", "--pin"); });
    EXPECT_EQ(error.kind(), ErrorKind::usage);
    EXPECT_NE(std::string(error.what()).find("no such file"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("/nonexistent/p11vault/pin"), std::string::npos) << error.what();
}

TEST(SecretSourceTest, FileLongerThanAnySecretIsRefusedWithoutEchoingIt) {
    TempDir dir;
    const std::string huge(70000, 'x');
    const Error error = error_of([&] { read_secret("file:" + dir.write("huge", huge), "PIN", "--pin"); });
    EXPECT_EQ(error.kind(), ErrorKind::usage);
    EXPECT_EQ(std::string(error.what()).find("xxxx"), std::string::npos);
}

TEST(SecretSourceTest, FdReadsUpToFirstNewlineAndLeavesTheRest) {
    Pipe pipe("fd secret\nnot mine\n");
    EXPECT_EQ(text(read_secret("fd:" + std::to_string(pipe.read_end), "password", "--password")), "fd secret");
    EXPECT_EQ(pipe.rest(), "not mine\n");
}

TEST(SecretSourceTest, FdReadsToEndOfFile) {
    Pipe pipe("to the end");
    EXPECT_EQ(text(read_secret("fd:" + std::to_string(pipe.read_end), "password", "--password")), "to the end");
}

TEST(SecretSourceTest, FdErrorsAreUsageErrors) {
    EXPECT_EQ(error_of([] { read_secret("fd:three", "PIN", "--pin"); }).kind(), ErrorKind::usage);
    EXPECT_EQ(error_of([] { read_secret("fd:", "PIN", "--pin"); }).kind(), ErrorKind::usage);
    EXPECT_EQ(error_of([] { read_secret("fd:-1", "PIN", "--pin"); }).kind(), ErrorKind::usage);
    EXPECT_EQ(error_of([] { read_secret("fd:987", "PIN", "--pin"); }).kind(), ErrorKind::usage);  // not open
}

TEST(SecretSourceTest, StdinReadsFirstLine) {
    Pipe pipe("from stdin\r\nnext\n");
    StdinFrom redirect(pipe.read_end);
    EXPECT_EQ(text(read_secret("stdin", "PIN", "--pin")), "from stdin");
}

TEST(SecretSourceTest, PassReturnsTheTextAndWarnsOnce) {
    const auto [code, err] = in_child([] {
        const bool first = text(read_secret("pass:open sesame", "PIN", "--pin")) == "open sesame";
        const bool second = text(read_secret("pass:", "password", "--password")).empty();
        return first && second ? 0 : 1;
    });
    EXPECT_EQ(code, 0);
    EXPECT_EQ(err,
              "p11vault: warning: pass: puts the secret in the process list; use env:, file:, fd: or stdin\n");
}

TEST(SecretSourceTest, AbsentWithoutTerminalIsUsageError) {
    const int null = ::open("/dev/null", O_RDONLY);
    StdinFrom redirect(null);
    ::close(null);
    const Error error = error_of([] { read_secret(std::nullopt, "PIN", "--pin"); });
    EXPECT_EQ(error.kind(), ErrorKind::usage);
    EXPECT_STREQ(error.what(),
                 "no --pin given and stdin is not a terminal: give --pin env:VAR, file:PATH, fd:N or stdin");
}

// Neither part is repeated: "bogus" may be the first half of a password typed where its
// source belongs ("c0ffee9f:PW-horse"). The message says what the sources are instead.
TEST(SecretSourceTest, UnknownPrefixRepeatsNeitherPrefixNorValue) {
    const Error error = error_of([] { read_secret("bogus:hunter2", "PIN", "--pin"); });
    EXPECT_EQ(error.kind(), ErrorKind::usage);
    EXPECT_NE(std::string(error.what()).find("unknown secret source"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("env:VAR"), std::string::npos) << error.what();
    EXPECT_EQ(std::string(error.what()).find("bogus"), std::string::npos) << error.what();
    EXPECT_EQ(std::string(error.what()).find("hunter2"), std::string::npos) << error.what();
}

TEST(SecretSourceTest, BareSecretIsNeverEchoed) {
    for (const char* given : {"hunter2", "Correct Horse:Battery", "pA55:w0rd!", "s3cr3t-with-a-long-prefix:x"}) {
        const Error error = error_of([&] { read_secret(std::string(given), "PIN", "--pin"); });
        EXPECT_EQ(error.kind(), ErrorKind::usage);
        const std::string message = error.what();
        EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
        EXPECT_EQ(message.find("Horse"), std::string::npos) << message;
        EXPECT_EQ(message.find("pA55"), std::string::npos) << message;
        EXPECT_EQ(message.find("s3cr3t"), std::string::npos) << message;
    }
}

TEST(SecretSourceTest, SharesNameTheMissingFileAndAreForPasswordsOnly) {
    const Error missing = error_of([] { read_secret("shares:/nonexistent/a.share,b.share", "password", "--password"); });
    EXPECT_EQ(missing.kind(), ErrorKind::usage);
    EXPECT_STREQ(missing.what(), "cannot read share file /nonexistent/a.share");
    const Error pin = error_of([] { read_secret("shares:a,b", "PIN", "--pin"); });
    EXPECT_EQ(pin.kind(), ErrorKind::usage);
}

// --- the prompt, on a pseudo-terminal that is the child's controlling terminal ---------

// Child body: the prompt must return `expected` and leave echo on.
std::function<int()> prompt_expecting(const std::optional<std::string>& source, Prompt prompt,
                                      const std::string& expected) {
    return [=] {
        const SecretBytes secret = read_secret(source, "PIN", "--pin", prompt);
        termios settings{};
        ::tcgetattr(STDIN_FILENO, &settings);
        if ((settings.c_lflag & ECHO) == 0) return 3;
        return text(secret) == expected ? 0 : 4;
    };
}

TEST(SecretPromptTest, AbsentOnTerminalPromptsWithoutEcho) {
    PseudoTerminal terminal;
    ASSERT_TRUE(terminal.ok());
    ASSERT_TRUE(terminal.echo_on());
    const pid_t child = terminal.spawn(prompt_expecting(std::nullopt, Prompt::once, "typed pin"));
    std::string seen;
    ASSERT_FALSE(terminal.read_until("Enter PIN: ", seen).empty()) << seen;
    ASSERT_TRUE(terminal.type("typed pin\n"));
    EXPECT_EQ(wait_for(child), 0);
    terminal.drain(seen);
    EXPECT_EQ(seen.find("typed pin"), std::string::npos) << "the PIN was echoed: " << seen;
    EXPECT_TRUE(terminal.echo_on());
}

TEST(SecretPromptTest, StdinOnTerminalPromptsWithoutEcho) {
    PseudoTerminal terminal;
    ASSERT_TRUE(terminal.ok());
    const pid_t child = terminal.spawn(prompt_expecting("stdin", Prompt::once, "from tty"));
    std::string seen;
    ASSERT_FALSE(terminal.read_until("Enter PIN: ", seen).empty()) << seen;
    ASSERT_TRUE(terminal.type("from tty\n"));
    EXPECT_EQ(wait_for(child), 0);
    terminal.drain(seen);
    EXPECT_EQ(seen.find("from tty"), std::string::npos) << seen;
}

TEST(SecretPromptTest, ConfirmAsksTwiceAndAcceptsTheSameAnswer) {
    PseudoTerminal terminal;
    ASSERT_TRUE(terminal.ok());
    const pid_t child = terminal.spawn(prompt_expecting(std::nullopt, Prompt::confirm, "twice"));
    std::string seen;
    ASSERT_FALSE(terminal.read_until("Enter PIN: ", seen).empty()) << seen;
    ASSERT_TRUE(terminal.type("twice\n"));
    ASSERT_FALSE(terminal.read_until("Enter PIN again: ", seen).empty()) << seen;
    ASSERT_TRUE(terminal.type("twice\n"));
    EXPECT_EQ(wait_for(child), 0);
    terminal.drain(seen);
    EXPECT_EQ(seen.find("twice"), std::string::npos) << seen;
}

TEST(SecretPromptTest, ConfirmMismatchIsAnErrorAndEchoIsBackOn) {
    PseudoTerminal terminal;
    ASSERT_TRUE(terminal.ok());
    const pid_t child = terminal.spawn([] {
        try {
            read_secret(std::nullopt, "password", "--password", Prompt::confirm);
        } catch (const Error& error) {
            termios settings{};
            ::tcgetattr(STDIN_FILENO, &settings);
            if ((settings.c_lflag & ECHO) == 0) return 3;
            const std::string message = error.what();
            if (message.find("answer") != std::string::npos) return 5;
            return error.kind() == ErrorKind::usage ? 0 : 6;
        }
        return 7;
    });
    std::string seen;
    ASSERT_FALSE(terminal.read_until("Enter password: ", seen).empty()) << seen;
    ASSERT_TRUE(terminal.type("first-answer\n"));
    ASSERT_FALSE(terminal.read_until("Enter password again: ", seen).empty()) << seen;
    ASSERT_TRUE(terminal.type("second-answer\n"));
    EXPECT_EQ(wait_for(child), 0);
}

TEST(SecretPromptTest, SignalDuringPromptRestoresEcho) {
    PseudoTerminal terminal;
    ASSERT_TRUE(terminal.ok());
    const pid_t child = terminal.spawn(prompt_expecting(std::nullopt, Prompt::once, "never typed"));
    std::string seen;
    ASSERT_FALSE(terminal.read_until("Enter PIN: ", seen).empty()) << seen;
    EXPECT_FALSE(terminal.echo_on());  // the prompt is waiting with echo off
    ::kill(child, SIGTERM);
    EXPECT_EQ(wait_for(child), 128 + SIGTERM);
    EXPECT_TRUE(terminal.echo_on());
}

}  // namespace
}  // namespace p11vault
