// SPDX-License-Identifier: Apache-2.0
// migrate: token -> token in one step, in memory (docs/cli.md, "migrate"). The source's
// keys leave it by backup's paths into a PKCS#12 image under a random password that is
// never shown or written, and enter the target by restore's paths, all or nothing;
// afterwards the target's public keys are compared with the source's.
//
// Usage:
//     p11vault::MigrateSpec spec;
//     spec.from.label = "old-hsm";
//     spec.to.label = "new-hsm";
//     spec.keys.all = true;
//     p11vault::MigrateReport report = p11vault::migrate(spec, my_secrets, my_events);
//
// The source's PIN is asked for, then the target's (SecretPurpose::token_pin, subjects
// `token "old-hsm"` and `token "new-hsm"`). When both tokens are in one module it is
// loaded once. Progress: Events::progress, phase "migrate".
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "p11vault/backup.hpp"
#include "p11vault/events.hpp"
#include "p11vault/export.hpp"
#include "p11vault/key_result.hpp"
#include "p11vault/restore.hpp"
#include "p11vault/token.hpp"

namespace p11vault {

struct MigrateSpec {
    TokenSpec from, to;                   // both must select a token (Error(usage))
    KeySelection keys;
    bool token_wrap_only = false;
    ConflictPolicy on_conflict = ConflictPolicy::fail;
    bool extractable = false;
    bool dry_run = false;
    std::chrono::milliseconds lock_wait{10'000};
    bool renumber_duplicate_ids = false;
    bool skip_unsupported = false;
    std::size_t max_objects = 1'000;      // what may go onto the target (--max-objects)
    std::size_t max_label_length = 256;   // (--max-label-length)
    // Sessions used at once for the per-key work (a network HSM answers each call after a
    // round trip, and serves many sessions in parallel); 0: chosen from each token.
    unsigned jobs = 0;
};

struct MigrateReport {
    TokenDescription from, to;
    // The migrated keys (path: onto the target, source_path: out of the source; status as
    // restore's), then those that could not leave the source (skip_unsupported).
    std::vector<KeyResult> keys;
    std::size_t certificates_written = 0;
    std::vector<std::string> export_warnings, import_warnings;
    bool dry_run = false;
};

// Error(usage) when a token is not selected, both are one token, or one module would be
// loaded with two init parameters; Error(failure) when a migrated key is missing on the
// target or has another public key afterwards; and backup's and restore's errors.
P11VAULT_EXPORT MigrateReport migrate(const MigrateSpec& spec, SecretProvider& secrets, Events& events);

}  // namespace p11vault
