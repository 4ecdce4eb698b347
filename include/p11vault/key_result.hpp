// SPDX-License-Identifier: Apache-2.0
// What an operation did with one key: backup, restore and migrate return one KeyResult
// per key. Value types only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "p11vault/export.hpp"

namespace p11vault {

// How a key moved (docs/extraction.md). Out of a token (backup): token_wrap (wrapped by
// the token, never in the clear on the host), token_wrap_legacy (the same with 3DES),
// host_reencrypt (decrypted on the host for a moment), attribute_read (an extractable,
// not sensitive key read as attributes). Onto a token (restore): token_unwrap,
// token_unwrap_legacy, host_decrypt. none: it did not move (skipped, dry run before the
// path is known, refused).
enum class KeyPath {
    none,
    token_wrap,
    token_wrap_legacy,
    host_reencrypt,
    attribute_read,
    token_unwrap,
    token_unwrap_legacy,
    host_decrypt,
};

// "token-wrap", "host-decrypt", ...: the names of docs/json.md; "" for none.
P11VAULT_EXPORT const char* key_path_name(KeyPath path);

// True for the paths on which the key was in the clear on this host for a moment.
inline bool decrypted_on_host(KeyPath path) {
    return path == KeyPath::host_reencrypt || path == KeyPath::attribute_read || path == KeyPath::host_decrypt;
}

struct KeyResult {
    std::vector<std::uint8_t> id;                 // CKA_ID / localKeyID
    std::string label;                            // CKA_LABEL / friendlyName
    std::string type;                             // "RSA-2048", "EC-P256", "AES-256"
    bool secret_key = false;                      // a CKO_SECRET_KEY (a secretBag), not a private key
    KeyPath path = KeyPath::none;                 // how it moved (migrate: onto the target)
    KeyPath source_path = KeyPath::none;          // migrate: how it left the source
    // backup "ok", "skipped-unsupported"; restore "restored", "replaced", "would-restore",
    // "skipped-conflict", "skipped-unsupported" (docs/json.md).
    std::string status;
    std::optional<std::string> certificate_subject;  // RFC 2253
    std::vector<std::uint8_t> spki_sha256;
    std::vector<std::uint8_t> certificate_sha256;
    std::vector<std::string> notes;               // paths tried and not taken, and why
    std::vector<std::string> repaired;            // restore: attributes set after creation ("CKA_SENSITIVE")
    std::optional<std::vector<std::uint8_t>> renumbered_from;  // restore: the file's id, when renumbered
};

// Limits on what a PKCS#12 file may make p11vault do (--max-iterations, --max-file-size,
// --max-objects, --max-label-length).
struct FileLimits {
    std::uint64_t max_iterations = 10'000'000;
    std::size_t max_file_size = 64u << 20;
    std::size_t max_objects = 1'000;
    std::size_t max_label_length = 256;
};

}  // namespace p11vault
