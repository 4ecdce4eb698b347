// SPDX-License-Identifier: Apache-2.0
// RFC 7512 pkcs11: URIs, parsed by p11-kit. What selecting a module, a token and objects
// needs, and a PIN source; every other attribute is refused by name (docs/cli.md, "Token
// URIs").
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
    // Query attributes.
    std::optional<std::string> module_path;              // module-path=
    std::optional<std::string> module_name;              // module-name=
    std::optional<std::string> pin_source;               // pin-source= (as written, decoded)

    bool matches(const TokenInfo& token) const;
};

// Throws Error(ErrorKind::usage) naming the problem on a bad URI: p11-kit's message for
// bad syntax, the attribute's name for one p11vault does not support, and a refusal of
// pin-value (whose value the message never holds).
TokenUri parse_token_uri(const std::string& uri);

}  // namespace p11vault::pkcs11
