// SPDX-License-Identifier: Apache-2.0
// Reading what a token holds, and pairing keys with their certificates and public keys.
#include "src/inventory.hpp"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <map>
#include <tuple>

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "pkcs11/error.hpp"
#include "src/ec_curves.hpp"
#include "src/session_pool.hpp"

namespace p11vault {
namespace {

// Listing order: what a backup is about first.
constexpr std::array<CK_OBJECT_CLASS, 4> listed_classes = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_SECRET_KEY,
                                                           CKO_CERTIFICATE};

std::size_t class_rank(CK_OBJECT_CLASS object_class) {
    return static_cast<std::size_t>(std::find(listed_classes.begin(), listed_classes.end(), object_class) -
                                    listed_classes.begin());
}

// Attributes that hold private key material. They are never asked for, even if a list of
// "public" attribute types should one day contain one by mistake.
bool is_private_component(CK_ATTRIBUTE_TYPE type) {
    switch (type) {
        case CKA_VALUE:
        case CKA_PRIVATE_EXPONENT:
        case CKA_PRIME_1:
        case CKA_PRIME_2:
        case CKA_EXPONENT_1:
        case CKA_EXPONENT_2:
        case CKA_COEFFICIENT:
            return true;
        default:
            return false;
    }
}

// The public components of a private or public key (never a private component).
std::vector<CK_ATTRIBUTE_TYPE> public_component_types() {
    std::vector<CK_ATTRIBUTE_TYPE> types = {CKA_MODULUS_BITS};
    for (CK_ATTRIBUTE_TYPE type : keys::public_attribute_types()) {
        if (type != CKA_KEY_TYPE && !is_private_component(type) &&
            std::find(types.begin(), types.end(), type) == types.end()) {
            types.push_back(type);
        }
    }
    return types;
}

// The attributes read first for an object of this class. `lazy` (PublicKeyObjects::
// when_needed) leaves out what can often be taken from elsewhere without a token read:
// a public key object's components, and a private key's CKA_PUBLIC_EXPONENT.
std::vector<CK_ATTRIBUTE_TYPE> attribute_types_for(CK_OBJECT_CLASS object_class, bool lazy) {
    std::vector<CK_ATTRIBUTE_TYPE> types = {CKA_ID, CKA_LABEL, CKA_PRIVATE};
    if (object_class == CKO_CERTIFICATE) {
        types.insert(types.end(), {CKA_CERTIFICATE_TYPE, CKA_VALUE});
        return types;
    }
    types.push_back(CKA_KEY_TYPE);
    if (object_class == CKO_PRIVATE_KEY || object_class == CKO_SECRET_KEY) {
        types.insert(types.end(), {CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_NEVER_EXTRACTABLE, CKA_ALWAYS_SENSITIVE,
                                   CKA_WRAP_WITH_TRUSTED});
    }
    if (object_class == CKO_SECRET_KEY) {
        types.push_back(CKA_VALUE_LEN);
        return types;
    }
    if (lazy && object_class == CKO_PUBLIC_KEY) return types;
    for (CK_ATTRIBUTE_TYPE type : public_component_types()) {
        if (!(lazy && type == CKA_PUBLIC_EXPONENT)) types.push_back(type);
    }
    // A DSA public key object's public value (on a private key object it is the secret).
    if (object_class == CKO_PUBLIC_KEY) types.push_back(CKA_VALUE);
    return types;
}

// Bits of a big-endian unsigned integer (leading zero bytes allowed).
unsigned bit_length(const std::vector<std::uint8_t>& value) {
    const auto first = std::find_if(value.begin(), value.end(), [](auto b) { return b != 0; });
    const auto bytes = static_cast<unsigned>(value.end() - first);
    return bytes == 0 ? 0 : (bytes - 1) * 8 + static_cast<unsigned>(32 - __builtin_clz(*first));
}

// "EC_EDWARDS" for CKK_EC_EDWARDS.
std::string key_type_text(CK_KEY_TYPE key_type) {
    std::string name = pkcs11::key_type_name(key_type);
    return name.rfind("CKK_", 0) == 0 ? name.substr(4) : name;
}

std::string secret_key_algorithm(CK_KEY_TYPE key_type) {
    switch (key_type) {
        case CKK_AES: return "AES";
        case CKK_DES3: return "DES3";
        case CKK_DES: return "DES";
        case CKK_GENERIC_SECRET: return "generic-secret";
        default: return key_type_text(key_type);
    }
}

// What a key is, from its attributes alone: for private keys whose public key is not on
// the object (EC keys rarely carry CKA_EC_POINT) and for secret keys.
std::optional<keys::KeyDescription> describe_from_attributes(CK_OBJECT_CLASS object_class,
                                                             const pkcs11::AttributeValues& values) {
    const auto key_type = values.ulong(CKA_KEY_TYPE);
    if (!key_type) return std::nullopt;
    keys::KeyDescription d;
    d.key_type = *key_type;
    if (object_class == CKO_SECRET_KEY) {
        d.algorithm = secret_key_algorithm(*key_type);
        d.bits = static_cast<unsigned>(values.ulong(CKA_VALUE_LEN).value_or(0) * 8);
        return d;
    }
    if (*key_type == CKK_RSA) {
        d.algorithm = "RSA";
        if (auto bits = values.ulong(CKA_MODULUS_BITS)) {
            d.bits = static_cast<unsigned>(*bits);
        } else if (const auto* modulus = values.bytes(CKA_MODULUS)) {
            d.bits = bit_length(*modulus);
        }
        return d;
    }
    if (*key_type == CKK_DSA) {
        d.algorithm = "DSA";
        if (const auto* prime = values.bytes(CKA_PRIME)) d.bits = bit_length(*prime);
        return d;
    }
    const auto* params = values.bytes(CKA_EC_PARAMS);
    const int nid = params != nullptr ? keys::curve_nid_from_params(*params) : NID_undef;
    if (*key_type == CKK_EC_EDWARDS && (nid == NID_ED25519 || nid == NID_ED448)) {
        d.algorithm = d.curve = nid == NID_ED25519 ? "Ed25519" : "Ed448";
        d.bits = nid == NID_ED25519 ? 255 : 448;
        return d;
    }
    if (*key_type == CKK_EC) {
        d.algorithm = "EC";
        if (params != nullptr)
            if (auto curve = keys::ec_curve_from_params(*params)) {
                d.curve = curve->display;
                d.bits = curve->bits;
            }
        return d;
    }
    d.algorithm = key_type_text(*key_type);
    return d;
}

// keys::describe for the key types p11vault handles; a plain description for the others
// (a certificate may hold any key).
keys::KeyDescription describe_public_key(const EVP_PKEY* key) {
    try {
        return keys::describe(key);
    } catch (const Error&) {
        keys::KeyDescription d;
        d.bits = static_cast<unsigned>(std::max(EVP_PKEY_get_bits(key), 0));
        const char* name = EVP_PKEY_get0_type_name(key);
        d.algorithm = name != nullptr ? name : "unknown";
        d.key_type = EVP_PKEY_is_a(key, "EC") ? CKK_EC : CKK_VENDOR_DEFINED;
        return d;
    }
}

ossl::Pkey share(const ossl::Pkey& key) {
    if (!key || EVP_PKEY_up_ref(key.get()) != 1) return {};
    return ossl::Pkey(key.get());
}

void set_public_key(TokenObject& object, ossl::Pkey key) {
    object.public_key = std::move(key);
    if (!object.public_key) return;
    try {
        object.spki_sha256 = keys::spki_sha256(object.public_key.get());
    } catch (const Error&) {
        object.spki_sha256.clear();
    }
}

void read_certificate(TokenObject& object, const pkcs11::AttributeValues& values) {
    const auto certificate_type = values.ulong(CKA_CERTIFICATE_TYPE);
    const auto* der = values.bytes(CKA_VALUE);
    if ((certificate_type && *certificate_type != CKC_X_509) || der == nullptr || der->empty()) return;
    ossl::Cert cert(X509_new_ex(ossl::libctx(), nullptr));
    X509* target = cert.get();
    const unsigned char* p = der->data();
    if (!target || d2i_X509(&target, &p, static_cast<long>(der->size())) == nullptr) {
        ERR_clear_error();  // not X.509 after all: listed without certificate details
        return;
    }
    if (ossl::Pkey key{X509_get_pubkey(cert.get())}) {
        object.description = describe_public_key(key.get());
        set_public_key(object, std::move(key));
    }
    ERR_clear_error();
    object.certificate = std::move(cert);
}

void read_key(TokenObject& object, const pkcs11::AttributeValues& values) {
    if (object.object_class != CKO_SECRET_KEY) {
        ossl::Pkey key;
        try {
            key = keys::public_key_from_attributes(values);
        } catch (const Error&) {
            ERR_clear_error();  // malformed public attributes: described from the rest
        }
        if (key) {
            object.description = describe_public_key(key.get());
            set_public_key(object, std::move(key));
            object.own_public_key = true;
            return;
        }
    }
    object.description = describe_from_attributes(object.object_class, values);
}

TokenObject read_object(CK_OBJECT_HANDLE handle, CK_OBJECT_CLASS object_class, const pkcs11::AttributeValues& values) {
    TokenObject object;
    object.handle = handle;
    object.object_class = object_class;
    if (object_class != CKO_CERTIFICATE) object.key_type = values.ulong(CKA_KEY_TYPE);
    if (const auto* id = values.bytes(CKA_ID)) object.id = *id;
    object.label = values.text(CKA_LABEL).value_or("");
    object.sensitive = values.boolean(CKA_SENSITIVE);
    object.extractable = values.boolean(CKA_EXTRACTABLE);
    object.never_extractable = values.boolean(CKA_NEVER_EXTRACTABLE);
    object.always_sensitive = values.boolean(CKA_ALWAYS_SENSITIVE);
    object.is_private = values.boolean(CKA_PRIVATE);
    object.wrap_with_trusted = values.boolean(CKA_WRAP_WITH_TRUSTED);
    if (object_class == CKO_CERTIFICATE) {
        read_certificate(object, values);
    } else {
        read_key(object, values);
    }
    return object;
}

// --- pairing -----------------------------------------------------------------------

// Objects of the same CKA_ID belong together unless their public keys are both known and
// differ (a CA certificate that happens to share an id).
bool compatible(const TokenObject& a, const TokenObject& b) {
    return !a.public_key || !b.public_key || keys::same_public_key(a.public_key.get(), b.public_key.get());
}

// The objects of each non-empty CKA_ID, in inventory order: pairing looks an id up instead
// of scanning every object per key, which was O(N^2) for a token of N keys.
class IdIndex {
public:
    explicit IdIndex(const std::vector<TokenObject>& objects) {
        for (std::size_t i = 0; i < objects.size(); ++i)
            if (!objects[i].id.empty()) by_id_[objects[i].id].push_back(i);
    }
    // The objects sharing `object`'s CKA_ID (itself included); none when it has no id.
    const std::vector<std::size_t>& with_id_of(const TokenObject& object) const {
        static const std::vector<std::size_t> none;
        if (object.id.empty()) return none;
        auto it = by_id_.find(object.id);
        return it == by_id_.end() ? none : it->second;
    }

private:
    std::map<pkcs11::Bytes, std::vector<std::size_t>> by_id_;
};

// The first object of `wanted` class that pairs with `key` and is still free: same CKA_ID
// first, else the same public key.
std::optional<std::size_t> find_partner(const Inventory& inventory, const IdIndex& ids, const TokenObject& key,
                                        CK_OBJECT_CLASS wanted, const std::vector<bool>& taken) {
    const auto& objects = inventory.objects;
    for (std::size_t i : ids.with_id_of(key)) {
        if (objects[i].object_class == wanted && !taken[i] && compatible(key, objects[i])) return i;
    }
    if (!key.public_key) return std::nullopt;
    // Across ids only for a key its id did not pair: a linear scan, rare in practice.
    for (std::size_t i = 0; i < objects.size(); ++i) {
        if (objects[i].object_class == wanted && !taken[i] &&
            keys::same_public_key(key.public_key.get(), objects[i].public_key.get()))
            return i;
    }
    return std::nullopt;
}

// An EC private key rarely carries its point: take the public key of a same-id public key
// object or certificate.
void complete_public_key(Inventory& inventory, const IdIndex& ids, std::size_t index) {
    TokenObject& key = inventory.objects[index];
    if (key.public_key) return;
    for (CK_OBJECT_CLASS source : {CKO_PUBLIC_KEY, CKO_CERTIFICATE}) {
        for (std::size_t i : ids.with_id_of(key)) {
            const TokenObject& other = inventory.objects[i];
            if (other.object_class != source || !other.public_key) continue;
            if (key.key_type && other.description && other.description->key_type != *key.key_type) continue;
            set_public_key(key, share(other.public_key));
            if (!key.description) key.description = describe_public_key(key.public_key.get());
            return;
        }
    }
}

void pair_objects(Inventory& inventory) {
    auto& objects = inventory.objects;
    const IdIndex ids(objects);
    std::vector<bool> taken_certificate(objects.size(), false);
    std::vector<bool> taken_public_key(objects.size(), false);
    for (std::size_t i : inventory.indexes_of(CKO_PRIVATE_KEY)) {
        complete_public_key(inventory, ids, i);
        if (auto public_key = find_partner(inventory, ids, objects[i], CKO_PUBLIC_KEY, taken_public_key)) {
            taken_public_key[*public_key] = true;
            objects[i].paired_public_key = public_key;
            objects[*public_key].paired_private_key = i;
        }
        if (auto certificate = find_partner(inventory, ids, objects[i], CKO_CERTIFICATE, taken_certificate)) {
            taken_certificate[*certificate] = true;
            objects[i].paired_certificate = certificate;
            objects[*certificate].paired_private_key = i;
        }
    }
    // A public key object pairs with the certificate of its private key, or on its own
    // with a certificate no private key took.
    std::vector<bool> owned_certificate(objects.size(), false);
    for (std::size_t c = 0; c < objects.size(); ++c) owned_certificate[c] = objects[c].paired_private_key.has_value();
    for (std::size_t i : inventory.indexes_of(CKO_PUBLIC_KEY)) {
        if (const auto& owner = objects[i].paired_private_key) {
            objects[i].paired_certificate = objects[*owner].paired_certificate;
            continue;
        }
        if (auto certificate = find_partner(inventory, ids, objects[i], CKO_CERTIFICATE, owned_certificate)) {
            objects[i].paired_certificate = certificate;
        }
    }
}

// --- lazy reads (PublicKeyObjects::when_needed) ---------------------------------------

// An RSA private key read without CKA_PUBLIC_EXPONENT: a certificate of its CKA_ID with the
// same modulus gives its public key, else the exponent is read from the key.
void complete_rsa_private_key(pkcs11::Session& session, Inventory& inventory, const IdIndex& ids,
                              TokenObject& key, const pkcs11::Bytes& modulus) {
    for (std::size_t i : ids.with_id_of(key)) {
        const TokenObject& other = inventory.objects[i];
        if (other.object_class == CKO_CERTIFICATE && keys::has_rsa_modulus(other.public_key.get(), modulus)) {
            set_public_key(key, share(other.public_key));
            key.own_public_key = true;  // the key's own modulus picked the certificate
            key.description = describe_public_key(key.public_key.get());
            return;
        }
    }
    read_key(key, session.get_attributes(key.handle, std::vector<CK_ATTRIBUTE_TYPE>{
                                                         CKA_KEY_TYPE, CKA_MODULUS_BITS, CKA_MODULUS,
                                                         CKA_PUBLIC_EXPONENT}));
}

// A public key object's components, read only when no private key of its CKA_ID has a
// public key: then they may complete an EC private key without its point, or pair by
// public key across different ids. The others pair by id alone.
void complete_public_key_object(pkcs11::Session& session, const Inventory& inventory, const IdIndex& ids,
                                TokenObject& object) {
    const auto& same_id_objects = ids.with_id_of(object);
    const bool covered = std::any_of(same_id_objects.begin(), same_id_objects.end(), [&](std::size_t i) {
        const TokenObject& other = inventory.objects[i];
        return other.object_class == CKO_PRIVATE_KEY && other.public_key;
    });
    if (covered) return;
    // The key type is known by now: only its own components (an EC key has no CKA_MODULUS).
    const bool rsa = object.key_type == CKK_RSA;
    const auto is_rsa_component = [](CK_ATTRIBUTE_TYPE type) {
        return type == CKA_MODULUS_BITS || type == CKA_MODULUS || type == CKA_PUBLIC_EXPONENT;
    };
    std::vector<CK_ATTRIBUTE_TYPE> types = {CKA_KEY_TYPE};
    for (CK_ATTRIBUTE_TYPE type : public_component_types())
        if (!object.key_type || is_rsa_component(type) == rsa) types.push_back(type);
    if (object.key_type == CKK_DSA) types.push_back(CKA_VALUE);  // the public value y
    read_key(object, session.get_attributes(object.handle, types));
}

}  // namespace

std::vector<std::size_t> Inventory::indexes_of(CK_OBJECT_CLASS object_class) const {
    std::vector<std::size_t> indexes;
    for (std::size_t i = 0; i < objects.size(); ++i) {
        if (objects[i].object_class == object_class) indexes.push_back(i);
    }
    return indexes;
}

Inventory read_inventory(pkcs11::Session& session, PublicKeyObjects public_key_objects) {
    SessionPool one(session, 1, /*read_write=*/false);
    return read_inventory(one, public_key_objects);
}

Inventory read_inventory(SessionPool& pool, PublicKeyObjects public_key_objects) {
    Inventory inventory;
    const bool lazy = public_key_objects == PublicKeyObjects::when_needed;
    // The searches on one session, then the reads (two calls per object) spread over the
    // pool: on a network HSM the reads are most of a backup's round trips.
    std::vector<std::pair<CK_OBJECT_HANDLE, CK_OBJECT_CLASS>> found;
    for (CK_OBJECT_CLASS object_class : listed_classes) {
        pkcs11::AttributeTemplate match;
        match.add_class(object_class);
        for (CK_OBJECT_HANDLE handle : pool.session(0).find(match)) found.emplace_back(handle, object_class);
    }
    std::vector<std::optional<pkcs11::Bytes>> moduli(found.size());  // RSA private keys read without the exponent
    inventory.objects.resize(found.size());
    pool.for_each(found.size(), [&](unsigned worker, std::size_t i) {
        const auto [handle, object_class] = found[i];
        const pkcs11::AttributeValues values =
            pool.session(worker).get_attributes(handle, attribute_types_for(object_class, lazy));
        inventory.objects[i] = read_object(handle, object_class, values);
        const pkcs11::Bytes* modulus = values.bytes(CKA_MODULUS);
        if (lazy && object_class == CKO_PRIVATE_KEY && inventory.objects[i].key_type == CKK_RSA && modulus != nullptr)
            moduli[i] = *modulus;
    });
    if (lazy) {
        // Private keys first: a public key object is read in full only for a private key
        // that is still without a public key. (Indexes of the unsorted list, used only here.)
        // Each task changes only its own object and reads others of the phase before.
        const IdIndex ids(inventory.objects);
        pool.for_each(found.size(), [&](unsigned worker, std::size_t i) {
            if (moduli[i])
                complete_rsa_private_key(pool.session(worker), inventory, ids, inventory.objects[i], *moduli[i]);
        });
        pool.for_each(found.size(), [&](unsigned worker, std::size_t i) {
            if (inventory.objects[i].object_class == CKO_PUBLIC_KEY)
                complete_public_key_object(pool.session(worker), inventory, ids, inventory.objects[i]);
        });
    }
    std::stable_sort(inventory.objects.begin(), inventory.objects.end(), [](const auto& a, const auto& b) {
        const std::size_t rank_a = class_rank(a.object_class), rank_b = class_rank(b.object_class);
        return std::tie(rank_a, a.id, a.label) < std::tie(rank_b, b.id, b.label);
    });
    pair_objects(inventory);
    return inventory;
}

}  // namespace p11vault
