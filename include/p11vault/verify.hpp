// SPDX-License-Identifier: Apache-2.0
// verify: what a PKCS#12 file holds and whether it is sound (MAC, every bag decrypts,
// every key matches its certificate); optionally whether it matches a token (compared by
// public key and CKA_ID, no private key read) and a drill: restore into a throw-away
// SoftHSM token and sign (and RSA-decrypt) with every key (docs/cli.md, "verify").
//
// Usage:
//     p11vault::VerifySpec spec;
//     spec.file = bytes_of("ca.p12");
//     spec.file_name = "ca.p12";
//     spec.drill = true;
//     spec.drill_environment = &my_softhsm_conf;  // a DrillEnvironment, below
//     p11vault::VerifyReport report = p11vault::verify(spec, my_secrets, my_events);
//     bool good = report.drill_ok() && (!report.comparison || report.comparison->same());
//
// The drill's SoftHSM token lives in a private temporary directory under $TMPDIR
// (default /tmp), removed afterwards. SoftHSM2 reads its configuration only from
// $SOFTHSM2_CONF when it is initialized, and the library never changes the process
// environment: the caller's DrillEnvironment points the variable at the drill's
// configuration and puts it back. Run no drill in a process where SoftHSM is already
// initialized (Error(token)).
//
// Nothing is written to any token but the drill's own, which is deleted afterwards. The
// password is asked for first (SecretPurpose::file_password); the token's PIN when the
// token is opened. A drill or comparison that finds a difference is not an Error: the
// report says so and the caller decides (the command-line tool exits 4).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "p11vault/events.hpp"
#include "p11vault/export.hpp"
#include "p11vault/key_result.hpp"
#include "p11vault/token.hpp"

namespace p11vault {

// How the drill reaches its throw-away SoftHSM2 token. SoftHSM2 takes its configuration
// file from $SOFTHSM2_CONF (else ~/.config/softhsm2/softhsm2.conf, else
// /etc/softhsm/softhsm2.conf) in C_Initialize, and from nowhere else. The library never
// sets, changes or removes an environment variable (setenv is not thread-safe, and every
// thread and module of the process sees the change), so the caller does it, here, and
// knows what else its process does meanwhile. The command-line tool sets SOFTHSM2_CONF.
class P11VAULT_EXPORT DrillEnvironment {
public:
    virtual ~DrillEnvironment();
    // Called once, after any comparison with a token and just before the drill loads
    // SoftHSM2: make SoftHSM2 read `config_path` (set SOFTHSM2_CONF to it). The drill
    // checks that $SOFTHSM2_CONF names it and else stops with Error(usage), loading
    // nothing: a drill must never make its token in the caller's SoftHSM2 directory.
    virtual void enter(const std::string& config_path) = 0;
    // Called once after enter() returned, when the drill has released SoftHSM2 (also when
    // it failed): put SOFTHSM2_CONF back as it was.
    virtual void leave() noexcept = 0;
};

struct VerifySpec {
    std::vector<std::uint8_t> file;       // the PKCS#12 (DER)
    std::string file_name;                // names the file in messages and the password request
    FileLimits limits;
    std::optional<TokenSpec> compare_with;  // compare the file's keys with this token's
    bool drill = false;
    std::string drill_module;             // SoftHSM2 for the drill; empty: Debian's path
    DrillEnvironment* drill_environment = nullptr;  // needed by a drill (Error(usage) without), not owned
    unsigned drill_jobs = 0;              // sessions of the drill's restore and signatures; 0: chosen
};

struct FileKey {
    std::vector<std::uint8_t> id;         // localKeyID
    std::optional<std::string> label;     // friendlyName
    std::string type;                     // "RSA-2048", or the algorithm (OID) when unsupported
    bool supported = true;                // p11vault can put it on a token
    std::vector<std::uint8_t> spki_sha256;  // empty when unknown
    std::string protection;               // how its bag is encrypted
    std::optional<std::size_t> certificate;  // index into VerifyReport::certificates
};

struct FileCertificate {
    std::string subject, issuer;          // RFC 2253
    std::string not_before, not_after;    // ISO 8601 UTC
    bool expired = false;
    std::vector<std::uint8_t> sha256;     // of the DER
    std::vector<std::uint8_t> id;         // localKeyID, if any
    std::optional<std::string> label;     // friendlyName
    std::optional<std::size_t> key;       // index into VerifyReport::keys
};

// The file against a token; each line names a key ("id=01 label=\"ca\" RSA-2048 ...").
struct TokenMatch {
    std::vector<std::string> missing_on_token;     // file keys the token lacks
    std::vector<std::string> missing_in_file;      // token keys the file lacks
    std::vector<std::string> incomplete_on_token;  // a restore stopped half-way
    std::vector<std::string> unprotected_on_token; // extractable or not sensitive: said, not a difference
    std::vector<std::string> would_not_restore;    // key types the token cannot hold: said, not a difference
    std::size_t matched = 0;
    std::size_t differences() const {
        return missing_on_token.size() + missing_in_file.size() + incomplete_on_token.size();
    }
    bool same() const { return differences() == 0; }
};

struct DrillKeyResult {
    std::vector<std::uint8_t> id;
    std::string label;
    std::string type;
    std::string key;       // "id=01 label=\"ca\" RSA-2048"
    bool ok = false;
    std::string detail;    // "restored (host-decrypt), signed and verified, encrypted and decrypted"
};

struct VerifyReport {
    std::string mac;                      // "HMAC-SHA256 (PKCS#12 KDF), 600000 iterations" or "none"
    std::vector<std::string> safe_protection;
    std::vector<std::string> quirks;      // producer quirks the file needed
    std::vector<FileKey> keys;
    std::vector<FileCertificate> certificates;
    std::vector<std::string> warnings;
    std::optional<TokenDescription> token;  // the token compared with
    std::optional<TokenMatch> comparison;
    bool drilled = false;
    std::vector<DrillKeyResult> drill;
    bool drill_ok() const {
        for (const auto& key : drill)
            if (!key.ok) return false;
        return true;
    }
};

// Error(bad_password) for a wrong password; Error(bad_input) for a malformed file, a bag
// that does not decrypt although the MAC verified, a key that does not match its
// certificate; Error(token) when the drill's SoftHSM2 is missing or the token to compare
// with cannot be opened; Error(usage), before anything is asked or read, for a drill
// without a drill_environment.
P11VAULT_EXPORT VerifyReport verify(const VerifySpec& spec, SecretProvider& secrets, Events& events);

}  // namespace p11vault
