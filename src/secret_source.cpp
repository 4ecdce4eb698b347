// SPDX-License-Identifier: Apache-2.0
// Secret sources of the command-line contract (docs/cli.md, "Secret sources").
//
// Every byte of a secret goes straight from the kernel into SecretBytes: lines are read
// one byte at a time (secrets are short, and reading no further than the first newline
// leaves the rest of a shared stdin or fd to its owner), so no stdio or std::string
// buffer ever holds a copy. Messages name the source ("env:PW", "file:/x"), never its
// content.
#include "p11vault/secret_source.hpp"
#include "src/shares.hpp"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "p11vault/error.hpp"

namespace p11vault {
namespace {

// Longer than any PIN or password; stops `file:/dev/zero` from eating all memory.
constexpr std::size_t max_secret_length = 64 * 1024;

[[noreturn]] void usage_error(const std::string& message) { throw Error(ErrorKind::usage, message); }

std::string errno_text(int error) { return std::strerror(error); }

// Closes a descriptor this file opened.
class FileDescriptor {
public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    ~FileDescriptor() {
        if (fd_ >= 0) ::close(fd_);
    }
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

enum class ReadOutcome { line, end_of_file_after_data, end_of_file_empty };

// Reads up to the first '\n' (not included) or end of file into `out`, dropping a '\r'
// before the '\n'. `source` names the source in errors.
ReadOutcome read_line(int fd, SecretBytes& out, const std::string& source) {
    out.clear();
    for (;;) {
        std::uint8_t byte = 0;
        const ssize_t n = ::read(fd, &byte, 1);
        if (n < 0) {
            if (errno == EINTR) continue;
            const int error = errno;
            out.clear();
            usage_error(source + ": cannot read: " + errno_text(error));
        }
        if (n == 0) {
            return out.empty() ? ReadOutcome::end_of_file_empty : ReadOutcome::end_of_file_after_data;
        }
        if (byte == '\n') break;
        if (out.size() >= max_secret_length) {
            out.clear();
            usage_error(source + ": the secret is longer than " + std::to_string(max_secret_length) +
                        " bytes: give a file whose first line is the secret");
        }
        out.push_back(byte);
        secure_wipe(&byte, sizeof byte);
    }
    if (!out.empty() && out.data()[out.size() - 1] == '\r') out.resize(out.size() - 1);
    return ReadOutcome::line;
}

SecretBytes read_environment(const std::string& variable, const std::string& option_name) {
    if (variable.empty()) usage_error(option_name + " env: needs a variable name, e.g. env:P11VAULT_PIN");
    const char* value = std::getenv(variable.c_str());
    if (value == nullptr) {
        usage_error(option_name + " env:" + variable + ": the environment variable " + variable +
                    " is not set: export it or choose another source");
    }
    return SecretBytes(value, std::strlen(value));
}

SecretBytes read_file(const std::string& path, const std::string& option_name) {
    const std::string source = option_name + " file:" + path;
    if (path.empty()) usage_error(option_name + " file: needs a path, e.g. file:/run/secrets/pin");
    FileDescriptor file(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (file.get() < 0) {
        const int error = errno;
        if (error == ENOENT) usage_error(source + ": no such file: check the path");
        usage_error(source + ": cannot open: " + errno_text(error));
    }
    SecretBytes secret;
    read_line(file.get(), secret, source);
    return secret;
}

SecretBytes read_descriptor(const std::string& number, const std::string& option_name) {
    const std::string source = option_name + " fd:" + number;
    char* end = nullptr;
    errno = 0;
    const long fd = number.empty() ? -1 : std::strtol(number.c_str(), &end, 10);
    if (number.empty() || errno != 0 || end == nullptr || *end != '\0' || fd < 0 || fd > 1 << 20) {
        usage_error(option_name + " fd:N needs a file descriptor number, e.g. fd:3");
    }
    SecretBytes secret;
    read_line(static_cast<int>(fd), secret, source);
    return secret;
}

// --- the no-echo prompt -----------------------------------------------------------

// The terminal state to put back if a signal arrives while echo is off. A signal handler
// may only touch these (tcsetattr is async-signal-safe).
struct PromptTerminal {
    std::atomic<int> fd{-1};
    termios saved{};
};
PromptTerminal prompt_terminal;

// Not SIGTSTP: a stopped job's terminal state is saved and put back by the shell.
constexpr int restored_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

extern "C" void restore_echo_and_reraise(int signal_number) {
    const int fd = prompt_terminal.fd.load();
    if (fd >= 0) tcsetattr(fd, TCSAFLUSH, &prompt_terminal.saved);
    // The default action (terminate) with echo back on; the signal stays blocked until
    // this handler returns, then it is delivered again.
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    sigaction(signal_number, &default_action, nullptr);
    raise(signal_number);
}

// Echo off for its lifetime: restored by the destructor on return or exception, and by
// the handler above on a terminating signal.
class EchoOff {
public:
    explicit EchoOff(int fd) : fd_(fd) {
        if (tcgetattr(fd_, &saved_) != 0) {
            usage_error("cannot read the terminal settings: " + errno_text(errno));
        }
        prompt_terminal.saved = saved_;
        prompt_terminal.fd.store(fd_);
        struct sigaction action {};
        action.sa_handler = restore_echo_and_reraise;
        sigemptyset(&action.sa_mask);
        for (std::size_t i = 0; i < std::size(restored_signals); ++i) {
            sigaction(restored_signals[i], &action, &previous_[i]);
        }
        termios quiet = saved_;
        quiet.c_lflag &= static_cast<tcflag_t>(~(ECHO | ECHOE | ECHOK | ECHONL));
        if (tcsetattr(fd_, TCSAFLUSH, &quiet) != 0) {
            const int error = errno;
            restore();
            usage_error("cannot turn off echo on the terminal: " + errno_text(error));
        }
    }
    ~EchoOff() { restore(); }
    EchoOff(const EchoOff&) = delete;
    EchoOff& operator=(const EchoOff&) = delete;

private:
    void restore() noexcept {
        tcsetattr(fd_, TCSAFLUSH, &saved_);
        prompt_terminal.fd.store(-1);
        for (std::size_t i = 0; i < std::size(restored_signals); ++i) {
            sigaction(restored_signals[i], &previous_[i], nullptr);
        }
    }

    int fd_;
    termios saved_{};
    struct sigaction previous_[std::size(restored_signals)] {};
};

void write_all(int fd, std::string_view text) {
    while (!text.empty()) {
        const ssize_t n = ::write(fd, text.data(), text.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return;  // a prompt that cannot be shown still reads the answer
        }
        text.remove_prefix(static_cast<std::size_t>(n));
    }
}

SecretBytes ask_once(int tty, const std::string& question, std::string_view what) {
    SecretBytes answer;
    ReadOutcome outcome;
    {
        // Echo goes off before the question appears (as getpass does): turning it off
        // flushes pending input, which must not include an answer typed after the question.
        EchoOff echo_off(tty);
        write_all(tty, question);
        outcome = read_line(tty, answer, "the terminal");
        write_all(tty, "\n");  // the user's Enter was not echoed
    }
    if (outcome == ReadOutcome::end_of_file_empty) {
        usage_error(std::string("no ") + std::string(what) + " entered (end of input): run the command again");
    }
    return answer;
}

SecretBytes prompt_on_terminal(std::string_view what, Prompt prompt) {
    FileDescriptor tty(::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY));
    if (tty.get() < 0) {
        usage_error(std::string("cannot open the terminal to ask for the ") + std::string(what) + ": " +
                    errno_text(errno));
    }
    SecretBytes first = ask_once(tty.get(), "Enter " + std::string(what) + ": ", what);
    if (prompt == Prompt::once) return first;
    SecretBytes second = ask_once(tty.get(), "Enter " + std::string(what) + " again: ", what);
    if (!(first == second)) {
        usage_error("the two " + std::string(what) + " entries differ: run the command again");
    }
    return first;
}

SecretBytes read_stdin(std::string_view what, const std::string& option_name, Prompt prompt) {
    // `stdin` on a terminal is a prompt: never echo a secret the user types.
    if (isatty(STDIN_FILENO)) return prompt_on_terminal(what, prompt);
    SecretBytes secret;
    read_line(STDIN_FILENO, secret, option_name + " stdin");
    return secret;
}

SecretBytes read_pass(std::string_view text) {
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true)) {
        std::fputs("p11vault: warning: pass: puts the secret in the process list; use env:, file:, fd: or stdin\n",
                   stderr);
    }
    return SecretBytes::from_text(text);
}

// The one place shares: plugs in (Shamir shares made by `split`).
SecretBytes read_shares(const std::string& files, const std::string& option_name) {
    if (option_name != "--password") usage_error(option_name + " does not take shares: (only --password does)");
    std::vector<std::string> paths;
    std::size_t start = 0;
    while (start <= files.size()) {
        std::size_t comma = files.find(',', start);
        if (comma == std::string::npos) comma = files.size();
        if (comma > start) paths.push_back(files.substr(start, comma - start));
        start = comma + 1;
    }
    if (paths.empty()) usage_error(option_name + " shares: needs share files: shares:FILE,FILE,...");
    return shares::combine_files(paths);
}

// A prefix is named in errors only if it looks like one (short, lower-case word): a bare
// secret given without a prefix must not end up in the message.
bool looks_like_prefix(std::string_view prefix) {
    if (prefix.empty() || prefix.size() > 12) return false;
    for (char c : prefix) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return false;
    }
    return true;
}

}  // namespace

SecretBytes read_secret(const std::optional<std::string>& source, std::string_view what,
                        std::string_view option_name, Prompt prompt) {
    const std::string option(option_name);
    if (!source) {
        if (isatty(STDIN_FILENO)) return prompt_on_terminal(what, prompt);
        usage_error("no " + option + " given and stdin is not a terminal: give " + option +
                    " env:VAR, file:PATH, fd:N or stdin");
    }
    const std::string& spec = *source;
    if (spec == "stdin") return read_stdin(what, option, prompt);

    const auto colon = spec.find(':');
    const std::string_view prefix = colon == std::string::npos ? std::string_view{}
                                                               : std::string_view(spec).substr(0, colon);
    // Copied into a std::string only for known prefixes, where it is a name, not a secret.
    const auto rest = [&] { return spec.substr(colon + 1); };
    if (prefix == "pass") return read_pass(std::string_view(spec).substr(colon + 1));
    if (prefix == "env") return read_environment(rest(), option);
    if (prefix == "file") return read_file(rest(), option);
    if (prefix == "fd") return read_descriptor(rest(), option);
    if (prefix == "shares") return read_shares(rest(), option);

    const std::string choices = "use env:VAR, file:PATH, fd:N, stdin or pass:TEXT";
    // The text before the colon is not repeated: it may be the start of a password typed
    // where its source belongs.
    if (colon != std::string::npos && looks_like_prefix(prefix)) {
        usage_error(option + ": unknown secret source (the text before ':' is none of env, file, fd, pass, "
                             "shares): " + choices);
    }
    usage_error(option + " takes a secret source, not the secret itself: " + choices);
}

}  // namespace p11vault
