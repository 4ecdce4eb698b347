// SPDX-License-Identifier: Apache-2.0
// p11vault list: every token of the module, and for the selected token every key and
// certificate with the facts a backup decision needs (docs/cli.md, docs/json.md).
#include <cstdio>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "p11vault/token.hpp"
#include "src/cli/api_bridge.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/common.hpp"

namespace p11vault::cli {
namespace {

using Json = nlohmann::ordered_json;

struct ListOptions {
    TokenOptions token;
    bool json = false;
};

// --- JSON --------------------------------------------------------------------------

Json optional_bool(const std::optional<bool>& value) { return value ? Json(*value) : Json(nullptr); }

Json reference_json(const std::optional<ObjectReference>& reference) {
    if (!reference) return nullptr;
    Json json = {{"id", hex(reference->id)}, {"label", reference->label}};
    if (reference->subject) json["subject"] = *reference->subject;
    return json;
}

Json object_json(const ObjectDescription& object) {
    Json json = {
        {"class", object_class_name(object.object_class, object.class_value)},
        {"key_type", object.key_type ? Json(*object.key_type) : Json(nullptr)},
        {"algorithm", object.algorithm.empty() ? Json(nullptr) : Json(object.algorithm)},
        {"bits", object.bits != 0 ? Json(object.bits) : Json(nullptr)},
        {"curve", !object.curve.empty() ? Json(object.curve) : Json(nullptr)},
        {"id", hex(object.id)},
        {"label", object.label},
        {"private", optional_bool(object.is_private)},
        {"sensitive", optional_bool(object.sensitive)},
        {"extractable", optional_bool(object.extractable)},
        {"never_extractable", optional_bool(object.never_extractable)},
        {"always_sensitive", optional_bool(object.always_sensitive)},
        {"wrap_with_trusted", optional_bool(object.wrap_with_trusted)},
    };
    if (object.object_class == ObjectClass::certificate) {
        json["subject"] = object.subject ? Json(*object.subject) : Json(nullptr);
        json["issuer"] = object.issuer ? Json(*object.issuer) : Json(nullptr);
        json["certificate_sha256"] =
            object.certificate_sha256.empty() ? Json(nullptr) : Json(hex(object.certificate_sha256));
        json["private_key"] = reference_json(object.private_key);
    } else {
        json["certificate"] = reference_json(object.certificate);
        if (object.object_class == ObjectClass::private_key) json["public_key"] = reference_json(object.public_key);
        if (object.object_class == ObjectClass::public_key) json["private_key"] = reference_json(object.private_key);
    }
    json["spki_sha256"] = object.spki_sha256.empty() ? Json(nullptr) : Json(hex(object.spki_sha256));
    return json;
}

Json module_json(const ModuleDescription& module) {
    return {
        {"path", module.path},
        {"manufacturer", module.manufacturer},
        {"description", module.description},
        {"cryptoki_version", module.cryptoki_version},
        {"library_version", module.library_version},
    };
}

void print_listing_json(const TokenListing& listing) {
    Json document = {{"format", json_format("list")}, {"module", module_json(listing.module)}};
    Json tokens = Json::array();
    for (const auto& token : listing.tokens) tokens.push_back(token_json(token));
    document["tokens"] = std::move(tokens);
    if (listing.selected) {
        document["token"] = token_json(*listing.selected);
        Json objects = Json::array();
        for (const auto& object : listing.objects) objects.push_back(object_json(object));
        document["objects"] = std::move(objects);
    } else {
        document["token"] = nullptr;
        document["objects"] = nullptr;
    }
    print_json(document);
}

// --- human output ------------------------------------------------------------------

std::string token_flags_text(const TokenDescription& token) {
    std::vector<std::string> flags;
    if (!token.initialized) flags.push_back("uninitialized");
    if (token.login_required) flags.push_back("login-required");
    if (token.initialized && !token.user_pin_initialized) flags.push_back("no-user-pin");
    if (token.pin_count_low) flags.push_back("pin-count-low");
    if (token.pin_final_try) flags.push_back("pin-final-try");
    if (token.pin_locked) flags.push_back("pin-locked");
    return fmt::format("{}", fmt::join(flags, ","));
}

std::string key_flags_text(const ObjectDescription& object) {
    std::vector<std::string> flags;
    auto add = [&](const std::optional<bool>& value, const char* yes, const char* no) {
        if (value) flags.push_back(*value ? yes : no);
    };
    add(object.sensitive, "sensitive", "not-sensitive");
    add(object.extractable, "extractable", "not-extractable");
    if (object.never_extractable.value_or(false)) flags.push_back("never-extractable");
    if (object.always_sensitive.value_or(false)) flags.push_back("always-sensitive");
    if (object.wrap_with_trusted.value_or(false)) flags.push_back("wrap-with-trusted");
    if (object.is_private.value_or(false) && object.object_class != ObjectClass::private_key)
        flags.push_back("private");
    return fmt::format("{}", fmt::join(flags, ","));
}

std::string reference_text(const std::optional<ObjectReference>& reference, const char* what) {
    if (!reference) return {};
    std::string text = fmt::format("{} id={}", what, reference->id.empty() ? "-" : hex(reference->id));
    if (reference->subject) text += " " + *reference->subject;
    return text;
}

std::string pairing_text(const ObjectDescription& object) {
    if (object.object_class == ObjectClass::certificate) {
        std::string subject = object.subject ? *object.subject : std::string("(not X.509)");
        std::string key = reference_text(object.private_key, "key");
        return key.empty() ? subject : subject + "; " + key;
    }
    if (object.object_class == ObjectClass::secret_key) return {};
    std::string certificate = reference_text(object.certificate, "cert");
    if (object.object_class == ObjectClass::private_key && certificate.empty()) return "no certificate";
    return certificate;
}

void print_listing_text(const TokenListing& listing) {
    std::printf("Module %s: %s, %s\n\n", printable(listing.module.path).c_str(),
                printable(listing.module.manufacturer).c_str(), printable(listing.module.description).c_str());

    Table tokens({"SLOT", "LABEL", "MANUFACTURER", "MODEL", "SERIAL", "FLAGS"});
    for (const auto& token : listing.tokens) {
        tokens.add_row({std::to_string(token.slot), token.label, token.manufacturer, token.model, token.serial,
                        token_flags_text(token)});
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
    const auto& shown = listing.objects;
    std::printf("\nToken \"%s\" (slot %lu): %zu object%s\n", printable(listing.selected->label).c_str(),
                listing.selected->slot, shown.size(), shown.size() == 1 ? "" : "s");
    if (shown.empty()) return;
    Table objects({"CLASS", "TYPE", "ID", "LABEL", "FLAGS", "CERTIFICATE / KEY"});
    for (const auto& object : shown) {
        objects.add_row({object_class_name(object.object_class, object.class_value),
                         object.algorithm.empty() ? "?" : object.algorithm, object.id.empty() ? "-" : hex(object.id),
                         object.label, key_flags_text(object), pairing_text(object)});
    }
    objects.print(stdout);
}

}  // namespace

void add_list_command(CLI::App& command) {
    auto options = std::make_shared<ListOptions>();
    add_token_options(command, options->token);
    command.add_flag("--json", options->json, "print one JSON document (docs/json.md) instead of tables");
    command.callback([options] {
        CommandRun run("list", /*quiet=*/true);
        run.add_token(options->token);
        const TokenListing listing = list_tokens(token_spec_of(options->token), run, run);
        if (options->json) {
            print_listing_json(listing);
        } else {
            print_listing_text(listing);
        }
    });
}

}  // namespace p11vault::cli
