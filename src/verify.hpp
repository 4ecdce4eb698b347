// SPDX-License-Identifier: Apache-2.0
// verify: what a PKCS#12 file holds, whether it is consistent, and whether it matches a
// token. Everything here reads; nothing writes to a token (the drill is in drill.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pkcs11/session.hpp"
#include "src/inventory.hpp"
#include "src/pkcs12/reader.hpp"
#include "src/token_capability.hpp"

namespace p11vault {

struct VerifiedCertificate {
    std::string subject, issuer;
    std::string not_before, not_after;       // ISO 8601 UTC
    bool expired = false;
    std::vector<std::uint8_t> sha256;        // of the DER, as `openssl x509 -fingerprint -sha256`
    std::vector<std::uint8_t> local_key_id;  // first, if any
    std::optional<std::string> friendly_name;
    std::optional<std::size_t> key;          // index of the key it pairs with
};

struct VerifiedKey {
    std::string where;
    std::vector<std::uint8_t> local_key_id;
    std::optional<std::string> friendly_name;
    std::string type;                        // "RSA-2048", or the algorithm (OID) when unsupported
    bool supported = true;                   // OpenSSL parsed it and p11vault can put it on a token
    std::vector<std::uint8_t> spki_sha256;
    std::string protection;                  // how the bag is encrypted
    std::optional<std::size_t> certificate;  // index into certificates
    ossl::Pkey public_key;
};

struct Verification {
    std::string mac;                         // "HMAC-SHA256 (PKCS#12 KDF), 600000 iterations" or "none"
    std::vector<std::string> safe_protection;
    std::vector<std::string> quirks;
    std::vector<VerifiedKey> keys;
    std::vector<VerifiedCertificate> certificates;
    std::vector<std::string> warnings;
};

// Decrypts every bag on the host and checks every key against its certificate.
// Error(bad_input) for a key that does not match its certificate, or a bag that does not
// decrypt although the MAC verified; Error(bad_password) from the reader.
Verification verify_file(pkcs12::Reader& reader);

struct TokenComparison {
    std::vector<std::string> missing_on_token;   // file keys the token lacks (or with another CKA_ID)
    std::vector<std::string> missing_in_file;    // selected token keys the file lacks
    // Keys on the token without the public key object or certificate the file has for
    // them: a restore stopped half-way (kill -9). A difference, like the two above.
    std::vector<std::string> incomplete_on_token;
    // Matched keys the token reports as extractable or not sensitive: not a difference
    // (restore --extractable makes them), but said, since a token may ignore the template.
    std::vector<std::string> unprotected_on_token;
    // File keys of a type the token cannot hold (TokenCapability): a restore onto it would
    // refuse them. A warning, not a difference (the file may be meant for another token).
    std::vector<std::string> would_not_restore;
    std::size_t matched = 0;
    std::size_t differences() const {
        return missing_on_token.size() + missing_in_file.size() + incomplete_on_token.size();
    }
    bool same() const { return differences() == 0; }
};

// The file's keys the token cannot hold, in words for TokenComparison::would_not_restore.
std::vector<std::string> keys_the_token_cannot_hold(const Verification& verification, TokenCapability& capability);

// Compares the file's keys with the token's private keys by public key (SPKI) and CKA_ID.
// No private key is read from the token: public keys come from public attributes, public
// key objects and certificates. `only_ids`, when not empty, limits the token side.
TokenComparison compare_with_token(const Verification& verification, const Inventory& inventory,
                                   const std::vector<std::vector<std::uint8_t>>& only_ids);

}  // namespace p11vault
