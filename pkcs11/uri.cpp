// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/uri.hpp"

#include <p11-kit/uri.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>

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

[[noreturn]] void invalid(const std::string& why) { throw Error(ErrorKind::usage, "invalid pkcs11: URI: " + why); }

// The attributes p11vault acts on. RFC 7512 defines more (library-*, slot-description,
// slot-manufacturer) and allows vendor ones; p11vault would ignore them, and a selection
// that silently ignores part of itself may pick the wrong token: they are refused.
constexpr std::string_view supported_path_attributes[] = {"token", "manufacturer", "serial", "model",
                                                          "object", "type", "id", "slot-id"};
constexpr std::string_view supported_query_attributes[] = {"module-name", "module-path", "pin-source"};

bool listed(std::string_view name, std::span<const std::string_view> names) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

// Checks the name of every attribute of `text` (a URI p11-kit has parsed): the path's
// attributes are separated by ';', the query's (after '?') by '&'.
void check_attribute_names(std::string_view text) {
    text.remove_prefix(std::min(text.find(':') + 1, text.size()));
    const std::size_t question = text.find('?');
    const std::string_view path = text.substr(0, question);
    const std::string_view query = question == std::string_view::npos ? std::string_view() : text.substr(question + 1);
    auto each_name = [](std::string_view part, char separator, auto&& visit) {
        while (!part.empty()) {
            const std::size_t end = part.find(separator);
            const std::string_view attribute = part.substr(0, end);
            if (!attribute.empty()) visit(attribute.substr(0, attribute.find('=')));
            if (end == std::string_view::npos) break;
            part.remove_prefix(end + 1);
        }
    };
    each_name(query, '&', [](std::string_view name) {
        // Never the value: it would end up in the error, and in logs.
        if (name == "pin-value") {
            invalid("pin-value is refused: a PIN in a URI ends up in shell history and process listings; give "
                    "pin-source=file:PATH or --pin");
        }
        if (!listed(name, supported_query_attributes))
            invalid("p11vault does not support the query attribute " + std::string(name));
    });
    each_name(path, ';', [](std::string_view name) {
        if (!listed(name, supported_path_attributes))
            invalid("p11vault does not support the attribute " + std::string(name));
    });
}

}  // namespace

TokenUri parse_token_uri(const std::string& text) {
    UriOwner uri(p11_kit_uri_new());
    if (!uri) throw std::bad_alloc();
    int rv = p11_kit_uri_parse(text.c_str(), P11_KIT_URI_FOR_ANY, uri.get());
    if (rv != P11_KIT_URI_OK) invalid(p11_kit_uri_message(rv));
    // An attribute p11-kit does not know would match nothing at all (RFC 7512 6.1), and
    // one p11vault does not act on would be ignored: both are named and refused.
    check_attribute_names(text);
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
    if (const char* name = p11_kit_uri_get_module_name(uri.get())) out.module_name = name;
    if (const char* source = p11_kit_uri_get_pin_source(uri.get())) out.pin_source = source;
    return out;
}

bool TokenUri::matches(const TokenInfo& token) const {
    return (!token_label || *token_label == token.label) && (!manufacturer || *manufacturer == token.manufacturer) &&
           (!model || *model == token.model) && (!serial || *serial == token.serial);
}

}  // namespace p11vault::pkcs11
