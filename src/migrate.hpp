// SPDX-License-Identifier: Apache-2.0
// migrate: token -> token in one step, in memory. The source's keys leave it by the
// same extraction paths as backup, into a PKCS#12 image protected by a transient random
// password that is never shown or written, and enter the target by restore's paths and
// all-or-nothing rule. Afterwards the target's public keys are compared with the source's.
#pragma once

#include "src/backup.hpp"
#include "src/restore.hpp"

namespace p11vault {

struct MigrateResult {
    BackupResult exported;
    RestoreResult imported;
};

// Error(failure) when, after the restore, a migrated key is missing on the target or has
// another public key. `limits` bounds what goes onto the target as restore's do
// (--max-objects, --max-label-length): Error(bad_input) before anything is written.
MigrateResult run_migrate(pkcs11::Session& source, const TokenQuirks& source_quirks, pkcs11::Session& target,
                          const TokenQuirks& target_quirks, const BackupOptions& backup_options,
                          const RestoreOptions& restore_options, const pkcs12::Limits& limits = {});

}  // namespace p11vault
