// SPDX-License-Identifier: Apache-2.0
#include "src/token_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "p11vault/error.hpp"
#include "src/ossl.hpp"

namespace p11vault {

namespace {

bool writable_directory(const char* path) {
    struct stat info {};
    return path != nullptr && *path == '/' && ::stat(path, &info) == 0 && S_ISDIR(info.st_mode) &&
           ::access(path, W_OK | X_OK) == 0;
}

std::string lock_directory() {
    if (writable_directory("/run/lock")) return "/run/lock";
    if (const char* runtime = std::getenv("XDG_RUNTIME_DIR"); writable_directory(runtime)) return runtime;
    return "/tmp";
}

}  // namespace

std::string token_lock_path(const pkcs11::TokenInfo& token, const std::string& module_init) {
    // NUL-separated, so no two different identities give the same text.
    std::string identity = token.manufacturer;
    for (const std::string* part : {&token.model, &token.serial, &module_init}) {
        identity.push_back('\0');
        identity += *part;
    }
    auto digest = ossl::sha256(reinterpret_cast<const std::uint8_t*>(identity.data()), identity.size());
    digest.resize(12);
    return fmt::format("{}/p11vault-token-{}.lock", lock_directory(), ossl::hex(digest));
}

TokenLock::TokenLock(const pkcs11::Session& session, LockMode mode, std::chrono::milliseconds wait)
    : path_(token_lock_path(session.module().token_info(session.slot()), session.module().init_string())) {
    // Read-only is enough for flock, and lets another user open a lock file the first
    // user created (0644 in a sticky directory).
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd_ < 0)
        throw Error(ErrorKind::failure, fmt::format("cannot open the token's lock file {}: {}", path_, std::strerror(errno)));
    const int operation = (mode == LockMode::exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (::flock(fd_, operation) != 0) {
        const int error = errno;
        if (error == EINTR) continue;
        if (error != EWOULDBLOCK || std::chrono::steady_clock::now() >= deadline) {
            ::close(fd_);
            if (error != EWOULDBLOCK)
                throw Error(ErrorKind::failure, fmt::format("cannot lock {}: {}", path_, std::strerror(error)));
            throw Error(ErrorKind::refused,
                        fmt::format("another p11vault run is {} this token (it holds {}); waited {:g} s. Run again "
                                    "when it has finished, or wait longer with --lock-wait SECONDS",
                                    mode == LockMode::exclusive ? "using" : "writing to", path_,
                                    std::chrono::duration<double>(wait).count()));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

TokenLock::~TokenLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock; the file stays for the next run
}

}  // namespace p11vault
