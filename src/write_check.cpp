// SPDX-License-Identifier: Apache-2.0
#include "src/write_check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "p11vault/error.hpp"
#include "pkcs11/error.hpp"
#include "src/keys.hpp"
#include "src/ossl.hpp"

namespace p11vault {

namespace {

using pkcs11::Bytes;

// The attributes the contract promises, in the order they are checked and repaired:
// sensitivity before extractability, so that a key is never less protected between two
// repairs than it was before them.
constexpr CK_ATTRIBUTE_TYPE kContract[] = {
    CKA_CLASS,   CKA_KEY_TYPE, CKA_CERTIFICATE_TYPE, CKA_TOKEN,           CKA_SENSITIVE, CKA_EXTRACTABLE,
    CKA_PRIVATE, CKA_ID,       CKA_LABEL,            CKA_MODULUS,         CKA_PUBLIC_EXPONENT,
    CKA_EC_PARAMS, CKA_EC_POINT, CKA_VALUE,
};

bool is_boolean(CK_ATTRIBUTE_TYPE type) {
    return type == CKA_TOKEN || type == CKA_SENSITIVE || type == CKA_EXTRACTABLE || type == CKA_PRIVATE;
}

// Whether C_SetAttributeValue may set `type` to `wanted` (PKCS#11 3.0 §4.4, table 10):
// CKA_SENSITIVE may only become TRUE, CKA_EXTRACTABLE only FALSE; CKA_PRIVATE, CKA_ID
// and CKA_LABEL are modifiable. Class, type, CKA_TOKEN and values never change.
bool repairable(CK_ATTRIBUTE_TYPE type, std::span<const std::uint8_t> wanted) {
    const bool wanted_true = !wanted.empty() && wanted[0] != CK_FALSE;
    switch (type) {
        case CKA_SENSITIVE:
            return wanted_true;
        case CKA_EXTRACTABLE:
            return !wanted_true;
        case CKA_PRIVATE:
        case CKA_ID:
        case CKA_LABEL:
            return true;
        default:
            return false;
    }
}

bool same_value(CK_ATTRIBUTE_TYPE type, std::span<const std::uint8_t> wanted, const std::optional<Bytes>& held) {
    if (!held) return false;
    if (is_boolean(type)) {
        if (wanted.empty() || held->empty()) return wanted.empty() == held->empty();
        return (wanted[0] != CK_FALSE) == ((*held)[0] != CK_FALSE);
    }
    return std::equal(wanted.begin(), wanted.end(), held->begin(), held->end());
}

// How a value is shown in a message: booleans and identities as such; key material and
// certificates are public here but long, so only "a different value".
std::string shown(CK_ATTRIBUTE_TYPE type, const std::optional<Bytes>& value) {
    if (!value) return "nothing (the token does not return it)";
    if (is_boolean(type)) return !value->empty() && (*value)[0] != CK_FALSE ? "TRUE" : "FALSE";
    if (type == CKA_ID) return value->empty() ? "an empty CKA_ID" : ossl::hex(*value);
    if (type == CKA_LABEL) return fmt::format("\"{}\"", std::string(value->begin(), value->end()));
    return "a different value";
}

std::string wanted_text(CK_ATTRIBUTE_TYPE type, std::span<const std::uint8_t> wanted) {
    return shown(type, Bytes(wanted.begin(), wanted.end()));
}

[[noreturn]] void fail(const WrittenObject& object, const std::string& what) {
    throw Error(ErrorKind::token, fmt::format("{}: {}", object.description, what));
}

// The private key's public half against the file's key: RSA by its public components,
// EC by its curve (a private EC key object has no CKA_EC_POINT), DSA by its domain.
void check_public_half(pkcs11::Session& session, const WrittenObject& object, CK_KEY_TYPE key_type) {
    if (object.public_key == nullptr) return;
    if (key_type == CKK_RSA) {
        // By modulus: the file's key may be RSA-PSS, the token's is CKK_RSA either way.
        std::optional<Bytes> modulus = session.get_bytes(object.handle, CKA_MODULUS);
        if (!modulus)
            fail(object, "the token does not return its CKA_MODULUS, so it cannot be checked against the file's key");
        if (!keys::has_rsa_modulus(object.public_key, *modulus))
            fail(object, fmt::format("the key the token holds after {} is not the file's key (different public key)",
                                     object.created_by));
    } else if (key_type == CKK_EC || key_type == CKK_DSA) {
        // The domain: the curve, or DSA's p, q and g.
        pkcs11::AttributeTemplate file_public;
        keys::add_public_attributes(object.public_key, file_public);
        const std::vector<CK_ATTRIBUTE_TYPE> domain =
            key_type == CKK_EC ? std::vector<CK_ATTRIBUTE_TYPE>{CKA_EC_PARAMS}
                               : std::vector<CK_ATTRIBUTE_TYPE>{CKA_PRIME, CKA_SUBPRIME, CKA_BASE};
        for (CK_ATTRIBUTE_TYPE type : domain) {
            auto wanted = file_public.public_value(type);
            std::optional<Bytes> held = session.get_bytes(object.handle, type);
            if (wanted && !same_value(type, *wanted, held))
                fail(object, fmt::format("the key the token holds after {} is not on the file's {} ({} differs)",
                                         object.created_by, key_type == CKK_EC ? "curve" : "DSA domain",
                                         pkcs11::attribute_name(type)));
        }
    }
}

// A key that claims to be sensitive must not give its secret away.
void check_secret_unreadable(pkcs11::Session& session, const WrittenObject& object, CK_KEY_TYPE key_type) {
    const CK_ATTRIBUTE_TYPE secret = key_type == CKK_RSA ? CKA_PRIVATE_EXPONENT : CKA_VALUE;
    if (session.get_secret(object.handle, secret))
        fail(object, fmt::format("the token reports CKA_SENSITIVE=TRUE but returns the key's {}",
                                 pkcs11::attribute_name(secret)));
}

}  // namespace

std::vector<std::string> check_written_object(pkcs11::Session& session, const WrittenObject& object) {
    const pkcs11::AttributeTemplate& requested = *object.requested;
    // One batch read of every contract attribute the template has, repairs one by one.
    std::vector<CK_ATTRIBUTE_TYPE> types;
    for (CK_ATTRIBUTE_TYPE type : kContract)
        if (requested.public_value(type)) types.push_back(type);
    if (std::find(types.begin(), types.end(), CKA_KEY_TYPE) == types.end()) types.push_back(CKA_KEY_TYPE);
    const pkcs11::AttributeValues values = session.get_attributes(object.handle, types);
    auto held_value = [&](CK_ATTRIBUTE_TYPE type) -> std::optional<Bytes> {
        const Bytes* value = values.bytes(type);
        return value != nullptr ? std::optional<Bytes>(*value) : std::nullopt;
    };

    std::vector<std::string> repaired;
    for (CK_ATTRIBUTE_TYPE type : types) {
        auto wanted = requested.public_value(type);
        if (!wanted) continue;
        std::optional<Bytes> held = held_value(type);
        if (same_value(type, *wanted, held)) continue;
        const std::string name = pkcs11::attribute_name(type);
        const std::string ignored = fmt::format("{} ignored {}={} (the token holds {})", object.created_by, name,
                                                wanted_text(type, *wanted), shown(type, held));
        if (!repairable(type, *wanted)) fail(object, ignored + ", which cannot be changed afterwards");
        pkcs11::AttributeTemplate repair;
        repair.add_bytes(type, *wanted);
        try {
            session.set_attributes(object.handle, repair);
        } catch (const pkcs11::Pkcs11Error& e) {
            fail(object, fmt::format("{}, and repairing it failed: C_SetAttributeValue: {}", ignored,
                                     pkcs11::rv_name(e.rv())));
        }
        held = session.get_bytes(object.handle, type);
        if (!same_value(type, *wanted, held))
            fail(object, fmt::format("{}; C_SetAttributeValue answered CKR_OK but the token still holds {}", ignored,
                                     shown(type, held)));
        repaired.push_back(name);
    }

    const auto object_class = values.ulong(CKA_CLASS);
    const auto key_type = values.ulong(CKA_KEY_TYPE);
    if (object_class == CKO_PRIVATE_KEY && key_type) {
        check_public_half(session, object, *key_type);
        auto sensitive = requested.public_value(CKA_SENSITIVE);
        if (sensitive && !sensitive->empty() && (*sensitive)[0] != CK_FALSE)
            check_secret_unreadable(session, object, *key_type);
    }
    if (object_class == CKO_SECRET_KEY && key_type) {
        auto sensitive = requested.public_value(CKA_SENSITIVE);
        if (sensitive && !sensitive->empty() && (*sensitive)[0] != CK_FALSE)
            check_secret_unreadable(session, object, *key_type);
    }
    return repaired;
}

}  // namespace p11vault
