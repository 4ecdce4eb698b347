// SPDX-License-Identifier: Apache-2.0
// Recovery officers' certificates, as `backup --recipient FILE.pem` names them: read and
// checked before anything is encrypted to them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "src/ossl.hpp"

namespace p11vault::escrow {

struct OfficerCertificate {
    ossl::Cert cert;
    std::string source;                 // the file it came from
    std::string subject;                // RFC 2253
    std::vector<std::uint8_t> sha256;   // of the DER: the fingerprint records name it by
    std::string key_type;               // "RSA-3072", "EC-P256"
};

// Reads one PEM (or DER) certificate from each file and checks it: an RSA key of at least
// 2048 bits or an EC key on P-256, P-384 or P-521; a keyUsage extension, when present,
// allowing keyEncipherment (RSA) or keyAgreement (EC); valid now unless `allow_expired`.
// Error(bad_input) for a file that is not a certificate or an unsupported key;
// Error(refused) for a certificate that is expired, not yet valid or whose key usage
// forbids the use; Error(usage) for the same certificate twice.
std::vector<OfficerCertificate> load_officer_certificates(const std::vector<std::string>& paths, bool allow_expired);

// A certificate's key type as above, or empty when it is neither RSA nor a supported curve.
std::string officer_key_type(const X509* cert);

}  // namespace p11vault::escrow
