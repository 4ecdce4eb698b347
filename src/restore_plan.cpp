// SPDX-License-Identifier: Apache-2.0
#include "src/restore_plan.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "p11vault/error.hpp"
#include "pkcs11/error.hpp"
#include "src/drill.hpp"
#include "src/progress.hpp"
#include "src/token_capability.hpp"

namespace p11vault {

namespace {

struct ExistingObject {
    CK_OBJECT_HANDLE handle;
    CK_OBJECT_CLASS object_class;
    std::vector<std::uint8_t> id;
    std::string label;
    std::vector<std::uint8_t> value;  // certificates: DER
};

// One pass over the token, up front: every later conflict question is answered from
// this list, not by another search per key. One search for every object, not one per
// class: SoftHSM walks its whole store on each C_FindObjectsInit (about 85 ms for 3,000
// objects, measured), which costs more than the reads of other classes it would save.
std::vector<ExistingObject> scan_token(pkcs11::Session& session) {
    pkcs11::AttributeTemplate any;
    std::vector<ExistingObject> out;
    static const CK_ATTRIBUTE_TYPE types[] = {CKA_CLASS, CKA_ID, CKA_LABEL};
    for (CK_OBJECT_HANDLE handle : session.find(any)) {
        pkcs11::AttributeValues values = session.get_attributes(handle, types);
        ExistingObject object{handle, values.ulong(CKA_CLASS).value_or(CKO_DATA), {}, {}, {}};
        if (const auto* id = values.bytes(CKA_ID)) object.id = *id;
        object.label = values.text(CKA_LABEL).value_or("");
        if (object.object_class == CKO_CERTIFICATE)
            object.value = session.get_bytes(handle, CKA_VALUE).value_or(pkcs11::Bytes{});
        out.push_back(std::move(object));
    }
    return out;
}

// Whether the private key under key.id on the token is the file's key: by the public half
// the private key object shows (an RSA modulus, an EC point), else by the public key
// object of the same id, else by a signature it makes that the file's public key verifies
// (a private EC key rarely shows its point). The first of these the token offers decides.
bool holds_this_key(pkcs11::Session& session, const std::vector<ExistingObject>& existing, const PlannedKey& key) {
    if (key.id.empty() || !key.public_key) return false;
    // nullopt: the object shows no public half.
    auto shows_this_key = [&](CK_OBJECT_HANDLE handle) -> std::optional<bool> {
        pkcs11::AttributeValues values = session.get_attributes(handle, keys::public_attribute_types());
        if (const auto* modulus = values.bytes(CKA_MODULUS); modulus != nullptr && !modulus->empty())
            return keys::has_rsa_modulus(key.public_key.get(), *modulus);  // RSA-PSS files too
        ossl::Pkey shown = keys::public_key_from_attributes(values);
        if (!shown) return std::nullopt;
        return keys::same_public_key(shown.get(), key.public_key.get());
    };
    auto with_id = [&](CK_OBJECT_CLASS object_class) {
        std::vector<CK_OBJECT_HANDLE> out;
        for (const auto& object : existing)
            if (object.object_class == object_class && object.id == key.id) out.push_back(object.handle);
        return out;
    };
    for (CK_OBJECT_HANDLE private_key : with_id(CKO_PRIVATE_KEY)) {
        if (auto shown = shows_this_key(private_key)) {
            if (*shown) return true;
            continue;
        }
        for (CK_OBJECT_HANDLE public_key : with_id(CKO_PUBLIC_KEY))
            if (shows_this_key(public_key).value_or(false)) return true;
        if (key.type && signs_for(session, private_key, key.type->key_type, key.public_key.get())) return true;
    }
    return false;
}

bool same_identity(const ExistingObject& existing, CK_OBJECT_CLASS object_class, const std::vector<std::uint8_t>& id,
                   const std::string& label) {
    if (existing.object_class != object_class) return false;
    return (!id.empty() && existing.id == id) || (!label.empty() && existing.label == label);
}

std::string describe(const std::vector<std::uint8_t>& id, const std::string& label) {
    return fmt::format("id={} label=\"{}\"", id.empty() ? "(none)" : ossl::hex(id), label);
}

bool shares_local_key_id(const pkcs12::BagAttributes& a, const pkcs12::BagAttributes& b) {
    for (const auto& x : a.local_key_ids)
        for (const auto& y : b.local_key_ids)
            if (!x.empty() && x == y) return true;
    return false;
}

bool shares_local_key_id_with_another_key(const pkcs12::Contents& contents, const pkcs12::KeyBag& bag) {
    for (const auto& other : contents.keys)
        if (&other != &bag && shares_local_key_id(bag.attributes, other.attributes)) return true;
    return false;
}

// Groups of keys that would get one CKA_ID on the token although their public keys
// differ: an application finding a key by CKA_ID would get either. Keys whose public key
// is unknown (a type this OpenSSL cannot read) are left out: they are refused or skipped
// as unsupported anyway. The same key twice under one id is not a duplicate.
std::vector<std::vector<PlannedKey*>> different_keys_sharing_an_id(std::vector<PlannedKey>& keys) {
    std::map<std::vector<std::uint8_t>, std::vector<PlannedKey*>> by_id;
    for (PlannedKey& key : keys)
        if (!key.id.empty() && key.public_key) by_id[key.id].push_back(&key);
    std::vector<std::vector<PlannedKey*>> groups;
    for (auto& [id, group] : by_id) {
        bool differ = false;
        for (const PlannedKey* key : group)
            differ = differ || !keys::same_public_key(key->public_key.get(), group.front()->public_key.get());
        if (differ) groups.push_back(std::move(group));
    }
    return groups;
}

std::string describe_group(const std::vector<PlannedKey*>& group) {
    std::string text = fmt::format("id {} is shared by different keys:", ossl::hex(group.front()->id));
    for (std::size_t i = 0; i < group.size(); ++i)
        text += fmt::format("{} {} ({}, SPKI SHA-256 {})", i ? "," : "", group[i]->bag->where,
                            group[i]->type ? group[i]->type->name() : "unknown type",
                            ossl::hex(group[i]->report.spki_sha256));
    return text;
}

// Error(bad_input) naming each id that different keys share and their bags; with
// `renumber`, every key of such an id gets the SHA-1 id instead (none keeps the old id:
// which of them an application meant by it cannot be known), reported per key.
void settle_duplicate_ids(std::vector<PlannedKey>& keys, bool renumber, std::vector<std::string>& warnings) {
    auto groups = different_keys_sharing_an_id(keys);
    if (groups.empty()) return;
    if (!renumber) {
        std::string message;
        for (std::size_t i = 0; i < groups.size(); ++i) message += (i ? "; " : "") + describe_group(groups[i]);
        throw Error(ErrorKind::bad_input, message + "; nothing was written (--renumber-duplicate-ids gives each of "
                                                   "them the SHA-1 of its public key as CKA_ID)");
    }
    for (auto& group : groups)
        for (PlannedKey* key : group) {
            key->renumbered_from = key->id;
            key->id = derived_key_id(key->public_key.get());
            key->report.renumbered_from = key->renumbered_from;
            std::string text = fmt::format("{}: CKA_ID {} instead of the file's {}, which a different key shares "
                                           "(--renumber-duplicate-ids)",
                                           key->bag->where, ossl::hex(key->id), ossl::hex(*key->renumbered_from));
            key->report.notes.push_back(text);
            warnings.push_back(text);
        }
    // A derived id could meet another key's id from the file: refused, never renumbered twice.
    groups = different_keys_sharing_an_id(keys);
    if (!groups.empty())
        throw Error(ErrorKind::bad_input, describe_group(groups.front()) + " after --renumber-duplicate-ids; nothing "
                                                                          "was written");
}

// Decrypts a secret bag on the host (its key type is inside) and plans its object.
PlannedSecretKey plan_secret_key(pkcs12::Reader& reader, const pkcs12::KeyBag& bag,
                                 const std::vector<pkcs11::MechanismEntry>& mechanisms) {
    PlannedSecretKey secret;
    secret.bag = &bag;
    if (!bag.attributes.local_key_ids.empty()) secret.id = bag.attributes.local_key_ids.front();
    if (bag.attributes.friendly_name) secret.label = *bag.attributes.friendly_name;
    secret_keys::DecodedSecret decoded = secret_keys::decode(reader.decrypt_key(bag).get());
    secret.type = decoded.type;
    secret.value = std::move(decoded.value);
    secret.unsupported = decoded.unsupported;
    if (!secret.unsupported && secret.type) secret.unsupported = secret_keys::unsupported_on_token(*secret.type, mechanisms);
    secret.report.id = secret.id;
    secret.report.label = secret.label;
    secret.report.type = secret.type ? secret.type->name : decoded.algorithm_oid;
    secret.report.secret_key = true;
    return secret;
}

}  // namespace

std::vector<std::uint8_t> derived_key_id(const EVP_PKEY* public_key) {
    std::vector<std::uint8_t> material;
    if (EVP_PKEY_is_a(public_key, "RSA") || EVP_PKEY_is_a(public_key, "RSA-PSS")) {
        BIGNUM* n = nullptr;
        if (EVP_PKEY_get_bn_param(public_key, OSSL_PKEY_PARAM_RSA_N, &n) == 1) {
            material.resize(static_cast<std::size_t>(BN_num_bytes(n)));
            BN_bn2bin(n, material.data());
            BN_free(n);
        }
    } else if (EVP_PKEY_is_a(public_key, "DSA")) {
        BIGNUM* y = nullptr;  // as NSS: SHA-1 of the public value
        if (EVP_PKEY_get_bn_param(public_key, OSSL_PKEY_PARAM_PUB_KEY, &y) == 1) {
            material.resize(static_cast<std::size_t>(BN_num_bytes(y)));
            BN_bn2bin(y, material.data());
            BN_free(y);
        }
    } else {
        std::size_t size = 0;
        if (EVP_PKEY_get_octet_string_param(public_key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, nullptr, 0, &size) == 1) {
            material.resize(size);
            EVP_PKEY_get_octet_string_param(public_key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, material.data(), size,
                                            &size);
        }
    }
    if (material.empty()) return keys::spki_sha256(public_key);
    std::vector<std::uint8_t> digest(20);
    EVP_Q_digest(ossl::libctx(), "SHA1", nullptr, material.data(), material.size(), digest.data(), nullptr);
    return digest;
}

RestorePlan plan_restore(pkcs11::Session& session, pkcs12::Reader& reader, const RestoreOptions& options,
                         std::vector<std::string>& warnings, const ImportTrial& import_trial,
                         const SecretImportTrial& secret_trial) {
    pkcs12::Contents& contents = reader.contents();
    TokenCapability capability(session);
    RestorePlan plan;
    std::set<const pkcs12::CertBag*> paired;

    for (const pkcs12::KeyBag& bag : contents.keys) {
        // Planning decrypts keys on the host where it must: the slow part of a large file.
        progress::report(plan.keys.size(), contents.keys.size(), "checking " + bag.where);
        PlannedKey key;
        key.bag = &bag;
        // Pair by localKeyID first; only a key without a matching certificate has to be
        // decrypted on the host to pair by public key. A localKeyID that several key bags
        // carry says nothing about which certificate is whose: those keys pair by public key.
        if (!shares_local_key_id_with_another_key(contents, bag))
            for (const auto& cert : contents.certificates)
                if (shares_local_key_id(bag.attributes, cert.attributes)) {
                    key.certificate = &cert;
                    break;
                }
        // A certificate whose public key this OpenSSL cannot decode (ML-DSA under 3.0)
        // says nothing about the key's type: take the host path, which names the algorithm.
        if (key.certificate != nullptr && X509_get0_pubkey(key.certificate->certificate.get()) == nullptr) {
            ossl::last_error();
            key.certificate = nullptr;
        }
        try {
            if (key.certificate == nullptr) {
                key.host_key = reader.private_key(bag);
                for (const auto& cert : contents.certificates)
                    if (EVP_PKEY_eq(X509_get0_pubkey(cert.certificate.get()), key.host_key.get()) == 1) {
                        key.certificate = &cert;
                        break;
                    }
                key.public_key.reset(EVP_PKEY_dup(key.host_key.get()));
            } else {
                key.public_key.reset(EVP_PKEY_dup(X509_get0_pubkey(key.certificate->certificate.get())));
            }
            key.type = keys::describe(key.public_key.get());
            key.unsupported = capability.refusal(*key.type, key.public_key.get());
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::bad_input) throw;
            key.unsupported = e.what();
        }
        if (key.certificate != nullptr) paired.insert(key.certificate);
        if (!bag.attributes.local_key_ids.empty()) key.id = bag.attributes.local_key_ids.front();
        else if (key.public_key) key.id = derived_key_id(key.public_key.get());
        if (bag.attributes.friendly_name) key.label = *bag.attributes.friendly_name;
        else if (key.certificate && key.certificate->attributes.friendly_name)
            key.label = *key.certificate->attributes.friendly_name;
        key.report.label = key.label;
        key.report.type = key.type ? key.type->name() : "unknown";
        if (key.public_key) key.report.spki_sha256 = keys::spki_sha256(key.public_key.get());
        if (key.certificate) {
            auto der = ossl::cert_der(key.certificate->certificate.get());
            key.report.certificate_sha256 = ossl::sha256(der.data(), der.size());
            key.report.certificate_subject = ossl::name_text(X509_get_subject_name(key.certificate->certificate.get()));
        }
        plan.keys.push_back(std::move(key));
    }

    for (const pkcs12::KeyBag& bag : contents.secrets) plan.secrets.push_back(plan_secret_key(reader, bag, capability.mechanisms()));

    // Identities: different keys under one id are refused or renumbered before the
    // certificates take their keys' ids.
    settle_duplicate_ids(plan.keys, options.renumber_duplicate_ids, warnings);
    for (PlannedKey& key : plan.keys) key.report.id = key.id;

    // Certificates: each key's own, then the rest (chain, CA certificates), once each.
    std::set<std::vector<std::uint8_t>> seen_certificates;
    auto add_certificate = [&](const pkcs12::CertBag* bag, std::vector<std::uint8_t> id, std::string label) {
        if (!seen_certificates.insert(ossl::cert_der(bag->certificate.get())).second) return;
        plan.certificates.push_back({bag, std::move(id), std::move(label), false, {}, false});
    };
    for (const PlannedKey& key : plan.keys)
        if (key.certificate) {
            std::string label = key.certificate->attributes.friendly_name.value_or(key.label);
            add_certificate(key.certificate, key.id, label);
        }
    for (const auto& cert : contents.certificates)
        if (!paired.count(&cert))
            add_certificate(&cert, cert.attributes.local_key_ids.empty() ? std::vector<std::uint8_t>{}
                                                                          : cert.attributes.local_key_ids.front(),
                            cert.attributes.friendly_name.value_or(""));

    // Unsupported key types: refuse before writing, unless told to skip them.
    if (import_trial)
        for (PlannedKey& key : plan.keys)
            if (!key.unsupported) key.unsupported = import_trial(key);
    if (secret_trial)
        for (PlannedSecretKey& secret : plan.secrets)
            if (!secret.unsupported) secret.unsupported = secret_trial(secret);
    std::vector<std::string> unsupported;
    // Keys and secret keys alike: skipped and said under --skip-unsupported, else refused.
    auto settle_unsupported = [&](auto& planned) {
        for (auto& item : planned) {
            if (!item.unsupported) continue;
            std::string text = fmt::format("{} ({}): {}", item.bag->where, describe(item.id, item.label), *item.unsupported);
            if (options.skip_unsupported) {
                item.skip = true;
                item.report.status = "skipped-unsupported";
                item.report.notes.push_back(*item.unsupported);
                warnings.push_back("skipped " + text);
            } else {
                unsupported.push_back(text);
            }
        }
    };
    settle_unsupported(plan.secrets);
    for (const std::string& bag : contents.unsupported) {
        if (options.skip_unsupported) warnings.push_back("skipped " + bag);
        else unsupported.push_back(bag);
    }
    settle_unsupported(plan.keys);
    if (!unsupported.empty()) {
        std::string message = "cannot restore ";
        for (std::size_t i = 0; i < unsupported.size(); ++i) message += (i ? "; " : "") + unsupported[i];
        throw Error(ErrorKind::refused, message + "; nothing was written (--skip-unsupported restores the rest)");
    }

    // Conflicts, from one scan of the token.
    std::vector<ExistingObject> existing = scan_token(session);
    std::vector<std::string> conflicts;
    for (PlannedKey& key : plan.keys) {
        if (key.skip) continue;
        std::vector<CK_OBJECT_HANDLE> clashes;
        for (const auto& object : existing)
            if (same_identity(object, CKO_PRIVATE_KEY, key.id, key.label) ||
                same_identity(object, CKO_PUBLIC_KEY, key.id, key.label))
                clashes.push_back(object.handle);
        if (clashes.empty()) continue;
        std::string text = fmt::format("{} {} is already on the token", key.type ? key.type->name() : "key",
                                       describe(key.id, key.label));
        const bool same_key = options.on_conflict != ConflictPolicy::replace && holds_this_key(session, existing, key);
        const bool public_key_here = std::any_of(existing.begin(), existing.end(), [&](const ExistingObject& o) {
            return o.object_class == CKO_PUBLIC_KEY && o.id == key.id;
        });
        switch (options.on_conflict) {
            case ConflictPolicy::fail:
                if (same_key)
                    text += " (the file's own key: did a restore of this file stop half-way? --on-conflict skip "
                            "keeps it and adds its missing public key and certificate)";
                conflicts.push_back(text);
                break;
            case ConflictPolicy::skip:
                key.skip = true;
                key.report.status = "skipped-conflict";
                key.already_on_token = same_key;
                key.add_public_key = same_key && !public_key_here;
                warnings.push_back("skipped: " + text +
                                   (same_key ? " (the file's own key; what it lacks on the token is added)" : ""));
                break;
            case ConflictPolicy::replace: key.replaces = clashes; break;
        }
    }
    for (PlannedSecretKey& secret : plan.secrets) {
        if (secret.skip) continue;
        std::vector<CK_OBJECT_HANDLE> clashes;
        for (const auto& object : existing)
            if (same_identity(object, CKO_SECRET_KEY, secret.id, secret.label)) clashes.push_back(object.handle);
        if (clashes.empty()) continue;
        std::string text = fmt::format("secret key {} is already on the token", describe(secret.id, secret.label));
        switch (options.on_conflict) {
            case ConflictPolicy::fail: conflicts.push_back(text); break;
            case ConflictPolicy::skip:
                secret.skip = true;
                secret.report.status = "skipped-conflict";
                warnings.push_back("skipped: " + text);
                break;
            case ConflictPolicy::replace: secret.replaces = clashes; break;
        }
    }
    for (PlannedCertificate& cert : plan.certificates) {
        auto der = ossl::cert_der(cert.bag->certificate.get());
        std::vector<CK_OBJECT_HANDLE> clashes;
        for (const auto& object : existing) {
            if (object.object_class != CKO_CERTIFICATE) continue;
            if (object.value == der) cert.already_present = true;
            else if (same_identity(object, CKO_CERTIFICATE, cert.id, cert.label)) clashes.push_back(object.handle);
        }
        // A certificate that belongs to a skipped key is skipped with it.
        for (const PlannedKey& key : plan.keys)
            if (key.skip && !key.already_on_token && key.certificate == cert.bag) cert.skip = true;
        if (cert.already_present || cert.skip || clashes.empty()) continue;
        std::string text = fmt::format("a different certificate {} is already on the token", describe(cert.id, cert.label));
        switch (options.on_conflict) {
            case ConflictPolicy::fail: conflicts.push_back(text); break;
            case ConflictPolicy::skip:
                cert.skip = true;
                warnings.push_back("skipped: " + text);
                break;
            case ConflictPolicy::replace: cert.replaces = clashes; break;
        }
    }
    if (!conflicts.empty()) {
        std::string message;
        for (std::size_t i = 0; i < conflicts.size(); ++i) message += (i ? "; " : "") + conflicts[i];
        throw Error(ErrorKind::refused,
                    message + "; nothing was written (use --on-conflict skip or --on-conflict replace)");
    }
    return plan;
}

}  // namespace p11vault
