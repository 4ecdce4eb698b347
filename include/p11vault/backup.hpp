// SPDX-License-Identifier: Apache-2.0
// backup: a token's keys -> a password-protected PKCS#12 file (docs/cli.md, "backup"), or
// one escrowed to recovery officers' certificates (docs/escrow.md).
//
// Usage:
//     p11vault::BackupSpec spec;
//     spec.token.module = "/usr/lib/softhsm/libsofthsm2.so";
//     spec.token.label = "CA";
//     spec.keys.all = true;
//     spec.out = "ca.p12";             // or leave empty and take report.file
//     p11vault::BackupReport report = p11vault::backup(spec, my_secrets, my_events);
//
// Order, so that a mistake costs no PIN try and no secret is asked for in vain: the spec
// is checked (iterations, `out`, escrow certificates, an existing `out`) before the token
// is opened; the token's PIN is asked for (SecretPurpose::token_pin) when it is opened;
// the keys are selected and checked (duplicates, none matching) under the token's shared
// lock before the file's password is asked for (SecretPurpose::new_file_password,
// subject: `out`, or "the backup" when the file is not written; not asked for an escrowed
// backup). Nothing is written unless every selected key can be exported (or
// skip_unsupported). Progress goes to Events::progress (phase "backup"), one event per
// key; warnings are in the report, not sent to Events::warning, so that a caller shows
// them with the results.
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

// Which keys: every private and secret key, or those with these CKA_IDs or CKA_LABELs.
struct KeySelection {
    bool all = false;
    std::vector<std::vector<std::uint8_t>> ids;
    std::vector<std::string> labels;
    bool empty() const { return !all && ids.empty() && labels.empty(); }
};

// How the file is protected (docs/cli.md, --profile): modern PBES2 AES-256 with an
// HMAC-SHA256 MAC, fips the same with a PBMAC1 MAC, legacy 3DES with a SHA-1 MAC.
enum class FileProfile { modern, fips, legacy };

// "modern", "fips", "legacy".
P11VAULT_EXPORT const char* file_profile_name(FileProfile profile);

// Escrow instead of a password: the PKCS#12 goes into a CMS envelope that the private key
// of `threshold` of the officers' certificates opens.
struct EscrowSpec {
    std::vector<std::string> recipient_certificates;  // PEM files; empty: no escrow
    unsigned threshold = 1;
    bool allow_expired = false;   // take certificates that expired or are not valid yet
};

struct BackupSpec {
    TokenSpec token;              // a URI's id= and object= add to `keys`
    KeySelection keys;
    FileProfile profile = FileProfile::modern;
    std::uint64_t iterations = 0;               // KDF iterations; 0: the profile's default
    std::vector<std::string> chain_files;       // PEM files of issuer certificates to include
    bool token_wrap_only = false;               // refuse a key the token cannot wrap itself
    bool skip_unsupported = false;              // back up the others and report the rest as skipped
    std::chrono::milliseconds lock_wait{10'000};  // for another run writing to the token
    // Sessions used at once for the per-key work (a network HSM answers each call after a
    // round trip, and serves many sessions in parallel); 0: chosen from the token.
    unsigned jobs = 0;
    EscrowSpec escrow;
    // Where the file goes, written atomically (complete or absent; mode 0600); empty:
    // nothing is written, the file is only in BackupReport::file. Messages name it --out.
    std::string out;
    bool overwrite = false;                     // replace an existing `out` (else Error(refused))
};

struct EscrowOfficer {
    std::string subject;                        // RFC 2253
    std::string key_type;                       // "RSA-3072", "EC-P256"
    std::vector<std::uint8_t> certificate_sha256;
};

struct BackupReport {
    TokenDescription token;
    std::vector<KeyResult> keys;                // status "ok"
    std::vector<KeyResult> skipped;             // skip_unsupported: left on the token, why in notes
    std::size_t certificates = 0;               // in the file, chain included
    std::vector<std::string> warnings;          // weak password, stale temporary files removed, ...
    std::vector<EscrowOfficer> escrow_recipients;    // empty when not escrowed
    unsigned escrow_threshold = 0;
    std::vector<std::uint8_t> file;             // the file's bytes (as written to `out`)
    std::vector<std::uint8_t> file_sha256;
};

// Error(usage) for a bad spec; Error(token) for the module, token or PIN; Error(refused)
// naming every key that cannot be exported, an existing `out`, a held lock;
// Error(failure) when no key matches the selection.
P11VAULT_EXPORT BackupReport backup(const BackupSpec& spec, SecretProvider& secrets, Events& events);

}  // namespace p11vault
