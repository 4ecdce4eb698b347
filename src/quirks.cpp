// SPDX-License-Identifier: Apache-2.0
#include "src/quirks.hpp"

namespace p11vault {

namespace {

// Exact matches of the trimmed CK_INFO / CK_TOKEN_INFO fields; nullptr matches anything,
// a row with every key nullptr matches nothing.
struct QuirkKey {
    const char* module_manufacturer = nullptr;
    const char* library_description = nullptr;
    const char* token_manufacturer = nullptr;
    const char* token_model = nullptr;
};

struct QuirkRow {
    QuirkKey by_module;  // matched when both module fields are given and equal
    QuirkKey by_token;   // matched when both token fields are given and equal
    TokenQuirks quirks;
};

// Measured on Debian bookworm (docs/tokens.md, tests/integration/backends_test.cpp).
const QuirkRow kQuirkTable[] = {
    {.by_module = {.module_manufacturer = "Mozilla Foundation", .library_description = "NSS Internal Crypto Services"},
     .by_token = {.token_manufacturer = "Mozilla Foundation", .token_model = "NSS 3"},
     .quirks = {.name = "NSS softoken",
                .unwrap_needs_nss_db = true,
                .create_replaces_same_id = true,
                .ignores_extractable_on_wrap = true,
                .pbkd2_password_length_by_pointer = true}},
    {.by_module = {.module_manufacturer = "SoftHSM", .library_description = "Implementation of PKCS11"},
     .by_token = {.token_manufacturer = "SoftHSM project", .token_model = "SoftHSM v2"},
     .quirks = {.name = "SoftHSM 2", .eddsa_unwrap_broken = true}},
    {.by_module = {.module_manufacturer = "IBM", .library_description = "Meta PKCS11 LIBRARY"},
     .by_token = {.token_manufacturer = "IBM Corp.", .token_model = "IBM SoftTok"},
     .quirks = {.name = "openCryptoki soft token", .unwrap_ignores_protection = true}},
    {.by_module = {.module_manufacturer = "tpm2-software.github.io", .library_description = "TPM2.0 Cryptoki"},
     .by_token = {},
     .quirks = {.name = "tpm2-pkcs11",
                .private_key_import = "tpm2-pkcs11 imports private keys with its own tool, tpm2_ptool import "
                                      "(from a PEM key file; the clear key is then on the host)"}},
};

bool matches(const char* wanted, const std::string& actual) { return wanted != nullptr && actual == wanted; }

}  // namespace

TokenQuirks quirks_for(const pkcs11::ModuleInfo& module, const pkcs11::TokenInfo& token) {
    for (const auto& row : kQuirkTable) {
        if (matches(row.by_module.module_manufacturer, module.manufacturer) &&
            matches(row.by_module.library_description, module.description))
            return row.quirks;
        if (matches(row.by_token.token_manufacturer, token.manufacturer) &&
            matches(row.by_token.token_model, token.model))
            return row.quirks;
    }
    return {};
}

TokenQuirks quirks_for(const pkcs11::Session& session) {
    return quirks_for(session.module().info(), session.module().token_info(session.slot()));
}

}  // namespace p11vault
