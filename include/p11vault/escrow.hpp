// SPDX-License-Identifier: Apache-2.0
// Backups escrowed to key recovery officers (docs/escrow.md): `backup --recipient` wraps
// the PKCS#12 for officers' certificates, `restore`/`verify --recipient-key` open it with
// an officer's private key on their token, `escrow-share` opens one officer's share of an
// M-of-N file for `--escrow-share`.
//
// The PKCS#12 inside an escrowed file has a fixed, published password
// (escrow_inner_password): the envelope is the protection, and a fixed password lets an
// officer holding a key file open a 1-of-N file with OpenSSL alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "p11vault/events.hpp"
#include "p11vault/export.hpp"
#include "p11vault/secret.hpp"

namespace p11vault {

// A recovery officer's private key on the officer's own token: an RFC 7512 URI
// (`--recipient-key pkcs11:token=KRA;object=officer1`), with the module and PIN source
// used where the URI names none of its own (`--recipient-module`, `--recipient-pin`: a
// PIN source of the command line, env:VAR, file:PATH, fd:N, stdin; absent: a prompt on a
// terminal).
struct RecoveryOfficerKey {
    std::string uri;
    std::optional<std::string> module;
    std::optional<std::string> pin_source;
};

// ---- Writing: officers' certificates ---------------------------------------------------

struct OfficerCertificateInfo {
    std::string source;      // the file it came from
    std::string subject;     // RFC 2253
    std::string key_type;    // "RSA-3072", "EC-P256"
    std::string sha256;      // hex, of the DER: the fingerprint records name it by
};

// Officers' certificates read and checked for `backup --recipient`, before anything is
// encrypted to them.
class P11VAULT_EXPORT OfficerCertificates {
public:
    // One PEM (or DER) certificate from each file: an RSA key of at least 2048 bits or an
    // EC key on P-256, P-384 or P-521; a keyUsage extension, when present, allowing
    // keyEncipherment (RSA) or keyAgreement (EC); valid now unless `allow_expired`.
    // Error(bad_input) for a file that is not a certificate or an unsupported key;
    // Error(refused) for a certificate that is expired, not yet valid or whose key usage
    // forbids the use; Error(usage) for the same certificate twice.
    static OfficerCertificates load(const std::vector<std::string>& paths, bool allow_expired);

    OfficerCertificates(OfficerCertificates&&) noexcept;
    OfficerCertificates& operator=(OfficerCertificates&&) noexcept;
    ~OfficerCertificates();

    const std::vector<OfficerCertificateInfo>& certificates() const;

    // The escrowed file around `pkcs12` (written with escrow_inner_password): a CMS
    // AuthEnvelopedData any one officer opens when `threshold` is 1, the p11vault
    // threshold format that `threshold` officers open together otherwise.
    // Error(usage) for a threshold above the number of certificates.
    std::vector<std::uint8_t> wrap(std::span<const std::uint8_t> pkcs12, unsigned threshold) const;

private:
    struct Loaded;
    explicit OfficerCertificates(std::unique_ptr<Loaded> loaded);
    std::unique_ptr<Loaded> loaded_;
};

// The password of the PKCS#12 inside every escrowed file ("p11vault-escrow").
P11VAULT_EXPORT SecretBytes escrow_inner_password();

// ---- Reading ---------------------------------------------------------------------------

enum class EscrowFormat {
    cms_envelope,  // CMS AuthEnvelopedData: any 1 of the officers opens it
    threshold,     // p11vault threshold format: M of N officers open it together
};

// A recipient as the escrowed file names it, without any key.
struct EscrowRecipient {
    std::string algorithm;                          // "RSAES-OAEP-SHA256", "ECDH-stdDH-SHA256-KDF"
    std::string issuer;                             // RFC 2253, empty for a key identifier
    std::string serial;                             // hex
    std::string subject_key_id;                     // hex, when the file names one
    std::optional<std::string> subject;             // threshold files carry the certificates
    std::optional<std::string> certificate_sha256;  // hex
};

struct EscrowSummary {
    EscrowFormat format = EscrowFormat::cms_envelope;
    unsigned format_version = 0;  // of the threshold format; 0 for the CMS file
    unsigned threshold = 1;
    std::string content_encryption;  // "AES-256-GCM"
    std::vector<EscrowRecipient> recipients;
};

// A backup file as it is on disk: a PKCS#12, or escrowed to recovery officers.
struct BackupFileBytes {
    std::vector<std::uint8_t> data;
    std::string sha256;      // hex, of `data`
    bool escrowed = false;   // by its first bytes: a CMS envelope or the threshold format
};

// The default of --max-file-size: larger backup files are refused unless raised.
inline constexpr std::size_t kDefaultMaxFileSize = 64u << 20;

// Reads `path`. Error(bad_input) for a file larger than `max_file_size` bytes or one that
// cannot be read.
P11VAULT_EXPORT BackupFileBytes read_backup_file(const std::string& path, std::size_t max_file_size);

// What an escrowed file (`data`, named `what` in messages) says without any key.
// Error(bad_input) for a malformed one.
P11VAULT_EXPORT EscrowSummary describe_escrow(std::span<const std::uint8_t> data, const std::string& what);

struct OpenedEscrow {
    SecretBytes pkcs12;    // the PKCS#12 inside; its password is escrow_inner_password()
    // The recipients that opened it: certificate SHA-256 (hex) where known, else issuer
    // and serial.
    std::vector<std::string> opened_by;
};

// Opens an escrowed file (`data`, named `what` in messages) with officers' keys on their
// tokens and/or share files written by extract_escrow_share. Warnings (a token that did
// RSA-OAEP only in raw form) go to `events` once the file is open. Error(usage) when
// neither keys nor shares are given, or they do not fit the file's format;
// Error(bad_password) when a key is not one of the recipients, or fewer officers than
// the threshold opened it; Error(bad_input) for an altered file.
P11VAULT_EXPORT OpenedEscrow open_escrowed_backup(std::span<const std::uint8_t> data, const std::string& what,
                                                  const std::vector<RecoveryOfficerKey>& keys,
                                                  const std::vector<std::string>& share_files, Events& events);

// One officer's share of an M-of-N escrowed file, as the text of a share file.
struct EscrowShare {
    SecretBytes text;
    unsigned number = 0;   // 1..N
    std::string officer;   // the officer certificate's subject
};

// Opens the share of the officer whose key `key` names. Error(usage) when `data` is not an
// M-of-N escrowed file; Error(bad_password) when the key is not one of its officers;
// Error(bad_input) when the file is altered or the share does not belong where it is.
P11VAULT_EXPORT EscrowShare extract_escrow_share(std::span<const std::uint8_t> data, const std::string& what,
                                                 const RecoveryOfficerKey& key);

}  // namespace p11vault
