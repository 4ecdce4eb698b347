// SPDX-License-Identifier: Apache-2.0
// The public token API (include/p11vault/token.hpp): listing a module's tokens and a
// token's objects.
#include "p11vault/token.hpp"

#include <openssl/x509.h>

#include <algorithm>

#include <fmt/format.h>

#include "pkcs11/error.hpp"
#include "src/inventory.hpp"
#include "src/ossl.hpp"
#include "src/token.hpp"

namespace p11vault {
namespace {

std::string version_text(const CK_VERSION& version) { return fmt::format("{}.{}", version.major, version.minor); }

ModuleDescription describe_module(const pkcs11::Module& module) {
    const pkcs11::ModuleInfo info = module.info();
    return {module.path(), info.manufacturer, info.description, version_text(info.cryptoki_version),
            version_text(info.library_version)};
}

ObjectClass class_of(CK_OBJECT_CLASS object_class) {
    switch (object_class) {
        case CKO_PRIVATE_KEY: return ObjectClass::private_key;
        case CKO_PUBLIC_KEY: return ObjectClass::public_key;
        case CKO_SECRET_KEY: return ObjectClass::secret_key;
        case CKO_CERTIFICATE: return ObjectClass::certificate;
        case CKO_DATA: return ObjectClass::data;
        default: return ObjectClass::other;
    }
}

// "RSA-2048", "EC-P256", "Ed25519", "AES-256"; empty when unknown.
std::string algorithm_text(const std::optional<keys::KeyDescription>& description) {
    if (!description) return {};
    const bool is_asymmetric = description->algorithm == "RSA" || description->algorithm == "EC" ||
                               description->algorithm.rfind("Ed", 0) == 0;
    if (is_asymmetric) {
        if (description->algorithm == "EC" && description->curve.empty()) return "EC";
        return description->name();
    }
    if (description->bits != 0) return fmt::format("{}-{}", description->algorithm, description->bits);
    return description->algorithm;
}

std::optional<std::string> key_type_of(const TokenObject& object) {
    std::optional<CK_KEY_TYPE> key_type = object.key_type;
    if (!key_type && object.description) key_type = object.description->key_type;
    if (!key_type || (object.object_class == CKO_CERTIFICATE && !object.description)) return std::nullopt;
    std::string name = pkcs11::key_type_name(*key_type);
    return name.rfind("CKK_", 0) == 0 ? name.substr(4) : name;
}

std::optional<std::string> subject_of(const TokenObject& object) {
    if (!object.certificate) return std::nullopt;
    return ossl::name_text(X509_get_subject_name(object.certificate.get()));
}

std::optional<ObjectReference> reference(const Inventory& inventory, const std::optional<std::size_t>& index) {
    if (!index) return std::nullopt;
    const TokenObject& other = inventory.objects[*index];
    return ObjectReference{other.id, other.label, subject_of(other)};
}

ObjectDescription object_description(const Inventory& inventory, const TokenObject& object) {
    ObjectDescription out;
    out.object_class = class_of(object.object_class);
    out.class_value = object.object_class;
    out.key_type = key_type_of(object);
    out.algorithm = algorithm_text(object.description);
    if (object.description) {
        out.bits = object.description->bits;
        out.curve = object.description->curve;
    }
    out.id = object.id;
    out.label = object.label;
    out.is_private = object.is_private;
    out.sensitive = object.sensitive;
    out.extractable = object.extractable;
    out.never_extractable = object.never_extractable;
    out.always_sensitive = object.always_sensitive;
    out.wrap_with_trusted = object.wrap_with_trusted;
    if (const X509* cert = object.certificate.get()) {
        out.subject = ossl::name_text(X509_get_subject_name(cert));
        out.issuer = ossl::name_text(X509_get_issuer_name(cert));
        const auto der = ossl::cert_der(cert);
        out.certificate_sha256 = ossl::sha256(der.data(), der.size());
    }
    if (object.object_class == CKO_CERTIFICATE) {
        out.private_key = reference(inventory, object.paired_private_key);
    } else {
        out.certificate = reference(inventory, object.paired_certificate);
        if (object.object_class == CKO_PRIVATE_KEY) out.public_key = reference(inventory, object.paired_public_key);
        if (object.object_class == CKO_PUBLIC_KEY) out.private_key = reference(inventory, object.paired_private_key);
    }
    out.spki_sha256 = object.spki_sha256;
    return out;
}

// --token pkcs11:...;id=%01;object=x;type=private narrows the listing to those objects
// (pairing still sees every object, so a key's certificate is named even if not listed).
bool shown(const pkcs11::TokenUri& uri, const TokenObject& object) {
    return (!uri.object_id || *uri.object_id == object.id) && (!uri.object_label || *uri.object_label == object.label) &&
           (!uri.object_class || *uri.object_class == object.object_class);
}

}  // namespace

TokenListing list_tokens(const TokenSpec& spec, SecretProvider& secrets, Events& events) {
    const TokenOptions options = token_options_of(spec);
    // The options are checked first: a typo in the URI is a usage error whatever the
    // module does.
    check_token_options(options);
    TokenListing listing;
    std::shared_ptr<pkcs11::Module> module = load_module(options);
    listing.module = describe_module(*module);
    const std::vector<PresentToken> tokens = present_tokens(*module);
    for (const auto& token : tokens) listing.tokens.push_back(describe_token(token.slot, token.info));
    const auto initialized = std::count_if(tokens.begin(), tokens.end(),
                                           [](const PresentToken& token) { return token.info.token_initialized(); });
    // Without a selection, objects are listed only when there is no doubt which token is meant.
    if (token_selection_given(options) || initialized == 1) {
        OpenToken token = open_token(module, options, /*read_write=*/false, /*login=*/true, secrets, events);
        listing.selected = describe_token(token.slot, token.info);
        const Inventory inventory = read_inventory(*token.session);
        for (const auto& object : inventory.objects)
            if (shown(token.uri, object)) listing.objects.push_back(object_description(inventory, object));
    }
    return listing;
}

std::optional<std::string> uri_pin_source(const TokenSpec& spec) {
    if (!spec.uri) return std::nullopt;
    // pin_source_for with no --pin: the URI's pin-source, checked.
    return pin_source_for(token_options_of(spec));
}

std::string object_class_name(ObjectClass object_class, unsigned long class_value) {
    switch (object_class) {
        case ObjectClass::private_key: return "private-key";
        case ObjectClass::public_key: return "public-key";
        case ObjectClass::secret_key: return "secret-key";
        case ObjectClass::certificate: return "certificate";
        case ObjectClass::data: return "data";
        case ObjectClass::other: break;
    }
    return fmt::format("class-0x{:x}", class_value);
}

}  // namespace p11vault
