// SPDX-License-Identifier: Apache-2.0
// backup: token -> PKCS#12. Chooses per key how it leaves the token (extraction.md),
// never writes anything unless every selected key can be exported.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "p11vault/secret.hpp"
#include "pkcs11/session.hpp"
#include "src/inventory.hpp"
#include "src/pkcs12/writer.hpp"
#include "src/quirks.hpp"
#include "src/report.hpp"
#include "src/token_lock.hpp"

namespace p11vault {

// How a key left the token; names as printed and recorded.
enum class ExtractionPath { token_wrap, token_wrap_legacy, host_reencrypt, attribute_read };
const char* path_name(ExtractionPath path);

struct KeySelection {
    bool all = false;
    std::vector<std::vector<std::uint8_t>> ids;  // --id (repeatable)
    std::vector<std::string> labels;             // --label (repeatable)
    bool empty() const { return !all && ids.empty() && labels.empty(); }
};

struct BackupOptions {
    KeySelection selection;
    pkcs12::Profile profile = pkcs12::Profile::modern;
    std::uint64_t iterations = 0;                // 0: the profile's default
    std::vector<std::string> chain_files;        // --chain PEM files
    bool token_wrap_only = false;
    // How long to wait for a run writing to the token (src/token_lock.hpp).
    std::chrono::milliseconds lock_wait = kDefaultLockWait;
};

struct BackupResult {
    std::vector<KeyReport> keys;
    std::size_t certificates = 0;                // certificates in the file, chain included
    std::vector<std::string> warnings;
    std::vector<std::uint8_t> file;              // the PFX, to be written atomically
};

// Selects keys from `inventory` and exports them. Error(refused) naming every key that
// cannot be exported (and why), before anything is produced.
BackupResult run_backup(pkcs11::Session& session, const TokenQuirks& quirks, const Inventory& inventory,
                        const SecretBytes& password, const BackupOptions& options);

// The indexes (into inventory.objects) of the private keys the selection names.
// Error(usage) for an empty selection; Error(failure) naming what exists when nothing matches.
std::vector<std::size_t> select_private_keys(const Inventory& inventory, const KeySelection& selection);

}  // namespace p11vault
