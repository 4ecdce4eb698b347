// SPDX-License-Identifier: Apache-2.0
#include "src/backup.hpp"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "p11vault/error.hpp"
#include "pkcs11/error.hpp"
#include "src/extraction.hpp"
#include "src/object_text.hpp"
#include "src/refusals.hpp"
#include "src/secret_keys.hpp"
#include "src/token_capability.hpp"
#include "src/progress.hpp"
#include "src/session_pool.hpp"

namespace p11vault {

namespace {

std::string describe_key(const TokenObject& key) {
    return "key " + describe_object(key.id, key.label);
}

// A key the token will not let go, for the folded refusal and the --json failure document.
Refusal refusal_of(const TokenObject& key, const std::string& kind, const std::string& reason) {
    return {kind + describe_key(key), {ossl::hex(key.id), key.label, {}, reason}};
}

std::vector<ossl::Cert> read_pem_certificates(const std::string& path) {
    ossl::Bio bio(BIO_new_file(path.c_str(), "r"));
    if (!bio) throw Error(ErrorKind::bad_input, "cannot open --chain file " + path);
    std::vector<ossl::Cert> out;
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(cert);
    ossl::last_error();  // the loop ends on "no start line"
    if (out.empty()) throw Error(ErrorKind::bad_input, "--chain file " + path + " holds no PEM certificate");
    return out;
}

// Issuers of `cert` among the token's certificates, nearest first, stopping at a
// self-signed certificate or a loop.
std::vector<std::size_t> token_issuers(const Inventory& inventory, std::size_t cert_index) {
    std::vector<std::size_t> chain;
    std::set<std::size_t> seen{cert_index};
    std::size_t current = cert_index;
    for (;;) {
        X509* subject = inventory.objects[current].certificate.get();
        if (X509_check_issued(subject, subject) == X509_V_OK) break;  // self-signed: the root
        std::optional<std::size_t> issuer;
        for (std::size_t i : inventory.indexes_of(CKO_CERTIFICATE)) {
            X509* candidate = inventory.objects[i].certificate.get();
            if (candidate != nullptr && !seen.count(i) && X509_check_issued(candidate, subject) == X509_V_OK) {
                issuer = i;
                break;
            }
        }
        if (!issuer) break;
        chain.push_back(*issuer);
        seen.insert(*issuer);
        current = *issuer;
    }
    return chain;
}

// "its keys have CKA_ID 01, 02 (see p11vault list)": at most 20 named, then counted.
std::string keys_present(const Inventory& inventory, const std::vector<std::size_t>& keys, bool by_id) {
    if (keys.empty())
        return "the token holds no private or secret key (is the PIN right and the token the one you meant?)";
    constexpr std::size_t shown = 20;
    std::string names;
    for (std::size_t k = 0; k < keys.size() && k < shown; ++k) {
        const TokenObject& key = inventory.objects[keys[k]];
        names += k ? ", " : "";
        names += by_id ? (key.id.empty() ? std::string("(empty)") : ossl::hex(key.id)) : "\"" + key.label + "\"";
    }
    if (keys.size() > shown) names += fmt::format(" and {} more", keys.size() - shown);
    return fmt::format("its key{} {} {} (see p11vault list)", keys.size() == 1 ? "" : "s",
                       by_id ? (keys.size() == 1 ? "has CKA_ID" : "have CKA_IDs") : (keys.size() == 1 ? "is labelled" : "are labelled"),
                       names);
}

}  // namespace

std::vector<std::size_t> select_secret_keys(const Inventory& inventory, const KeySelection& selection) {
    std::vector<std::size_t> selected;
    for (std::size_t i : inventory.indexes_of(CKO_SECRET_KEY)) {
        const TokenObject& key = inventory.objects[i];
        bool match = selection.all;
        for (const auto& id : selection.ids) match = match || key.id == id;
        for (const auto& label : selection.labels) match = match || key.label == label;
        if (match) selected.push_back(i);
    }
    return selected;
}

std::vector<std::size_t> select_private_keys(const Inventory& inventory, const KeySelection& selection) {
    if (selection.empty())
        throw Error(ErrorKind::usage, "choose the keys to back up: --all, --id HEX or --label TEXT");
    std::vector<std::size_t> keys = inventory.indexes_of(CKO_PRIVATE_KEY);
    std::vector<std::size_t> selected;
    for (std::size_t i : keys) {
        const TokenObject& key = inventory.objects[i];
        bool match = selection.all;
        for (const auto& id : selection.ids) match = match || key.id == id;
        for (const auto& label : selection.labels) match = match || key.label == label;
        if (match) selected.push_back(i);
    }
    // Every --id and --label must name a key (private or secret): a typo must not silently
    // back up less. The keys that are there are named, so the operator sees the right one.
    std::vector<std::size_t> any = selected;
    for (std::size_t i : select_secret_keys(inventory, selection)) any.push_back(i);
    std::vector<std::size_t> present = keys;
    for (std::size_t i : inventory.indexes_of(CKO_SECRET_KEY)) present.push_back(i);
    for (const auto& id : selection.ids) {
        bool found = false;
        for (std::size_t i : any) found = found || inventory.objects[i].id == id;
        if (!found)
            throw Error(ErrorKind::token, "no private or secret key with CKA_ID " + ossl::hex(id) + " on the token; " +
                                             keys_present(inventory, present, /*by_id=*/true));
    }
    for (const auto& label : selection.labels) {
        bool found = false;
        for (std::size_t i : any) found = found || inventory.objects[i].label == label;
        if (!found)
            throw Error(ErrorKind::token, "no private or secret key labelled \"" + label + "\" on the token; " +
                                             keys_present(inventory, present, /*by_id=*/false));
    }
    if (any.empty())
        throw Error(ErrorKind::failure, keys.empty() && inventory.indexes_of(CKO_SECRET_KEY).empty()
                                           ? "the token holds no private or secret key (is the PIN right and the "
                                             "token the one you meant?)"
                                           : "no private or secret key matches the selection");
    return selected;
}

void refuse_duplicate_ids(const Inventory& inventory, const std::vector<std::size_t>& selected) {
    std::map<std::vector<std::uint8_t>, std::vector<const TokenObject*>> by_id;
    for (std::size_t i : selected)
        if (!inventory.objects[i].id.empty()) by_id[inventory.objects[i].id].push_back(&inventory.objects[i]);
    std::vector<std::string> collisions;
    std::vector<ErrorItem> items;
    for (const auto& [id, keys] : by_id) {
        if (keys.size() < 2) continue;
        bool known = true, same = true;
        for (const TokenObject* key : keys) {
            known = known && key->own_public_key;
            same = same && key->own_public_key &&
                   keys::same_public_key(key->public_key.get(), keys.front()->public_key.get());
        }
        if (same) continue;  // one key twice
        std::string text = fmt::format("{} private keys share CKA_ID {} and {}:", keys.size(), ossl::hex(id),
                                       known ? "are different keys"
                                             : "cannot be told apart (the token shows no public key of their own)");
        for (std::size_t k = 0; k < keys.size(); ++k) {
            text += fmt::format("{} label=\"{}\" {}", k ? "," : "", keys[k]->label,
                                keys[k]->description ? keys[k]->description->name() : "unknown type");
            if (keys[k]->own_public_key) text += " SPKI SHA-256 " + ossl::hex(keys[k]->spki_sha256);
            items.push_back({ossl::hex(id), keys[k]->label, {}, fmt::format("{} private keys share this CKA_ID", keys.size())});
        }
        collisions.push_back(text);
    }
    if (collisions.empty()) return;
    throw Error(ErrorKind::refused,
                fmt::format("{}; a file would restore them under one id, so nothing was written (back them up one "
                            "at a time with --label, give one of them another CKA_ID, or migrate them with "
                            "--renumber-duplicate-ids)",
                            fmt::join(collisions, "; ")),
                std::move(items));
}

// Why p11vault could not restore the key onto a token like this one, or nothing: a
// backup that could not be restored is refused, never written with exit 0. The source
// token answers for its kind (it is asked as a restore would ask the target).
std::optional<std::string> unrestorable(TokenCapability& capability, const TokenObject& key,
                                        const EVP_PKEY* public_key) {
    const std::string type = key.description ? key.description->name() : "unknown";
    if (public_key == nullptr) {
        // The key itself is read when it is exported; only the types p11vault restores get there.
        const bool restorable_type = key.key_type && (*key.key_type == CKK_RSA || *key.key_type == CKK_EC ||
                                                      *key.key_type == CKK_EC_EDWARDS || *key.key_type == CKK_DSA);
        if (restorable_type) return std::nullopt;
        return fmt::format("p11vault cannot restore {} keys ({}), so it does not back them up", type,
                           key.key_type ? pkcs11::key_type_name(*key.key_type) : "no CKA_KEY_TYPE");
    }
    keys::KeyDescription description;
    try {
        description = keys::describe(public_key);
    } catch (const Error& e) {
        return fmt::format("p11vault could not restore it ({}), so it does not back it up", e.what());
    }
    if (auto why = capability.refusal(description, public_key))
        return fmt::format("a restore onto a token like this one would refuse it ({}), so it is not backed up", *why);
    return std::nullopt;
}

BackupResult run_backup(SessionPool& pool, const TokenQuirks& quirks, const Inventory& inventory,
                        const SecretBytes& password, const BackupOptions& options) {
    pkcs11::Session& session = pool.session(0);
    std::vector<std::size_t> selected = select_private_keys(inventory, options.selection);
    if (!options.allow_duplicate_ids) refuse_duplicate_ids(inventory, selected);
    const std::vector<std::size_t> secret_selected = select_secret_keys(inventory, options.selection);
    std::uint64_t iterations = options.iterations != 0 ? options.iterations
                               : pkcs12::uses_pbes2(options.profile) ? pkcs12::kModernIterations
                                                                     : pkcs12::kLegacyIterations;
    pkcs12::Writer writer(options.profile, password, iterations);
    TokenCapability capability(session);

    // Every key's export, one task per key over the pool's sessions (each worker with its
    // own exporter: its wrapping keys are objects of its session); the writer puts the
    // bags in selection order. The report is then assembled in that order, as one session
    // would have made it.
    struct KeyExport {
        const TokenObject* key = nullptr;
        const TokenObject* certificate = nullptr;
        const EVP_PKEY* public_key = nullptr;
        pkcs12::EntryAttributes attributes;
        KeyReport report;
        std::optional<ExtractionPath> exported;
        bool refused_before_export = false;
    };
    std::vector<KeyExport> exports(selected.size() + secret_selected.size());
    for (std::size_t k = 0; k < exports.size(); ++k) {
        const bool secret = k >= selected.size();
        KeyExport& item = exports[k];
        item.key = &inventory.objects[secret ? secret_selected[k - selected.size()] : selected[k]];
        const TokenObject& key = *item.key;
        item.report.id = key.id;
        item.report.label = key.label;
        if (!key.id.empty()) item.attributes.local_key_id = key.id;
        if (!key.label.empty()) item.attributes.friendly_name = key.label;
        item.attributes.order = k;
        if (secret) {
            auto type = secret_keys::token_type(key.key_type.value_or(CKK_VENDOR_DEFINED),
                                                key.description ? key.description->bits / 8 : 0);
            item.report.type = type ? type->name : "secret key";
            item.report.secret_key = true;
            continue;
        }
        item.report.type = key.description ? key.description->name() : "unknown";
        item.certificate = key.paired_certificate ? &inventory.objects[*key.paired_certificate] : nullptr;
        const TokenObject* public_object = key.paired_public_key ? &inventory.objects[*key.paired_public_key] : nullptr;
        item.public_key = key.public_key                                     ? key.public_key.get()
                          : item.certificate && item.certificate->public_key ? item.certificate->public_key.get()
                          : public_object                                    ? public_object->public_key.get()
                                                                             : nullptr;
        if (auto why = unrestorable(capability, key, item.public_key)) {
            item.report.notes.push_back(*why);
            item.refused_before_export = true;
        }
    }
    std::vector<std::unique_ptr<KeyExporter>> exporters(pool.size());
    pool.for_each(
        exports.size(),
        [&](unsigned worker, std::size_t k) {
            KeyExport& item = exports[k];
            if (item.refused_before_export) return;
            if (!exporters[worker])
                exporters[worker] =
                    std::make_unique<KeyExporter>(pool.session(worker), quirks, writer, options.token_wrap_only);
            item.exported = item.report.secret_key
                                ? exporters[worker]->export_secret_key(*item.key, item.attributes, item.report.notes)
                                : exporters[worker]->export_key(*item.key, item.public_key, item.attributes,
                                                                item.report.notes);
        },
        [&](std::size_t k) {
            if (k < selected.size()) progress::report(k, selected.size(), describe_key(*exports[k].key));
        });
    exporters.clear();  // their session keys go before the pool's sessions do

    BackupResult result;
    std::vector<Refusal> refusals;
    std::vector<KeyReport> skipped;
    std::set<std::vector<std::uint8_t>> certificates_written;
    std::vector<std::pair<X509*, std::string>> chain;  // issuers to add after the keys
    for (KeyExport& item : exports) {
        const TokenObject& key = *item.key;
        KeyReport& report = item.report;
        if (!item.exported) {
            // The last note is the verdict; the ones before say what each path met.
            std::string reasons = report.notes.back();
            if (!report.secret_key && report.notes.size() > 1)
                reasons += fmt::format(" ({})", fmt::join(report.notes.begin(), report.notes.end() - 1, "; "));
            refusals.push_back(refusal_of(key, report.secret_key ? "secret " : "", reasons));
            report.status = "skipped-unsupported";
            skipped.push_back(std::move(report));
            continue;
        }
        report.path = path_name(*item.exported);
        if (report.secret_key) {
            result.keys.push_back(std::move(report));
            continue;
        }
        if (item.public_key != nullptr) report.spki_sha256 = keys::spki_sha256(item.public_key);
        if (item.certificate != nullptr && item.certificate->certificate) {
            X509* cert = item.certificate->certificate.get();
            pkcs12::EntryAttributes cert_attributes = item.attributes;
            cert_attributes.order.reset();
            if (!item.certificate->label.empty()) cert_attributes.friendly_name = item.certificate->label;
            auto der = ossl::cert_der(cert);
            if (certificates_written.insert(der).second) writer.add_certificate(cert, cert_attributes);
            report.certificate_sha256 = ossl::sha256(der.data(), der.size());
            report.certificate_subject = ossl::name_text(X509_get_subject_name(cert));
            for (std::size_t issuer : token_issuers(inventory, *key.paired_certificate))
                chain.emplace_back(inventory.objects[issuer].certificate.get(), inventory.objects[issuer].label);
        } else {
            report.notes.push_back("no certificate on the token pairs with this key; the key is backed up alone");
            result.warnings.push_back(describe_key(key) + " has no certificate");
        }
        result.keys.push_back(std::move(report));
    }
    progress::report(selected.size(), selected.size(), {});
    if (!refusals.empty() && options.skip_unsupported && !result.keys.empty()) {
        for (const Refusal& refusal : refusals)
            result.warnings.push_back("left on the token: " + refusal.name + ": " + refusal.item.reason);
        result.skipped = std::move(skipped);
        refusals.clear();
    }
    if (!refusals.empty())
        throw_refusals(ErrorKind::refused,
                       fmt::format("{} of {} selected keys cannot be exported", refusals.size(),
                                   result.keys.size() + refusals.size()),
                       refusals,
                       result.keys.empty() ? "nothing was exported"
                                           : "nothing was exported (--skip-unsupported backs up the others)");

    std::vector<ossl::Cert> extra;
    for (const auto& path : options.chain_files)
        for (auto& cert : read_pem_certificates(path)) extra.push_back(std::move(cert));
    for (const auto& cert : extra) chain.emplace_back(cert.get(), std::string());
    for (const auto& [cert, label] : chain) {
        auto der = ossl::cert_der(cert);
        if (!certificates_written.insert(der).second) continue;
        pkcs12::EntryAttributes attributes;
        if (!label.empty()) attributes.friendly_name = label;
        writer.add_certificate(cert, attributes);
    }
    result.certificates = certificates_written.size();
    result.file = writer.finish();
    return result;
}

}  // namespace p11vault
