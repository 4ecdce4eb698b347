// SPDX-License-Identifier: Apache-2.0
// restore: a PKCS#12 file from any producer -> a token, identity intact (CKA_ID =
// localKeyID, CKA_LABEL = friendlyName), keys sensitive and not extractable unless asked,
// all or nothing (docs/cli.md, "restore").
//
// Usage:
//     p11vault::RestoreSpec spec;
//     spec.token.label = "CA-new";
//     spec.file = bytes_of("ca.p12");
//     spec.file_name = "ca.p12";
//     p11vault::RestoreReport report = p11vault::restore(spec, my_secrets, my_events);
//
// The file's password is asked for first (SecretPurpose::file_password, subject
// file_name) and the file's MAC checked with it (Error(bad_password)) before the token is
// opened and its PIN asked for. Every object is planned before the first write (pairing,
// ids, labels, key types, conflicts); on any failure every object this run created is
// destroyed again. Writes hold the token's exclusive lock. Progress: Events::progress,
// phase "restore".
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "p11vault/events.hpp"
#include "p11vault/export.hpp"
#include "p11vault/key_result.hpp"
#include "p11vault/token.hpp"

namespace p11vault {

// When an object with the same CKA_ID or label exists on the token.
enum class ConflictPolicy { fail, skip, replace };

struct RestoreSpec {
    TokenSpec token;
    std::vector<std::uint8_t> file;       // the PKCS#12 (DER)
    std::string file_name;                // names the file in messages and the password request
    FileLimits limits;
    bool dry_run = false;                 // check everything, write nothing
    ConflictPolicy on_conflict = ConflictPolicy::fail;
    bool extractable = false;             // CKA_EXTRACTABLE of restored keys
    bool skip_unsupported = false;        // restore the others when the token cannot hold a key
    std::chrono::milliseconds lock_wait{10'000};
    bool renumber_duplicate_ids = false;  // different keys under one id: each gets its SHA-1 id
    // Sessions used at once for the per-key work (a network HSM answers each call after a
    // round trip, and serves many sessions in parallel); 0: chosen from the token.
    unsigned jobs = 0;
};

struct RestoreReport {
    TokenDescription token;
    std::vector<KeyResult> keys;          // every key of the file, with its status
    std::size_t certificates_written = 0; // created (or, dry run, that would be)
    std::vector<std::string> quirks;      // producer quirks the file needed to be read
    std::vector<std::string> warnings;
    bool dry_run = false;
};

// Error(bad_password) for a wrong password; Error(bad_input) for a malformed or
// inconsistent file; Error(token) for the module, token or PIN; Error(refused) for a
// conflict, a key type the token cannot hold, a held lock.
P11VAULT_EXPORT RestoreReport restore(const RestoreSpec& spec, SecretProvider& secrets, Events& events);

}  // namespace p11vault
