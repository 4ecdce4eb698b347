// SPDX-License-Identifier: Apache-2.0
// Backups escrowed to key recovery officers (docs/escrow.md): what backup writes with
// --recipient, what restore and verify open with --recipient-key or --escrow-share.
//
// The content is the PKCS#12 p11vault writes anyway, under the fixed password
// kInnerPassword: the envelope is the protection (only an officer's private key, or M
// officers' keys, open it), and a fixed password lets an officer holding a key file open
// a 1-of-N file with OpenSSL alone (docs/escrow.md has the recipe).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "p11vault/secret.hpp"
#include "src/escrow/officer_key.hpp"
#include "src/escrow/officers.hpp"

namespace p11vault::escrow {

inline constexpr const char* kInnerPassword = "p11vault-escrow";

enum class FileKind { pkcs12, envelope, threshold };
FileKind detect(std::span<const std::uint8_t> data);

// Wraps the PKCS#12 bytes for the officers: a CMS AuthEnvelopedData when threshold is 1,
// the threshold format otherwise.
std::vector<std::uint8_t> make_escrow_file(std::span<const std::uint8_t> pkcs12,
                                           const std::vector<OfficerCertificate>& officers, unsigned threshold);

// What an escrow file says without any key.
struct RecipientSummary {
    std::string algorithm;                       // "RSAES-OAEP-SHA256", "ECDH-stdDH-SHA256-KDF"
    std::string issuer;                          // RFC 2253, empty for a key identifier
    std::string serial;                          // hex
    std::string subject_key_id;                  // hex, when the file names one (or the certificate has one)
    std::optional<std::string> subject;          // threshold files carry the certificates
    std::optional<std::string> certificate_sha256;  // hex
};
struct EscrowSummary {
    FileKind kind = FileKind::envelope;
    unsigned format_version = 0;                 // threshold files; 0 for the CMS file
    unsigned threshold = 1;
    std::string content_encryption;              // "AES-256-GCM"
    std::vector<RecipientSummary> recipients;
};
EscrowSummary describe(std::span<const std::uint8_t> data, const std::string& what);

struct OpenedEscrow {
    SecretBytes pkcs12;
    // The recipients that opened it, as certificate SHA-256 (hex) where known, else their
    // issuer and serial.
    std::vector<std::string> opened_by;
    std::vector<std::string> warnings;
};

// Opens an escrow file with officers' keys on their tokens and/or share files from
// `escrow-share`. Error(usage) when neither is given; Error(bad_password) when a key is
// not one of the recipients, or (threshold) fewer than the threshold opened, naming it;
// Error(bad_input) for an altered file.
OpenedEscrow open_escrow_file(std::span<const std::uint8_t> data, const std::string& what,
                              const std::vector<OfficerKeySpec>& officer_keys,
                              const std::vector<std::string>& share_files);

// escrow-share: the share text an officer's key opens in a threshold file.
// Error(bad_password) when the key is not one of the file's officers.
struct ExtractedShare {
    SecretBytes text;
    unsigned number = 0;       // 1..N
    std::string officer;       // the certificate's subject
};
ExtractedShare extract_share(std::span<const std::uint8_t> data, const std::string& what, const OfficerKeySpec& key);

}  // namespace p11vault::escrow
