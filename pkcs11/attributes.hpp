// SPDX-License-Identifier: Apache-2.0
// AttributeTemplate: builds a CK_ATTRIBUTE array and owns every byte its pValue pointers
// point to (Botan's AttributeContainer). Values live in stable storage, so adding an
// attribute never invalidates earlier pointers. Secret values (CKA_VALUE of a key) are
// kept in SecretBytes and wiped with the template.
#pragma once

#include <p11-kit/pkcs11.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "p11vault/secret.hpp"

namespace p11vault::pkcs11 {

using Bytes = std::vector<std::uint8_t>;

class AttributeTemplate {
public:
    AttributeTemplate() = default;
    AttributeTemplate(const AttributeTemplate&) = delete;
    AttributeTemplate& operator=(const AttributeTemplate&) = delete;
    AttributeTemplate(AttributeTemplate&&) = default;
    AttributeTemplate& operator=(AttributeTemplate&&) = default;

    AttributeTemplate& add_bool(CK_ATTRIBUTE_TYPE type, bool value);
    AttributeTemplate& add_ulong(CK_ATTRIBUTE_TYPE type, CK_ULONG value);
    AttributeTemplate& add_bytes(CK_ATTRIBUTE_TYPE type, std::span<const std::uint8_t> value);
    AttributeTemplate& add_string(CK_ATTRIBUTE_TYPE type, std::string_view value);
    AttributeTemplate& add_secret(CK_ATTRIBUTE_TYPE type, const SecretBytes& value);
    AttributeTemplate& add_class(CK_OBJECT_CLASS value) { return add_ulong(CKA_CLASS, value); }
    AttributeTemplate& add_key_type(CK_KEY_TYPE value) { return add_ulong(CKA_KEY_TYPE, value); }

    bool has(CK_ATTRIBUTE_TYPE type) const;
    // The value of `type` as added, for checking what a token made of the template; never
    // the value of an attribute added with add_secret (nullopt, as for a missing one).
    std::optional<std::span<const std::uint8_t>> public_value(CK_ATTRIBUTE_TYPE type) const;
    CK_ATTRIBUTE* data() { return attributes_.data(); }
    CK_ULONG count() const { return static_cast<CK_ULONG>(attributes_.size()); }
    // Attribute types in order, for debug logs (names only, never values).
    std::string describe() const;

private:
    std::vector<CK_ATTRIBUTE> attributes_;
    std::deque<Bytes> values_;          // stable addresses for pValue
    std::deque<SecretBytes> secrets_;   // wiped on destruction
    std::vector<CK_ATTRIBUTE_TYPE> secret_types_;
    std::deque<CK_BBOOL> bools_;
    std::deque<CK_ULONG> ulongs_;
};

}  // namespace p11vault::pkcs11
