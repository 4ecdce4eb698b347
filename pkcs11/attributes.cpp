// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/attributes.hpp"

#include <algorithm>

#include "pkcs11/error.hpp"

namespace p11vault::pkcs11 {

// Each add_* stores the value in a deque first (deque::emplace_back never moves existing
// elements), then points the new CK_ATTRIBUTE at it.

AttributeTemplate& AttributeTemplate::add_bool(CK_ATTRIBUTE_TYPE type, bool value) {
    CK_BBOOL& stored = bools_.emplace_back(value ? CK_TRUE : CK_FALSE);
    attributes_.push_back(CK_ATTRIBUTE{type, &stored, sizeof(CK_BBOOL)});
    return *this;
}

AttributeTemplate& AttributeTemplate::add_ulong(CK_ATTRIBUTE_TYPE type, CK_ULONG value) {
    CK_ULONG& stored = ulongs_.emplace_back(value);
    attributes_.push_back(CK_ATTRIBUTE{type, &stored, sizeof(CK_ULONG)});
    return *this;
}

AttributeTemplate& AttributeTemplate::add_bytes(CK_ATTRIBUTE_TYPE type, std::span<const std::uint8_t> value) {
    Bytes& stored = values_.emplace_back(value.begin(), value.end());
    attributes_.push_back(CK_ATTRIBUTE{type, stored.empty() ? nullptr : stored.data(),
                                       static_cast<CK_ULONG>(stored.size())});
    return *this;
}

AttributeTemplate& AttributeTemplate::add_string(CK_ATTRIBUTE_TYPE type, std::string_view value) {
    // PKCS#11 strings are counted, not NUL-terminated.
    auto* p = reinterpret_cast<const std::uint8_t*>(value.data());
    return add_bytes(type, std::span<const std::uint8_t>(p, value.size()));
}

AttributeTemplate& AttributeTemplate::add_secret(CK_ATTRIBUTE_TYPE type, const SecretBytes& value) {
    SecretBytes& stored = secrets_.emplace_back(value.clone());
    secret_types_.push_back(type);
    attributes_.push_back(CK_ATTRIBUTE{type, stored.empty() ? nullptr : stored.data(),
                                       static_cast<CK_ULONG>(stored.size())});
    return *this;
}

bool AttributeTemplate::has(CK_ATTRIBUTE_TYPE type) const {
    return std::any_of(attributes_.begin(), attributes_.end(),
                       [type](const CK_ATTRIBUTE& a) { return a.type == type; });
}

std::optional<std::span<const std::uint8_t>> AttributeTemplate::public_value(CK_ATTRIBUTE_TYPE type) const {
    if (std::find(secret_types_.begin(), secret_types_.end(), type) != secret_types_.end()) return std::nullopt;
    for (const CK_ATTRIBUTE& a : attributes_) {
        if (a.type != type) continue;
        if (a.pValue == nullptr) return std::span<const std::uint8_t>();
        return std::span<const std::uint8_t>(static_cast<const std::uint8_t*>(a.pValue), a.ulValueLen);
    }
    return std::nullopt;
}

std::string AttributeTemplate::describe() const {
    std::string text = "[";
    for (std::size_t i = 0; i < attributes_.size(); ++i) {
        if (i != 0) text += ", ";
        text += attribute_name(attributes_[i].type);
    }
    return text + "]";
}

}  // namespace p11vault::pkcs11
