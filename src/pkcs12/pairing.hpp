// SPDX-License-Identifier: Apache-2.0
// Which certificate of a PKCS#12 file belongs to which key bag: one rule for verify and
// restore. By localKeyID first, unless another key bag carries the same id (then the id
// cannot say whose the certificate is); else, for a key whose public key is known, by
// public key. A certificate named by localKeyID whose public key is not the key's is an
// inconsistent file: both refuse it with the same message (exit 4).
#pragma once

#include <openssl/evp.h>

#include "src/pkcs12/reader.hpp"

namespace p11vault::pkcs12 {

// The first certificate that carries one of the bag's localKeyIDs; null when none does,
// or when another key bag carries that id too.
const CertBag* certificate_by_local_key_id(const Contents& contents, const KeyBag& bag);

// The first certificate whose public key is `key`; null when none is (or `key` is null).
const CertBag* certificate_by_public_key(const Contents& contents, const EVP_PKEY* key);

// Error(bad_input): "key bag 2 (id=01 label="web") does not match its certificate
// CN=web (same localKeyID, different public key)".
[[noreturn]] void refuse_mismatch(const KeyBag& bag, const CertBag& certificate);

// refuse_mismatch unless `key` is the public key of `certificate`.
void check_pairing(const KeyBag& bag, const CertBag& certificate, const EVP_PKEY* key);

}  // namespace p11vault::pkcs12
