// SPDX-License-Identifier: Apache-2.0
// Random secrets (ephemeral keys, escrow keys, generated passwords and PINs), drawn
// straight into SecretBytes from the private DRBG (RAND_priv_bytes_ex) of p11vault's own
// library context: the bytes never pass through an ordinary buffer, and they come from
// the generator OpenSSL keeps for secrets, not the public one that also makes salts,
// IVs and nonces (ossl::random_bytes).
#pragma once

#include <cstddef>

#include "p11vault/secret.hpp"

namespace p11vault {

// `size` random bytes. Error(failure) when the generator fails.
SecretBytes random_secret(std::size_t size);

// Fills `out` with random bytes from the same generator; false when it fails. For
// callbacks that cannot throw (libgfshare's polynomial coefficients).
bool fill_random_secret(unsigned char* out, std::size_t size) noexcept;

// `size` random bytes as lowercase hex text (2 * size characters): a password or PIN
// that nobody types, printable for the APIs that want text.
SecretBytes random_hex_secret(std::size_t size);

}  // namespace p11vault
