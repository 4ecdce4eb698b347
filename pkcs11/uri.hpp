// SPDX-License-Identifier: Apache-2.0
// RFC 7512 pkcs11: URIs, parsed by p11-kit. Only what selecting a token and objects needs.
#pragma once

#include <p11-kit/pkcs11.h>

#include <optional>
#include <string>
#include <vector>

#include "pkcs11/module.hpp"

namespace p11vault::pkcs11 {

struct TokenUri {
    // Token attributes present in the URI; absent ones match anything.
    std::optional<std::string> token_label;
    std::optional<std::string> manufacturer;
    std::optional<std::string> model;
    std::optional<std::string> serial;
    std::optional<CK_SLOT_ID> slot_id;
    // Object attributes.
    std::optional<std::vector<std::uint8_t>> object_id;  // id=%01%02
    std::optional<std::string> object_label;             // object=...
    std::optional<CK_OBJECT_CLASS> object_class;         // type=private|cert|...
    std::optional<std::string> module_path;              // module-path=

    bool matches(const TokenInfo& token) const;
};

// Throws Error(ExitCode::usage) naming the problem (p11-kit's message) on a bad URI.
TokenUri parse_token_uri(const std::string& uri);

}  // namespace p11vault::pkcs11
