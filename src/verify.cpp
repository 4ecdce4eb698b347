// SPDX-License-Identifier: Apache-2.0
#include "src/verify.hpp"

#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "src/keys.hpp"
#include "src/progress.hpp"

namespace p11vault {

namespace {

std::string time_text(const ASN1_TIME* time) {
    std::tm tm{};
    if (ASN1_TIME_to_tm(time, &tm) != 1) return "";
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

std::string describe_id(const std::vector<std::uint8_t>& id, const std::optional<std::string>& label) {
    return fmt::format("id={} label=\"{}\"", id.empty() ? "(none)" : ossl::hex(id), label.value_or(""));
}

// "key bag 4 is", "key bag 1 and key bag 2 are", "key bag 1, key bag 2, key bag 3 and
// 997 more are": the first bags by name, the rest counted.
std::string list_bags(const std::vector<std::string>& bags) {
    constexpr std::size_t named = 3;
    if (bags.size() == 1) return bags.front() + " is";
    std::string text;
    const std::size_t shown = bags.size() <= named + 1 ? bags.size() - 1 : named;
    for (std::size_t i = 0; i < shown; ++i) text += (i ? ", " : "") + bags[i];
    if (shown == bags.size() - 1) return text + " and " + bags.back() + " are";
    return fmt::format("{} and {} more are", text, bags.size() - shown);
}

}  // namespace

Verification verify_file(pkcs12::Reader& reader) {
    const pkcs12::Contents& contents = reader.contents();
    Verification v;
    v.mac = contents.mac.present ? fmt::format("{}, {} iterations", contents.mac.algorithm, contents.mac.iterations)
                                 : "none";
    v.safe_protection = contents.safe_protection;
    v.warnings = contents.warnings;
    for (const std::string& bag : contents.unsupported)
        v.warnings.push_back(bag + ": restore refuses the file for it unless --skip-unsupported");
    if (contents.mac.present && !contents.mac.weak_digest.empty())
        v.warnings.push_back(contents.mac.weak_digest == "SHA1" ? "the MAC uses SHA-1"
                                                                : "the MAC uses " + contents.mac.weak_digest);
    if (contents.mac.present && contents.mac.iterations < 10000)
        v.warnings.push_back(fmt::format("the MAC uses only {} iterations: the password is cheap to guess from this file",
                                         contents.mac.iterations));

    for (const auto& bag : contents.certificates) {
        VerifiedCertificate c;
        X509* cert = bag.certificate.get();
        c.subject = ossl::name_text(X509_get_subject_name(cert));
        c.issuer = ossl::name_text(X509_get_issuer_name(cert));
        c.not_before = time_text(X509_get0_notBefore(cert));
        c.not_after = time_text(X509_get0_notAfter(cert));
        c.expired = X509_cmp_current_time(X509_get0_notAfter(cert)) < 0;
        auto der = ossl::cert_der(cert);
        c.sha256 = ossl::sha256(der.data(), der.size());
        if (!bag.attributes.local_key_ids.empty()) c.local_key_id = bag.attributes.local_key_ids.front();
        c.friendly_name = bag.attributes.friendly_name;
        if (c.expired) v.warnings.push_back(fmt::format("certificate {} expired on {}", c.subject, c.not_after));
        v.certificates.push_back(std::move(c));
    }

    // Key bags under a weak scheme, by scheme: one warning per scheme, not one per bag
    // (a 1,000-key file from an old producer would print a thousand equal lines).
    std::vector<std::pair<std::string, std::vector<std::string>>> weak_key_bags;
    for (const auto& bag : contents.keys) {
        progress::report(v.keys.size(), contents.keys.size(), "decrypting " + bag.where);
        VerifiedKey k;
        k.where = bag.where;
        if (!bag.attributes.local_key_ids.empty()) k.local_key_id = bag.attributes.local_key_ids.front();
        k.friendly_name = bag.attributes.friendly_name;
        k.protection = bag.protection;
        ossl::P8Info info;
        try {
            info = reader.decrypt_key(bag);
        } catch (const Error& e) {
            // The MAC proved the password; a bag that still does not decrypt is damage.
            if (e.kind() == ErrorKind::bad_password && contents.mac.present)
                throw Error(ErrorKind::bad_input,
                            std::string(e.what()) + ", although the MAC verified: the file is inconsistent");
            throw;
        }
        ossl::Pkey key = reader.key_from_info(info.get());
        if (!key) {
            ossl::last_error();
            k.supported = false;
            k.type = pkcs12::key_algorithm_name(info.get());
            v.warnings.push_back(fmt::format("{} ({}): key algorithm {} cannot be read by this OpenSSL and cannot be "
                                             "restored to a token",
                                             bag.where, describe_id(k.local_key_id, k.friendly_name), k.type));
        } else {
            try {
                k.type = keys::describe(key.get()).name();
            } catch (const Error&) {
                k.supported = false;
                k.type = EVP_PKEY_get0_type_name(key.get()) ? EVP_PKEY_get0_type_name(key.get()) : "unknown";
                v.warnings.push_back(fmt::format("{} ({}): {} keys cannot be restored to a PKCS#11 token by p11vault",
                                                 bag.where, describe_id(k.local_key_id, k.friendly_name), k.type));
            }
            k.spki_sha256 = keys::spki_sha256(key.get());
        }
        if (pkcs12::is_weak_description(bag.protection)) {
            auto scheme = std::find_if(weak_key_bags.begin(), weak_key_bags.end(),
                                       [&](const auto& entry) { return entry.first == bag.protection; });
            if (scheme == weak_key_bags.end()) scheme = weak_key_bags.insert(weak_key_bags.end(), {bag.protection, {}});
            scheme->second.push_back(bag.where);
        }
        // Pair: localKeyID first, then public key. Public keys are compared only where
        // needed (the id's certificate, or every certificate for a key without one): a
        // comparison with every certificate for every key made a 1,000-key file cost
        // half a million comparisons.
        std::optional<std::size_t> paired;
        for (std::size_t i = 0; i < contents.certificates.size() && !paired; ++i) {
            for (const auto& a : bag.attributes.local_key_ids)
                for (const auto& b : contents.certificates[i].attributes.local_key_ids)
                    if (!a.empty() && a == b) paired = i;
        }
        if (paired && key &&
            EVP_PKEY_eq(X509_get0_pubkey(contents.certificates[*paired].certificate.get()), key.get()) != 1)
            throw Error(ErrorKind::bad_input,
                        fmt::format("{} ({}) does not match its certificate {} (same localKeyID, different public "
                                    "key)",
                                    bag.where, describe_id(k.local_key_id, k.friendly_name),
                                    v.certificates[*paired].subject));
        for (std::size_t i = 0; i < contents.certificates.size() && !paired && key; ++i) {
            if (EVP_PKEY_eq(X509_get0_pubkey(contents.certificates[i].certificate.get()), key.get()) == 1)
                paired = i;
        }
        if (paired) {
            k.certificate = *paired;
            v.certificates[*paired].key = v.keys.size();
        }
        // Only the public half is kept: the private key is freed (and wiped by OpenSSL)
        // with this iteration, so a 1,000-key file never holds 1,000 clear keys at once.
        if (key) {
            X509* cert = paired ? contents.certificates[*paired].certificate.get() : nullptr;
            k.public_key = cert && X509_get0_pubkey(cert) ? ossl::Pkey(X509_get_pubkey(cert)) : keys::public_only(key.get());
        }
        if (!k.certificate)
            v.warnings.push_back(fmt::format("{} ({}) has no certificate in the file", bag.where,
                                             describe_id(k.local_key_id, k.friendly_name)));
        v.keys.push_back(std::move(k));
    }
    for (const auto& [protection, bags] : weak_key_bags)
        v.warnings.push_back(fmt::format("{} protected by a weak scheme: {}", list_bags(bags), protection));
    for (const auto& protection : v.safe_protection)
        if (pkcs12::is_weak_description(protection))
            v.warnings.push_back("a certificate safe is protected by a weak scheme: " + protection);
    v.quirks = reader.decryptor().quirks_used();
    return v;
}

namespace {

// What a complete restore leaves next to a matched key: its public key object and the
// file's certificate; and, unless --extractable, a key that stays on the token.
void check_completeness(const Verification& verification, const VerifiedKey& file_key, const Inventory& inventory,
                        const TokenObject& token_key, TokenComparison& result) {
    const std::string name = describe_id(file_key.local_key_id, file_key.friendly_name);
    const bool has_public = std::any_of(inventory.objects.begin(), inventory.objects.end(), [&](const TokenObject& o) {
        return o.object_class == CKO_PUBLIC_KEY && o.id == token_key.id;
    });
    if (!has_public)
        result.incomplete_on_token.push_back(fmt::format(
            "file key {} is on the token without its public key object (a restore stopped half-way? restore "
            "--on-conflict skip adds what is missing)",
            name));
    if (file_key.certificate) {
        const auto& wanted = verification.certificates[*file_key.certificate].sha256;
        const bool has_certificate =
            std::any_of(inventory.objects.begin(), inventory.objects.end(), [&](const TokenObject& o) {
                if (o.object_class != CKO_CERTIFICATE || !o.certificate) return false;
                auto der = ossl::cert_der(o.certificate.get());
                return ossl::sha256(der.data(), der.size()) == wanted;
            });
        if (!has_certificate)
            result.incomplete_on_token.push_back(fmt::format(
                "file key {} is on the token without the file's certificate (a restore stopped half-way? restore "
                "--on-conflict skip adds what is missing)",
                name));
    }
    if (token_key.extractable.value_or(false) || !token_key.sensitive.value_or(true))
        result.unprotected_on_token.push_back(fmt::format(
            "token key {} is {}", name,
            token_key.extractable.value_or(false) && !token_key.sensitive.value_or(true) ? "extractable and not sensitive"
            : token_key.extractable.value_or(false)                                       ? "extractable"
                                                                                           : "not sensitive"));
}

}  // namespace

TokenComparison compare_with_token(const Verification& verification, const Inventory& inventory,
                                   const std::vector<std::vector<std::uint8_t>>& only_ids) {
    TokenComparison result;
    // The public key of each token private key, from wherever the token shows it.
    struct TokenKey {
        const TokenObject* object;
        const EVP_PKEY* public_key;
    };
    std::vector<TokenKey> token_keys;
    for (std::size_t i : inventory.indexes_of(CKO_PRIVATE_KEY)) {
        const TokenObject& key = inventory.objects[i];
        if (!only_ids.empty() && std::find(only_ids.begin(), only_ids.end(), key.id) == only_ids.end()) continue;
        const EVP_PKEY* public_key = key.public_key.get();
        if (!public_key && key.paired_public_key) public_key = inventory.objects[*key.paired_public_key].public_key.get();
        if (!public_key && key.paired_certificate)
            public_key = inventory.objects[*key.paired_certificate].public_key.get();
        token_keys.push_back({&key, public_key});
    }
    std::vector<bool> token_matched(token_keys.size(), false);
    for (const auto& file_key : verification.keys) {
        bool found = false;
        for (std::size_t t = 0; t < token_keys.size(); ++t) {
            if (!file_key.public_key || !keys::same_public_key(file_key.public_key.get(), token_keys[t].public_key))
                continue;
            token_matched[t] = true;
            if (token_keys[t].object->id != file_key.local_key_id) {
                result.missing_on_token.push_back(
                    fmt::format("file key {} is on the token with another CKA_ID ({})",
                                describe_id(file_key.local_key_id, file_key.friendly_name),
                                ossl::hex(token_keys[t].object->id)));
            } else {
                ++result.matched;
                check_completeness(verification, file_key, inventory, *token_keys[t].object, result);
            }
            found = true;
            break;
        }
        if (!found)
            result.missing_on_token.push_back(fmt::format("file key {} ({}) is not on the token",
                                                          describe_id(file_key.local_key_id, file_key.friendly_name),
                                                          file_key.type));
    }
    for (std::size_t t = 0; t < token_keys.size(); ++t) {
        if (token_matched[t]) continue;
        const TokenObject& key = *token_keys[t].object;
        result.missing_in_file.push_back(fmt::format(
            "token key id={} label=\"{}\" ({}) is not in the file{}", key.id.empty() ? "(none)" : ossl::hex(key.id),
            key.label, key.description ? key.description->name() : "unknown type",
            token_keys[t].public_key ? "" : " (the token shows no public key for it)"));
    }
    return result;
}

std::vector<std::string> keys_the_token_cannot_hold(const Verification& verification, TokenCapability& capability) {
    std::vector<std::string> out;
    for (const auto& key : verification.keys) {
        if (!key.supported || !key.public_key) continue;  // warned about already
        const keys::KeyDescription type = keys::describe(key.public_key.get());
        if (auto why = capability.refusal(type, key.public_key.get()))
            out.push_back(fmt::format("file key {} ({}) would not restore onto this token: {}",
                                      describe_id(key.local_key_id, key.friendly_name), key.type, *why));
    }
    return out;
}

}  // namespace p11vault
