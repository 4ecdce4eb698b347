// SPDX-License-Identifier: Apache-2.0
// p11vault list: every token of the module, and for the selected token every key and
// certificate with the facts a backup decision needs (docs/cli.md, docs/json.md).
#include <algorithm>
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "pkcs11/error.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/common.hpp"
#include "src/inventory.hpp"
#include "src/ossl.hpp"
#include "src/token.hpp"

namespace p11vault::cli {
namespace {

using Json = nlohmann::ordered_json;

struct ListOptions {
    TokenOptions token;
    bool json = false;
};

struct Listing {
    std::shared_ptr<pkcs11::Module> module;
    std::vector<PresentToken> tokens;
    std::optional<OpenToken> selected;  // absent: several tokens and no selection
    Inventory inventory;
};

Listing collect(const TokenOptions& options) {
    // The options are checked first: a typo in the URI is a usage error whatever the
    // module does.
    check_token_options(options);
    Listing listing;
    listing.module = load_module(options);
    listing.tokens = present_tokens(*listing.module);
    const auto initialized = std::count_if(listing.tokens.begin(), listing.tokens.end(),
                                           [](const PresentToken& token) { return token.info.token_initialized(); });
    // Without a selection, objects are shown only when there is no doubt which token is meant.
    if (token_selection_given(options) || initialized == 1) {
        listing.selected = open_token(listing.module, options, /*read_write=*/false, /*login=*/true);
        listing.inventory = read_inventory(*listing.selected->session);
    }
    return listing;
}

// --token pkcs11:...;id=%01;object=x;type=private narrows the listing to those objects
// (pairing still sees every object, so a key's certificate is named even if not listed).
bool shown(const pkcs11::TokenUri& uri, const TokenObject& object) {
    return (!uri.object_id || *uri.object_id == object.id) && (!uri.object_label || *uri.object_label == object.label) &&
           (!uri.object_class || *uri.object_class == object.object_class);
}

std::vector<const TokenObject*> shown_objects(const Listing& listing) {
    std::vector<const TokenObject*> objects;
    for (const auto& object : listing.inventory.objects) {
        if (shown(listing.selected->uri, object)) objects.push_back(&object);
    }
    return objects;
}

// --- JSON --------------------------------------------------------------------------

Json optional_bool(const std::optional<bool>& value) { return value ? Json(*value) : Json(nullptr); }

Json reference_json(const TokenObject& object) {
    Json reference = {{"id", ossl::hex(object.id)}, {"label", object.label}};
    if (object.certificate) reference["subject"] = name_text(X509_get_subject_name(object.certificate.get()));
    return reference;
}

Json key_type_json(const TokenObject& object) {
    std::optional<CK_KEY_TYPE> key_type = object.key_type;
    if (!key_type && object.description) key_type = object.description->key_type;
    if (!key_type || (object.object_class == CKO_CERTIFICATE && !object.description)) return nullptr;
    std::string name = pkcs11::key_type_name(*key_type);
    return name.rfind("CKK_", 0) == 0 ? name.substr(4) : name;
}

Json object_json(const Inventory& inventory, const TokenObject& object) {
    const auto& description = object.description;
    const std::string algorithm = algorithm_text(description);
    Json json = {
        {"class", object_class_text(object.object_class)},
        {"key_type", key_type_json(object)},
        {"algorithm", algorithm.empty() ? Json(nullptr) : Json(algorithm)},
        {"bits", description && description->bits != 0 ? Json(description->bits) : Json(nullptr)},
        {"curve", description && !description->curve.empty() ? Json(description->curve) : Json(nullptr)},
        {"id", ossl::hex(object.id)},
        {"label", object.label},
        {"private", optional_bool(object.is_private)},
        {"sensitive", optional_bool(object.sensitive)},
        {"extractable", optional_bool(object.extractable)},
        {"never_extractable", optional_bool(object.never_extractable)},
        {"always_sensitive", optional_bool(object.always_sensitive)},
        {"wrap_with_trusted", optional_bool(object.wrap_with_trusted)},
    };
    auto reference = [&](const std::optional<std::size_t>& index) {
        return index ? reference_json(inventory.objects[*index]) : Json(nullptr);
    };
    if (object.object_class == CKO_CERTIFICATE) {
        const X509* cert = object.certificate.get();
        json["subject"] = cert ? Json(name_text(X509_get_subject_name(cert))) : Json(nullptr);
        json["issuer"] = cert ? Json(name_text(X509_get_issuer_name(cert))) : Json(nullptr);
        if (cert) {
            const auto der = ossl::cert_der(cert);
            json["certificate_sha256"] = ossl::hex(ossl::sha256(der.data(), der.size()));
        } else {
            json["certificate_sha256"] = nullptr;
        }
        json["private_key"] = reference(object.paired_private_key);
    } else {
        json["certificate"] = reference(object.paired_certificate);
        if (object.object_class == CKO_PRIVATE_KEY) json["public_key"] = reference(object.paired_public_key);
        if (object.object_class == CKO_PUBLIC_KEY) json["private_key"] = reference(object.paired_private_key);
    }
    json["spki_sha256"] = object.spki_sha256.empty() ? Json(nullptr) : Json(ossl::hex(object.spki_sha256));
    return json;
}

void print_listing_json(const Listing& listing) {
    Json document = {{"format", json_format("list")}, {"module", module_json(*listing.module)}};
    Json tokens = Json::array();
    for (const auto& token : listing.tokens) tokens.push_back(token_json(token.slot, token.info));
    document["tokens"] = std::move(tokens);
    if (listing.selected) {
        document["token"] = token_json(listing.selected->slot, listing.selected->info);
        Json objects = Json::array();
        for (const TokenObject* object : shown_objects(listing)) objects.push_back(object_json(listing.inventory, *object));
        document["objects"] = std::move(objects);
    } else {
        document["token"] = nullptr;
        document["objects"] = nullptr;
    }
    print_json(document);
}

// --- human output ------------------------------------------------------------------

std::string token_flags_text(const pkcs11::TokenInfo& info) {
    std::vector<std::string> flags;
    if (!info.token_initialized()) flags.push_back("uninitialized");
    if (info.login_required()) flags.push_back("login-required");
    if (info.token_initialized() && !info.user_pin_initialized()) flags.push_back("no-user-pin");
    if (info.pin_count_low()) flags.push_back("pin-count-low");
    if (info.pin_final_try()) flags.push_back("pin-final-try");
    if (info.pin_locked()) flags.push_back("pin-locked");
    return fmt::format("{}", fmt::join(flags, ","));
}

std::string key_flags_text(const TokenObject& object) {
    std::vector<std::string> flags;
    auto add = [&](const std::optional<bool>& value, const char* yes, const char* no) {
        if (value) flags.push_back(*value ? yes : no);
    };
    add(object.sensitive, "sensitive", "not-sensitive");
    add(object.extractable, "extractable", "not-extractable");
    if (object.never_extractable.value_or(false)) flags.push_back("never-extractable");
    if (object.always_sensitive.value_or(false)) flags.push_back("always-sensitive");
    if (object.wrap_with_trusted.value_or(false)) flags.push_back("wrap-with-trusted");
    if (object.is_private.value_or(false) && object.object_class != CKO_PRIVATE_KEY) flags.push_back("private");
    return fmt::format("{}", fmt::join(flags, ","));
}

std::string reference_text(const Inventory& inventory, const std::optional<std::size_t>& index, const char* what) {
    if (!index) return {};
    const TokenObject& other = inventory.objects[*index];
    std::string text = fmt::format("{} id={}", what, other.id.empty() ? "-" : ossl::hex(other.id));
    if (other.certificate) text += " " + name_text(X509_get_subject_name(other.certificate.get()));
    return text;
}

std::string pairing_text(const Inventory& inventory, const TokenObject& object) {
    if (object.object_class == CKO_CERTIFICATE) {
        std::string subject = object.certificate ? name_text(X509_get_subject_name(object.certificate.get()))
                                                 : std::string("(not X.509)");
        std::string key = reference_text(inventory, object.paired_private_key, "key");
        return key.empty() ? subject : subject + "; " + key;
    }
    if (object.object_class == CKO_SECRET_KEY) return {};
    std::string certificate = reference_text(inventory, object.paired_certificate, "cert");
    if (object.object_class == CKO_PRIVATE_KEY && certificate.empty()) return "no certificate";
    return certificate;
}

void print_listing_text(const Listing& listing) {
    const pkcs11::ModuleInfo module = listing.module->info();
    std::printf("Module %s: %s, %s\n\n", printable(listing.module->path()).c_str(),
                printable(module.manufacturer).c_str(), printable(module.description).c_str());

    Table tokens({"SLOT", "LABEL", "MANUFACTURER", "MODEL", "SERIAL", "FLAGS"});
    for (const auto& token : listing.tokens) {
        tokens.add_row({std::to_string(token.slot), token.info.label, token.info.manufacturer, token.info.model,
                        token.info.serial, token_flags_text(token.info)});
    }
    if (tokens.empty()) {
        std::printf("No token present.\n");
        return;
    }
    tokens.print(stdout);

    if (!listing.selected) {
        std::printf("\nChoose a token with --token-label, --slot or --token to list its keys and certificates.\n");
        return;
    }
    const Inventory& inventory = listing.inventory;
    const auto shown = shown_objects(listing);
    std::printf("\nToken \"%s\" (slot %lu): %zu object%s\n", printable(listing.selected->info.label).c_str(),
                static_cast<unsigned long>(listing.selected->slot), shown.size(), shown.size() == 1 ? "" : "s");
    if (shown.empty()) return;
    Table objects({"CLASS", "TYPE", "ID", "LABEL", "FLAGS", "CERTIFICATE / KEY"});
    for (const TokenObject* object : shown) {
        std::string algorithm = algorithm_text(object->description);
        objects.add_row({object_class_text(object->object_class), algorithm.empty() ? "?" : algorithm,
                         object->id.empty() ? "-" : ossl::hex(object->id), object->label, key_flags_text(*object),
                         pairing_text(inventory, *object)});
    }
    objects.print(stdout);
}

}  // namespace

void add_list_command(CLI::App& command) {
    auto options = std::make_shared<ListOptions>();
    add_token_options(command, options->token);
    command.add_flag("--json", options->json, "print one JSON document (docs/json.md) instead of tables");
    command.callback([options] {
        const Listing listing = collect(options->token);
        if (options->json) {
            print_listing_json(listing);
        } else {
            print_listing_text(listing);
        }
    });
}

}  // namespace p11vault::cli
