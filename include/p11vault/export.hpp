// SPDX-License-Identifier: Apache-2.0
// P11VAULT_EXPORT marks what the shared library libp11vault.so exports: the public API of
// include/p11vault/ and nothing else. The library is built with hidden visibility, so a
// function of src/ that an embedding program could otherwise bind to stays internal.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define P11VAULT_EXPORT __attribute__((visibility("default")))
#else
#define P11VAULT_EXPORT
#endif
