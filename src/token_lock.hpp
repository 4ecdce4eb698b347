// SPDX-License-Identifier: Apache-2.0
// One writer per token: two restores of one file onto one token at the same time would
// each find no conflict and write every key twice. Writers (restore, migrate's target,
// the drill) hold an exclusive lock on the token for the whole write phase, conflicts
// included; readers that must see a consistent token (backup, migrate's source) hold a
// shared one, so a backup never sees a replace half-done (old and new object at once).
//
// The lock is an flock(2) on a file named after the token, in the first of /run/lock,
// $XDG_RUNTIME_DIR and /tmp that is a writable directory: /run/lock first because it is
// shared by every user of the machine, as a token is. The name is made from what the
// token says of itself (manufacturer, model, serial number) and the module's
// initialization parameters (NSS softoken tells its databases apart by them, not by
// serial), not from the module's path: the same token reached directly and through the
// p11-kit proxy gets the same lock. flock locks die with their process, so a killed run
// never leaves the token locked.
#pragma once

#include <chrono>
#include <string>

#include "pkcs11/session.hpp"

namespace p11vault {

enum class LockMode { shared, exclusive };

class TokenLock {
public:
    // Takes the lock of the token `session` is open on, waiting up to `wait` for another
    // run to release it. Error(refused, exit 6) naming the lock file when it stays taken;
    // Error(failure) when no lock file can be opened.
    TokenLock(const pkcs11::Session& session, LockMode mode, std::chrono::milliseconds wait);
    ~TokenLock();
    TokenLock(const TokenLock&) = delete;
    TokenLock& operator=(const TokenLock&) = delete;

    const std::string& path() const { return path_; }

private:
    std::string path_;
    int fd_ = -1;
};

// The lock file of a token, for tests and messages.
std::string token_lock_path(const pkcs11::TokenInfo& token, const std::string& module_init);

// The default wait of --lock-wait.
inline constexpr std::chrono::seconds kDefaultLockWait{10};

}  // namespace p11vault
