// SPDX-License-Identifier: Apache-2.0
// What a restore is asked to do: read by its planning (restore_plan.hpp) and by the run
// itself (restore.hpp), in a header of its own so that neither has to include the other.
#pragma once

#include <chrono>

#include "p11vault/restore.hpp"  // ConflictPolicy
#include "src/token_lock.hpp"

namespace p11vault {

struct RestoreOptions {
    bool dry_run = false;
    ConflictPolicy on_conflict = ConflictPolicy::fail;
    bool extractable = false;      // CKA_EXTRACTABLE of restored private keys
    bool skip_unsupported = false; // restore the rest when a key type cannot go on the token
    // How long to wait for another run that holds the token's lock (src/token_lock.hpp).
    std::chrono::milliseconds lock_wait = kDefaultLockWait;
    // Sessions writing at once (--jobs); 0: chosen from the token (choose_jobs).
    unsigned jobs = 0;
    bool renumber_duplicate_ids = false;  // different keys under one id: each gets its SHA-1 id
};

}  // namespace p11vault
