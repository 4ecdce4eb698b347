// SPDX-License-Identifier: Apache-2.0
// What a run did with each key, for the human output, --json and --record.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace p11vault {

// One key of a backup, restore or verify run.
struct KeyReport {
    std::vector<std::uint8_t> id;
    std::string label;
    std::string type;                            // "RSA-2048", "AES-256"
    bool secret_key = false;                     // a CKO_SECRET_KEY (a secretBag), not a private key
    std::string path;                            // extraction or import path
    std::optional<std::string> certificate_subject;
    std::vector<std::uint8_t> spki_sha256;
    std::vector<std::uint8_t> certificate_sha256;
    std::string status = "ok";                   // restore: "restored", "skipped", "replaced"
    std::vector<std::string> notes;              // why a path was not taken, warnings
    // restore: attributes the token did not set as asked and p11vault set afterwards
    // with C_SetAttributeValue ("CKA_SENSITIVE", ...).
    std::vector<std::string> repaired;
    // restore: the file's id when --renumber-duplicate-ids gave the key another one
    std::optional<std::vector<std::uint8_t>> renumbered_from;
};

}  // namespace p11vault
