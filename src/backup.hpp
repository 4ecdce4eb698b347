// SPDX-License-Identifier: Apache-2.0
// backup: token -> PKCS#12. Chooses per key how it leaves the token (extraction.md),
// never writes anything unless every selected key can be exported.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "p11vault/backup.hpp"  // KeySelection
#include "p11vault/secret.hpp"
#include "pkcs11/session.hpp"
#include "src/extraction_path.hpp"
#include "src/inventory.hpp"
#include "src/pkcs12/writer.hpp"
#include "src/quirks.hpp"
#include "src/report.hpp"
#include "src/token_lock.hpp"

namespace p11vault {


struct BackupOptions {
    KeySelection selection;
    pkcs12::Profile profile = pkcs12::Profile::modern;
    std::uint64_t iterations = 0;                // 0: the profile's default
    std::vector<std::string> chain_files;        // --chain PEM files
    bool token_wrap_only = false;
    // Back up the keys that can leave the token and list the others (skipped) instead
    // of refusing the whole backup.
    bool skip_unsupported = false;
    // How long to wait for a run writing to the token (src/token_lock.hpp).
    std::chrono::milliseconds lock_wait = kDefaultLockWait;
    // Different keys under one CKA_ID go into the file as they are (migrate
    // --renumber-duplicate-ids, whose restore renumbers them); else Error(refused).
    bool allow_duplicate_ids = false;
    // Sessions exporting at once (--jobs); 0: chosen from the token (choose_jobs).
    unsigned jobs = 0;
};

struct BackupResult {
    std::vector<KeyReport> keys;
    std::size_t certificates = 0;                // certificates in the file, chain included
    std::vector<std::string> warnings;
    // --skip-unsupported: the selected keys left on the token, status
    // "skipped-unsupported", the reasons in their notes.
    std::vector<KeyReport> skipped;
    std::vector<std::uint8_t> file;              // the PFX, to be written atomically
};

// Selects keys from `inventory` and exports them. Error(refused) naming every key that
// cannot be exported (and why), before anything is produced.
// The keys are exported over the sessions of `pool` (session 0 is the run's own).
class SessionPool;
BackupResult run_backup(SessionPool& pool, const TokenQuirks& quirks, const Inventory& inventory,
                        const SecretBytes& password, const BackupOptions& options);

// The indexes (into inventory.objects) of the private keys the selection names.
// Error(usage) for an empty selection; Error(failure) naming what exists when no private
// or secret key matches, or an --id/--label names none.
std::vector<std::size_t> select_private_keys(const Inventory& inventory, const KeySelection& selection);
// The secret keys (CKO_SECRET_KEY) the selection names; --all is every one.
std::vector<std::size_t> select_secret_keys(const Inventory& inventory, const KeySelection& selection);

// Error(refused) naming every CKA_ID that two selected private keys share unless they are
// one key: both show their own public key (not one borrowed from a same-id object) and
// the two are equal. A file with two keys under one localKeyID cannot be restored to what
// the token held: an application finding the key by CKA_ID would get either.
void refuse_duplicate_ids(const Inventory& inventory, const std::vector<std::size_t>& selected);

}  // namespace p11vault
