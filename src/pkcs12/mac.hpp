// SPDX-License-Identifier: Apache-2.0
// The integrity check of a PKCS#12 file: its MacData over the AuthenticatedSafe's octets.
#pragma once

#include <openssl/x509.h>

#include <cstdint>
#include <functional>
#include <span>

#include "p11vault/secret.hpp"
#include "src/pkcs12/pbe.hpp"
#include "src/pkcs12/reader.hpp"

namespace p11vault::pkcs12 {

// Checks the MacData (its DigestInfo, salt and iterations) over `content` with the
// password: an HMAC under the PKCS#12 KDF, the password tried in each form producers use
// (the standard BMPString; none, for an empty password written as NULL; the BMPString
// earlier p11vault builds made of a password that is not UTF-8), or PBMAC1 (RFC 9579).
// Fills `info`: algorithm, iterations, a weak digest, the password form that matched.
// Error(bad_input) for an algorithm or parameters it refuses, Error(bad_password) when
// the MAC does not match. `before_kdf(iterations)` runs before the PKCS#12 KDF does.
void verify_mac(const X509_SIG* digest_info, const ASN1_OCTET_STRING* salt, const ASN1_INTEGER* iterations,
                std::span<const std::uint8_t> content, const SecretBytes& password, const Limits& limits,
                MacInfo& info, const std::function<void(std::uint64_t)>& before_kdf);

}  // namespace p11vault::pkcs12
