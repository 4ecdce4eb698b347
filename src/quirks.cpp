// SPDX-License-Identifier: Apache-2.0
#include "src/quirks.hpp"

namespace p11vault {

namespace {

struct QuirkRow {
    const char* manufacturer;  // exact match of CK_TOKEN_INFO.manufacturerID (trimmed)
    const char* model;         // exact match, or nullptr for any model
    TokenQuirks quirks;
};

// Measured on Debian bookworm (docs/extraction.md).
const QuirkRow kQuirkTable[] = {
    {"Mozilla Foundation", "NSS 3", {"NSS softoken", true, true, true, false, true}},
    {"SoftHSM project", "SoftHSM v2", {"SoftHSM 2", false, false, false, true, false}},
};

}  // namespace

TokenQuirks quirks_for(const pkcs11::TokenInfo& token) {
    for (const auto& row : kQuirkTable) {
        if (token.manufacturer != row.manufacturer) continue;
        if (row.model != nullptr && token.model != row.model) continue;
        return row.quirks;
    }
    return {};
}

}  // namespace p11vault
