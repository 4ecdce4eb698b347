// SPDX-License-Identifier: Apache-2.0
// Per-token quirks, as data (pkcs11-provider's rule): what a token does differently from
// the PKCS#11 specification, keyed by what the token and its module say of themselves.
// Code asks the table a question ("does unwrapping an EC key need CKA_NSS_DB?"), never
// the vendor name. docs/tokens.md has what each row was measured to do.
#pragma once

#include <string>

#include "pkcs11/module.hpp"
#include "pkcs11/session.hpp"

namespace p11vault {

// NSS's vendor attribute holding an EC private key's public point, without which NSS
// softoken refuses C_UnwrapKey of EC keys (CKR_TEMPLATE_INCOMPLETE).
constexpr CK_ATTRIBUTE_TYPE CKA_NSS_DB = 0xD5A0DB00UL;

struct TokenQuirks {
    std::string name = "standard";  // which table row matched, for records and debug logs
    // C_UnwrapKey of an EC or DSA private key needs CKA_NSS_DB = its public value
    // (04||X||Y, or y).
    bool unwrap_needs_nss_db = false;
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
    // C_UnwrapKey ignores CKA_SENSITIVE and CKA_EXTRACTABLE of its template (openCryptoki
    // 3.8). Informational: every write is read back and repaired anyway (write_check).
    bool unwrap_ignores_protection = false;
    // The token imports no private key through PKCS#11; its own tool's way, for the
    // message that refuses a restore (tpm2-pkcs11: tpm2_ptool import).
    const char* private_key_import = nullptr;
    // Why the token must be used through one session at a time (a run's --jobs is 1);
    // null when parallel sessions are fine.
    const char* one_session_at_a_time = nullptr;
};

// The row for a token: matched on the token's manufacturer and model, or on the
// module's C_GetInfo manufacturer and library description (through the p11-kit proxy
// only the token's own words are seen).
TokenQuirks quirks_for(const pkcs11::ModuleInfo& module, const pkcs11::TokenInfo& token);
TokenQuirks quirks_for(const pkcs11::Session& session);

}  // namespace p11vault
