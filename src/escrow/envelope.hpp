// SPDX-License-Identifier: Apache-2.0
// The 1-of-N escrow file: a CMS AuthEnvelopedData (RFC 5652, RFC 5083; DER) whose
// content is a PKCS#12, encrypted with AES-256-GCM under a random content-encryption key
// (CEK), with one RecipientInfo per recovery officer's certificate:
//   RSA: KeyTransRecipientInfo, RSAES-OAEP with SHA-256 and MGF1-SHA-256 (RFC 8017);
//   EC:  KeyAgreeRecipientInfo, dhSinglePass-stdDH-sha256kdf-scheme (RFC 5753) with an
//        ephemeral originator key and AES-256 key wrap (RFC 3394).
// Written with OpenSSL's CMS API (so `openssl cms -decrypt` opens it with an officer's
// key file); read by hand (der.hpp), because an officer's key on a token cannot go
// through CMS_decrypt: officer_key.hpp recovers the CEK on the token, and open_content
// decrypts with it here.
#pragma once

#include <openssl/x509.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "p11vault/secret.hpp"
#include "src/escrow/der.hpp"

namespace p11vault::escrow {

using der::Bytes;

// Seals `content` to the officers' certificates (checked by the caller:
// recipients.hpp). Returns the DER ContentInfo.
Bytes seal(std::span<const std::uint8_t> content, const std::vector<X509*>& officers);

// Who a RecipientInfo is for: issuer and serial number, or a subject key identifier.
struct RecipientId {
    Bytes issuer;          // DER Name
    Bytes serial;          // the INTEGER's content octets
    Bytes subject_key_id;  // when the rid is a [0] SubjectKeyIdentifier
    bool matches(const X509* cert) const;
    // "issuer CN=KRA CA, serial 0x2f66..." or "subject key identifier ab:cd:..."
    std::string text() const;
    std::string issuer_text() const;
    std::string serial_hex() const;
};

enum class RecipientKind { key_transport, key_agreement };

struct RecipientEntry {
    RecipientKind kind = RecipientKind::key_transport;
    RecipientId id;
    std::string algorithm;        // "RSAES-OAEP-SHA256", "ECDH-stdDH-SHA256-KDF"
    Bytes encrypted_key;
    // Key agreement only.
    Bytes originator_point;       // the ephemeral public key (uncompressed point)
    std::optional<Bytes> ukm;     // user keying material
    Bytes wrap_algorithm;         // the key-wrap AlgorithmIdentifier as encoded (for the SharedInfo)
    std::size_t wrap_key_length = 0;  // bytes of the KEK: 16, 24 or 32
    std::string kdf_digest;       // "SHA256", "SHA384", "SHA512"
};

struct Envelope {
    std::vector<RecipientEntry> recipients;
    std::string content_algorithm;  // "AES-256-GCM"
    std::size_t key_length = 0;     // of the CEK
    Bytes nonce;
    Bytes ciphertext;
    Bytes aad;                      // DER of authAttrs as a SET, or empty
    Bytes tag;
};

// True when `data` begins like a CMS ContentInfo holding an AuthEnvelopedData.
bool looks_like_envelope(std::span<const std::uint8_t> data);

// Parses what p11vault needs; Error(bad_input) naming `what` for anything malformed or
// any algorithm outside the list above (e.g. PKCS#1 v1.5 key transport, CBC content).
Envelope parse_envelope(std::span<const std::uint8_t> data, const std::string& what);

// Decrypts and authenticates the content with a CEK; nothing when it does not
// authenticate (a wrong CEK or an altered file).
std::optional<SecretBytes> open_content(const Envelope& envelope, const SecretBytes& cek);

// Key agreement on the host, after the shared secret Z was agreed (on the officer's
// token): the X9.63 KDF over the ECC-CMS-SharedInfo, then AES key unwrap of the
// encrypted key. Nothing when the unwrap's integrity check fails (not this officer).
std::optional<SecretBytes> unwrap_agreed_key(const RecipientEntry& recipient, const SecretBytes& shared_secret);

// RSAES-OAEP decoding (SHA-256, MGF1-SHA-256, empty label) on the host of what a raw RSA
// decryption (CKM_RSA_X_509) on the officer's token returned, for tokens that do OAEP
// only with SHA-1 (SoftHSM 2.6). Nothing when the padding does not check (not this key).
std::optional<SecretBytes> oaep_sha256_decode(const SecretBytes& encoded, std::size_t modulus_bytes);

}  // namespace p11vault::escrow
