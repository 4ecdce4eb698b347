// SPDX-License-Identifier: Apache-2.0
#include "src/secret_random.hpp"

#include <openssl/rand.h>

#include "p11vault/error.hpp"
#include "src/ossl.hpp"

namespace p11vault {

bool fill_random_secret(unsigned char* out, std::size_t size) noexcept {
    if (size == 0) return true;
    try {
        // 256 bits of strength, as ossl::random_bytes asks of the public generator.
        return RAND_priv_bytes_ex(ossl::libctx_modern(), out, size, 256) == 1;
    } catch (...) {
        return false;  // the library context could not be set up
    }
}

SecretBytes random_secret(std::size_t size) {
    SecretBytes secret(size);
    if (!fill_random_secret(secret.data(), secret.size()))
        ossl::fail(ErrorKind::failure, "random number generator");
    return secret;
}

namespace {

// '0'..'9', 'a'..'f' by arithmetic rather than a table lookup, so no memory access
// depends on a secret nibble: (9 - n) >> 8 is -1 exactly when n > 9, which adds the
// distance from '9' + 1 to 'a'.
std::uint8_t hex_digit(unsigned nibble) {
    const int n = static_cast<int>(nibble);
    return static_cast<std::uint8_t>(n + '0' + (((9 - n) >> 8) & ('a' - '0' - 10)));
}

}  // namespace

SecretBytes random_hex_secret(std::size_t size) {
    const SecretBytes random = random_secret(size);
    SecretBytes text(2 * size);
    for (std::size_t i = 0; i < size; ++i) {
        text.data()[2 * i] = hex_digit(random.data()[i] >> 4);
        text.data()[2 * i + 1] = hex_digit(random.data()[i] & 0x0fu);
    }
    return text;
}

}  // namespace p11vault
