// SPDX-License-Identifier: Apache-2.0
#include "p11vault/digest.hpp"

#include "src/ossl.hpp"

namespace p11vault {

std::string hex(std::span<const std::uint8_t> bytes) { return ossl::hex(bytes.data(), bytes.size()); }

std::string sha256_hex(std::span<const std::uint8_t> data) {
    return ossl::hex(ossl::sha256(data.data(), data.size()));
}

}  // namespace p11vault
