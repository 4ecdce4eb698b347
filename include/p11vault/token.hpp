// SPDX-License-Identifier: Apache-2.0
// Which token an operation works on, what a module and its tokens say of themselves, and
// listing a token's keys and certificates (`p11vault list`). Value types only: no
// PKCS#11, OpenSSL or JSON types; the library resolves modules and tokens as docs/cli.md
// ("Selecting a token") says.
//
// Usage:
//     p11vault::TokenSpec spec;
//     spec.module = "/usr/lib/softhsm/libsofthsm2.so";
//     spec.label = "CA";
//     p11vault::TokenListing listing = p11vault::list_tokens(spec, my_secrets, my_events);
// The PIN is asked of the SecretProvider (SecretPurpose::token_pin, subject `token "CA"`)
// only when the token needs a login, after the token was found and its PIN found not
// locked; a token reporting few PIN tries left is said through Events::warning after the
// PIN was provided and before it is used. A PIN is never tried twice.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "p11vault/events.hpp"
#include "p11vault/export.hpp"

namespace p11vault {

// The most sessions a run may be asked to use at once (the `jobs` of BackupSpec,
// RestoreSpec, MigrateSpec; VerifySpec::drill_jobs): more is an Error(usage), raised before
// any secret is asked for. A thread per session: a bound on what a typo can start.
inline constexpr unsigned kMaxJobs = 256;

struct TokenSpec {
    // A library path or a p11-kit module name ("softhsm2"); absent: the module of the URI,
    // else $P11VAULT_MODULE, else p11-kit's proxy.
    std::optional<std::string> module;
    std::optional<std::string> module_init;  // C_Initialize parameters (NSS: configdir='sql:DIR')
    std::optional<std::string> uri;          // RFC 7512 "pkcs11:token=CA;id=%01"
    std::optional<std::string> label;        // the token's label
    std::optional<unsigned long> slot;       // the slot id
    // How error messages name these settings: "" gives --module, --token, --pin; "from-"
    // gives --from-module etc. (the command-line tool's names; docs/cli.md).
    std::string option_prefix;
    // True when any of uri, label, slot is given.
    bool selects_token() const { return uri.has_value() || label.has_value() || slot.has_value(); }
};

// What C_GetTokenInfo says of a token, blank padding removed.
struct TokenDescription {
    unsigned long slot = 0;
    std::string label, manufacturer, model, serial;
    bool login_required = false;
    bool initialized = false;
    bool user_pin_initialized = false;
    bool pin_count_low = false;
    bool pin_final_try = false;
    bool pin_locked = false;
};

struct ModuleDescription {
    std::string path;  // the library loaded
    std::string manufacturer, description;
    std::string cryptoki_version, library_version;  // "2.40"
};

enum class ObjectClass { private_key, public_key, secret_key, certificate, data, other };

// Another object an object pairs with (a key's certificate, a certificate's key).
struct ObjectReference {
    std::vector<std::uint8_t> id;
    std::string label;
    std::optional<std::string> subject;  // when it is an X.509 certificate (RFC 2253)
};

struct ObjectDescription {
    ObjectClass object_class = ObjectClass::other;
    unsigned long class_value = 0;          // CKO_ value, for ObjectClass::other
    std::optional<std::string> key_type;    // "RSA", "EC", "AES" (CKK_ name without CKK_)
    std::string algorithm;                  // "RSA-2048", "EC-P256", "AES-256"; empty when unknown
    unsigned bits = 0;                      // 0 when unknown
    std::string curve;                      // "P-256"; empty when none
    std::vector<std::uint8_t> id;
    std::string label;
    // Attributes as the token reports them; absent when it does not say.
    std::optional<bool> is_private, sensitive, extractable, never_extractable, always_sensitive, wrap_with_trusted;
    // Certificates: what the X.509 certificate says (absent for a certificate of another type).
    std::optional<std::string> subject, issuer;   // RFC 2253
    std::vector<std::uint8_t> certificate_sha256; // of the DER; empty when not X.509
    // Pairing (by CKA_ID and public key): every object of the token is considered, also
    // those a URI's object filters leave out of the listing.
    std::optional<ObjectReference> certificate;   // keys
    std::optional<ObjectReference> public_key;    // private keys
    std::optional<ObjectReference> private_key;   // public keys and certificates
    std::vector<std::uint8_t> spki_sha256;        // empty when the public key is unknown
};

struct TokenListing {
    ModuleDescription module;
    std::vector<TokenDescription> tokens;     // every slot with a token present, in slot order
    // The token whose objects are listed: the one the spec selects, or the only
    // initialized one when it selects none; absent when there are several and none is selected.
    std::optional<TokenDescription> selected;
    std::vector<ObjectDescription> objects;   // the selected token's objects (the URI's id=, object=, type= filter them)
};

// Loads the module and lists its tokens and, for the selected token, its objects (logging
// in when the token requires it). Error(usage) for a bad URI; Error(token) when the module
// cannot be loaded, or the selection matches no token or several.
P11VAULT_EXPORT TokenListing list_tokens(const TokenSpec& spec, SecretProvider& secrets, Events& events);

// The URI's pin-source (RFC 7512) as a secret source "file:PATH" (file:PATH,
// file:///PATH and an absolute path are taken), or none. Error(usage) for a bad URI or a
// pin-source that names no file (its value is not repeated: it may be a PIN). For a
// SecretProvider that reads the PIN where the URI says.
P11VAULT_EXPORT std::optional<std::string> uri_pin_source(const TokenSpec& spec);

// "private-key", "public-key", "secret-key", "certificate", "data", "class-0x80000001".
P11VAULT_EXPORT std::string object_class_name(ObjectClass object_class, unsigned long class_value);

}  // namespace p11vault
