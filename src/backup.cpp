// SPDX-License-Identifier: Apache-2.0
#include "src/backup.hpp"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "p11vault/error.hpp"
#include "pkcs11/error.hpp"
#include "src/extraction.hpp"
#include "src/secret_keys.hpp"
#include "src/token_capability.hpp"
#include "src/progress.hpp"

namespace p11vault {

const char* path_name(ExtractionPath path) {
    switch (path) {
        case ExtractionPath::token_wrap: return "token-wrap";
        case ExtractionPath::token_wrap_legacy: return "token-wrap-legacy";
        case ExtractionPath::host_reencrypt: return "host-reencrypt";
        case ExtractionPath::attribute_read: return "attribute-read";
    }
    return "?";
}

namespace {

std::string describe_key(const TokenObject& key) {
    return fmt::format("key id={} label=\"{}\"", key.id.empty() ? "(none)" : ossl::hex(key.id), key.label);
}

// Refusals grouped by reason, each reason once with its keys counted and the first few
// named: 100 keys a token will not let go make one readable line, not 100 repetitions
// (`--skip-unsupported --json` lists every key with its notes).
std::string fold_refusals(const std::vector<std::pair<std::string, std::string>>& refusals) {
    std::vector<std::pair<std::string, std::vector<std::string>>> by_reason;
    for (const auto& [name, reasons] : refusals) {
        auto group = std::find_if(by_reason.begin(), by_reason.end(),
                                  [&reasons = reasons](const auto& entry) { return entry.first == reasons; });
        if (group == by_reason.end()) group = by_reason.insert(by_reason.end(), {reasons, {}});
        group->second.push_back(name);
    }
    constexpr std::size_t named = 3;
    std::string text;
    for (std::size_t g = 0; g < by_reason.size(); ++g) {
        const auto& [reasons, names] = by_reason[g];
        text += g ? "; " : "";
        text += fmt::format("{} key{} ({}", names.size(), names.size() == 1 ? "" : "s", names.front());
        for (std::size_t k = 1; k < names.size() && k < named; ++k) text += ", " + names[k];
        if (names.size() > named) text += fmt::format(" and {} more", names.size() - named);
        text += "): " + reasons;
    }
    return text;
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
        }
        collisions.push_back(text);
    }
    if (collisions.empty()) return;
    std::string message;
    for (std::size_t i = 0; i < collisions.size(); ++i) message += (i ? "; " : "") + collisions[i];
    throw Error(ErrorKind::refused, message + "; a file would restore them under one id, so nothing was written "
                                             "(back them up one at a time with --label, give one of them another "
                                             "CKA_ID, or migrate them with --renumber-duplicate-ids)");
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

BackupResult run_backup(pkcs11::Session& session, const TokenQuirks& quirks, const Inventory& inventory,
                        const SecretBytes& password, const BackupOptions& options) {
    std::vector<std::size_t> selected = select_private_keys(inventory, options.selection);
    if (!options.allow_duplicate_ids) refuse_duplicate_ids(inventory, selected);
    std::uint64_t iterations = options.iterations != 0 ? options.iterations
                               : pkcs12::uses_pbes2(options.profile) ? pkcs12::kModernIterations
                                                                     : pkcs12::kLegacyIterations;
    pkcs12::Writer writer(options.profile, password, iterations);
    KeyExporter exporter(session, quirks, writer, options.token_wrap_only);
    TokenCapability capability(session);

    BackupResult result;
    std::vector<std::pair<std::string, std::string>> refusals;  // key, reasons
    std::vector<KeyReport> skipped;
    std::set<std::vector<std::uint8_t>> certificates_written;
    std::vector<std::pair<X509*, std::string>> chain;  // issuers to add after the keys

    for (std::size_t done = 0; done < selected.size(); ++done) {
        const TokenObject& key = inventory.objects[selected[done]];
        progress::report(done, selected.size(), describe_key(key));
        KeyReport report;
        report.id = key.id;
        report.label = key.label;
        report.type = key.description ? key.description->name() : "unknown";
        const TokenObject* certificate = key.paired_certificate ? &inventory.objects[*key.paired_certificate] : nullptr;
        const TokenObject* public_object = key.paired_public_key ? &inventory.objects[*key.paired_public_key] : nullptr;
        const EVP_PKEY* public_key = key.public_key ? key.public_key.get()
                                     : certificate && certificate->public_key ? certificate->public_key.get()
                                     : public_object ? public_object->public_key.get()
                                                     : nullptr;
        pkcs12::EntryAttributes attributes;
        if (!key.id.empty()) attributes.local_key_id = key.id;
        if (!key.label.empty()) attributes.friendly_name = key.label;
        std::optional<ExtractionPath> exported;
        if (auto why = unrestorable(capability, key, public_key)) report.notes.push_back(*why);
        else exported = exporter.export_key(key, public_key, attributes, report.notes);
        if (!exported) {
            // The last note is the verdict; the ones before say what each path met.
            std::string reasons = report.notes.back();
            if (report.notes.size() > 1) {
                reasons += " (";
                for (std::size_t i = 0; i + 1 < report.notes.size(); ++i) reasons += (i ? "; " : "") + report.notes[i];
                reasons += ")";
            }
            refusals.emplace_back(describe_key(key), reasons);
            report.status = "skipped-unsupported";
            skipped.push_back(std::move(report));
            continue;
        }
        report.path = path_name(*exported);
        if (public_key != nullptr) report.spki_sha256 = keys::spki_sha256(public_key);
        if (certificate != nullptr && certificate->certificate) {
            X509* cert = certificate->certificate.get();
            pkcs12::EntryAttributes cert_attributes = attributes;
            if (!certificate->label.empty()) cert_attributes.friendly_name = certificate->label;
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
    for (std::size_t index : select_secret_keys(inventory, options.selection)) {
        const TokenObject& key = inventory.objects[index];
        KeyReport report;
        report.id = key.id;
        report.label = key.label;
        auto type = secret_keys::token_type(key.key_type.value_or(CKK_VENDOR_DEFINED),
                                            key.description ? key.description->bits / 8 : 0);
        report.type = type ? type->name : "secret key";
        report.secret_key = true;
        pkcs12::EntryAttributes attributes;
        if (!key.id.empty()) attributes.local_key_id = key.id;
        if (!key.label.empty()) attributes.friendly_name = key.label;
        auto exported = exporter.export_secret_key(key, attributes, report.notes);
        if (!exported) {
            refusals.emplace_back("secret " + describe_key(key), report.notes.back());
            report.status = "skipped-unsupported";
            skipped.push_back(std::move(report));
            continue;
        }
        report.path = path_name(*exported);
        result.keys.push_back(std::move(report));
    }
    progress::report(selected.size(), selected.size(), {});
    if (!refusals.empty() && options.skip_unsupported && !result.keys.empty()) {
        for (const auto& [name, reasons] : refusals) result.warnings.push_back("left on the token: " + name + ": " + reasons);
        result.skipped = std::move(skipped);
        refusals.clear();
    }
    if (!refusals.empty()) {
        std::string message = refusals.size() == 1 ? refusals.front().first + ": " + refusals.front().second
                                                   : fmt::format("{} of {} selected keys cannot be exported: {}",
                                                                 refusals.size(), result.keys.size() + refusals.size(),
                                                                 fold_refusals(refusals));
        if (!result.keys.empty()) message += "; nothing was exported (--skip-unsupported backs up the others)";
        else message += "; nothing was exported";
        throw Error(ErrorKind::refused, message);
    }

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
