// SPDX-License-Identifier: Apache-2.0
// The M-of-N escrow file (docs/escrow.md): the content encrypted with AES-256-GCM under a
// random key K; K split into N Shamir shares (shares.hpp, any M recover it), share i
// sealed to officer i alone as a standard CMS AuthEnvelopedData (envelope.hpp) whose
// content is the share's text, as `p11vault split` writes it.
//
//   EscrowThreshold ::= SEQUENCE {
//     magic      UTF8String ("p11vault escrow threshold"),
//     version    INTEGER (1),
//     threshold  INTEGER (2..N),
//     officers   SEQUENCE OF Certificate,     -- N, share i's officer at i
//     shares     SEQUENCE OF ContentInfo,     -- N AuthEnvelopedData, one recipient each
//     payload    SEQUENCE {
//       algorithm OBJECT IDENTIFIER (aes256-GCM),
//       nonce     OCTET STRING (12 bytes),
//       content   OCTET STRING,               -- the ciphertext of the PKCS#12
//       tag       OCTET STRING (16 bytes) } }
//   The GCM additional data is the DER of the five elements before payload, in order:
//   a changed threshold, officer or share envelope fails authentication.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "p11vault/secret.hpp"
#include "src/escrow/der.hpp"
#include "src/escrow/officers.hpp"
#include "src/ossl.hpp"

namespace p11vault::escrow {

inline constexpr const char* kThresholdMagic = "p11vault escrow threshold";
inline constexpr unsigned kThresholdVersion = 1;

struct ThresholdFile {
    unsigned version = 0;
    unsigned threshold = 0;
    std::vector<ossl::Cert> officers;
    std::vector<der::Bytes> share_envelopes;  // DER ContentInfo each
    der::Bytes header;                        // the additional data
    der::Bytes nonce, ciphertext, tag;
};

// True when `data` begins like a threshold file (its magic).
bool looks_like_threshold(std::span<const std::uint8_t> data);

// Writes a threshold file: Error(usage) unless 2 <= threshold <= officers.size() <= 255.
der::Bytes make_threshold_file(std::span<const std::uint8_t> content, const std::vector<OfficerCertificate>& officers,
                               unsigned threshold);

// Parses without any key; Error(bad_input) naming the problem (unknown version, counts
// that disagree, a malformed element).
ThresholdFile parse_threshold_file(std::span<const std::uint8_t> data, const std::string& what);

// Decrypts the payload with the recovered K; Error(bad_input) when it does not
// authenticate (an altered file, or shares of another file).
SecretBytes open_threshold_payload(const ThresholdFile& file, const SecretBytes& key, const std::string& what);

}  // namespace p11vault::escrow
