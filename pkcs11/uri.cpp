// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/uri.hpp"

#include <p11-kit/uri.h>

#include <cstring>
#include <memory>

#include "p11vault/error.hpp"

namespace p11vault::pkcs11 {
namespace {

struct UriDeleter {
    void operator()(P11KitUri* uri) const noexcept { p11_kit_uri_free(uri); }
};
using UriOwner = std::unique_ptr<P11KitUri, UriDeleter>;

// p11-kit leaves fields that the URI does not name all zero, and blank-pads the others
// (an empty "token=" is all blanks, so it is present and matches an empty label).
std::optional<std::string> padded_field(const CK_UTF8CHAR* field, std::size_t width) {
    for (std::size_t i = 0; i < width; ++i) {
        if (field[i] != 0) return trim_padded(field, width);
    }
    return std::nullopt;
}

[[noreturn]] void invalid(const std::string& why) { throw Error(ExitCode::usage, "invalid pkcs11: URI: " + why); }

}  // namespace

TokenUri parse_token_uri(const std::string& text) {
    UriOwner uri(p11_kit_uri_new());
    if (!uri) throw std::bad_alloc();
    int rv = p11_kit_uri_parse(text.c_str(), P11_KIT_URI_FOR_ANY, uri.get());
    if (rv != P11_KIT_URI_OK) invalid(p11_kit_uri_message(rv));
    // An attribute p11-kit does not know would match nothing at all (RFC 7512 6.1); a
    // selection that silently selects nothing is worse than an error.
    if (p11_kit_uri_any_unrecognized(uri.get())) invalid("it has an attribute p11vault does not support");

    TokenUri out;
    if (const CK_TOKEN_INFO* token = p11_kit_uri_get_token_info(uri.get())) {
        out.token_label = padded_field(token->label, sizeof token->label);
        out.manufacturer = padded_field(token->manufacturerID, sizeof token->manufacturerID);
        out.model = padded_field(token->model, sizeof token->model);
        out.serial = padded_field(token->serialNumber, sizeof token->serialNumber);
    }
    CK_SLOT_ID slot = p11_kit_uri_get_slot_id(uri.get());
    if (slot != static_cast<CK_SLOT_ID>(-1)) out.slot_id = slot;

    if (const CK_ATTRIBUTE* id = p11_kit_uri_get_attribute(uri.get(), CKA_ID)) {
        auto* bytes = static_cast<const std::uint8_t*>(id->pValue);
        out.object_id = std::vector<std::uint8_t>(bytes, bytes + id->ulValueLen);
    }
    if (const CK_ATTRIBUTE* label = p11_kit_uri_get_attribute(uri.get(), CKA_LABEL)) {
        auto* chars = static_cast<const char*>(label->pValue);
        out.object_label = std::string(chars, chars + label->ulValueLen);
    }
    if (const CK_ATTRIBUTE* type = p11_kit_uri_get_attribute(uri.get(), CKA_CLASS)) {
        if (type->ulValueLen == sizeof(CK_OBJECT_CLASS)) {
            CK_OBJECT_CLASS value;
            std::memcpy(&value, type->pValue, sizeof value);
            out.object_class = value;
        }
    }
    if (const char* path = p11_kit_uri_get_module_path(uri.get())) out.module_path = path;
    return out;
}

bool TokenUri::matches(const TokenInfo& token) const {
    return (!token_label || *token_label == token.label) && (!manufacturer || *manufacturer == token.manufacturer) &&
           (!model || *model == token.model) && (!serial || *serial == token.serial);
}

}  // namespace p11vault::pkcs11
