// SPDX-License-Identifier: Apache-2.0
// Hex and SHA-256 as p11vault prints them (key ids, file and certificate fingerprints in
// tables, --json documents and records): lowercase hex digits, no separators.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "p11vault/export.hpp"

namespace p11vault {

// "01a2ff"
P11VAULT_EXPORT std::string hex(std::span<const std::uint8_t> bytes);

// The SHA-256 of `data`, in hex.
P11VAULT_EXPORT std::string sha256_hex(std::span<const std::uint8_t> data);

}  // namespace p11vault
