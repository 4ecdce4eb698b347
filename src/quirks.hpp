// SPDX-License-Identifier: Apache-2.0
// Per-token quirks, as data (pkcs11-provider's rule): what a token does differently from
// the PKCS#11 specification, keyed by its manufacturer and model. Code asks the table
// a question ("does unwrapping an EC key need CKA_NSS_DB?"), never the vendor name.
#pragma once

#include <string>

#include "pkcs11/module.hpp"

namespace p11vault {

// NSS's vendor attribute holding an EC private key's public point, without which NSS
// softoken refuses C_UnwrapKey of EC keys (CKR_TEMPLATE_INCOMPLETE).
constexpr CK_ATTRIBUTE_TYPE CKA_NSS_DB = 0xD5A0DB00UL;

struct TokenQuirks {
    std::string name = "standard";  // which table row matched, for records and debug logs
    // C_UnwrapKey of an EC private key needs CKA_NSS_DB = 04||X||Y.
    bool ec_unwrap_needs_nss_db = false;
    // Creating an object with the class and CKA_ID of an existing one silently replaces
    // it, so conflicts must be found before writing and "replace" cannot keep both.
    bool create_replaces_same_id = false;
    // CKA_EXTRACTABLE=FALSE is not enforced on C_WrapKey: refusals cannot be tested here.
    bool ignores_extractable_on_wrap = false;
    // C_UnwrapKey of EdDSA keys fails (CKR_FUNCTION_FAILED); create them instead.
    bool eddsa_unwrap_broken = false;
    // CKM_PKCS5_PBKD2 reads the v2.20 CK_PKCS5_PBKD2_PARAMS, whose ulPasswordLen is a
    // pointer (NSS 3.87 dereferences it), not the by-value field of 2.40's PARAMS2.
    bool pbkd2_password_length_by_pointer = false;
};

TokenQuirks quirks_for(const pkcs11::TokenInfo& token);

}  // namespace p11vault
