// SPDX-License-Identifier: Apache-2.0
#include "src/restore.hpp"

#include <openssl/crypto.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <memory>
#include <mutex>

#include "p11vault/error.hpp"
#include "pkcs11/error.hpp"
#include "src/import.hpp"
#include "src/interrupt.hpp"
#include "src/keys.hpp"
#include "src/object_text.hpp"
#include "src/pkcs12/pbe.hpp"
#include "src/progress.hpp"
#include "src/restore_plan.hpp"
#include "src/session_pool.hpp"
#include "src/transport.hpp"
#include "src/write_check.hpp"

namespace p11vault {

namespace {

pkcs11::AttributeTemplate public_key_template(const PlannedKey& key) {
    pkcs11::AttributeTemplate t;
    t.add_class(CKO_PUBLIC_KEY).add_bool(CKA_TOKEN, true).add_bool(CKA_PRIVATE, false).add_bool(CKA_VERIFY, true);
    if (key.type->key_type == CKK_RSA) t.add_bool(CKA_ENCRYPT, true);
    if (!key.id.empty()) t.add_bytes(CKA_ID, key.id);
    if (!key.label.empty()) t.add_string(CKA_LABEL, key.label);
    keys::add_public_attributes(key.public_key.get(), t);
    return t;
}

// Objects this run created, destroyed in reverse order unless the run commits.
class Rollback {
public:
    explicit Rollback(pkcs11::Session& session) : session_(session) {}
    // From any worker: the objects of every session of the run are undone together.
    void add(CK_OBJECT_HANDLE handle, std::string what) {
        std::lock_guard lock(mutex_);
        created_.emplace_back(handle, std::move(what));
    }
    void commit() { created_.clear(); }
    std::vector<CK_OBJECT_HANDLE> handles() const {
        std::lock_guard lock(mutex_);
        std::vector<CK_OBJECT_HANDLE> out;
        for (const auto& entry : created_) out.push_back(entry.first);
        return out;
    }
    // Returns what could not be destroyed, for the error message. Token objects are the
    // application's, not a session's: the run's own session destroys what any worker made.
    std::vector<std::string> undo() {
        std::vector<std::string> left;
        for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
            try {
                session_.destroy_object(it->first);
            } catch (const Error& e) {
                left.push_back(it->second + " (" + e.what() + ")");
            }
        }
        created_.clear();
        return left;
    }

private:
    pkcs11::Session& session_;
    mutable std::mutex mutex_;
    std::vector<std::pair<CK_OBJECT_HANDLE, std::string>> created_;
};

std::string name_of(const std::vector<std::uint8_t>& id, const std::string& label, const char* what) {
    return fmt::format("{} {}", what, describe_object(id, label));
}

std::string repair_warning(const std::string& object, const char* created_by, const std::vector<std::string>& repaired) {
    return fmt::format("{}: the token did not apply {} of {}; p11vault set {} afterwards with C_SetAttributeValue "
                       "and read {} back",
                       object, fmt::join(repaired, ", "), created_by, repaired.size() == 1 ? "it" : "them",
                       repaired.size() == 1 ? "it" : "them");
}

// Whether a restore writes this certificate (not skipped, not on the token already).
bool writes(const PlannedCertificate& cert) { return !cert.skip && !cert.already_present; }

// A repair is worth a warning; the attributes repaired go into the key's report, if any.
std::vector<std::string> check_and_warn(pkcs11::Session& session, const WrittenObject& object,
                                        std::vector<std::string>& warnings) {
    std::vector<std::string> repaired = check_written_object(session, object);
    if (!repaired.empty()) warnings.push_back(repair_warning(object.description, object.created_by.c_str(), repaired));
    return repaired;
}

// The token's secret key is the file's: it computes what the file's key computes (a
// key check value: one zero block encrypted with CKM_AES_ECB / CKM_DES3_ECB, or
// HMAC-SHA256 of it), compared in constant time. A sensitive key shows nothing else of
// itself: SoftHSM even leaves CKA_VALUE_LEN 0 after C_UnwrapKey. Returns a note when the
// token offers no mechanism for the check.
std::optional<std::string> check_secret_value(pkcs11::Session& session, CK_OBJECT_HANDLE handle,
                                              const PlannedSecretKey& secret, const std::string& name) {
    const auto held = session.get_ulong(handle, CKA_VALUE_LEN);
    if (held && *held != 0 && *held != secret.value.size())
        throw Error(ErrorKind::token, fmt::format("{}: the token holds a key of {} bytes after writing one of {}", name,
                                                 *held, secret.value.size()));
    const CK_KEY_TYPE key_type = secret.type->key_type;
    const CK_MECHANISM_TYPE mechanism = key_type == CKK_AES    ? CKM_AES_ECB
                                        : key_type == CKK_DES3 ? CKM_DES3_ECB
                                                               : CKM_SHA256_HMAC;
    if (!session.offers(mechanism, key_type == CKK_GENERIC_SECRET ? CKF_SIGN : CKF_ENCRYPT))
        return fmt::format("the token offers no {} to check the key with", pkcs11::mechanism_name(mechanism));
    const std::vector<std::uint8_t> zeros(key_type == CKK_DES3 ? 8 : 16, 0);
    std::vector<std::uint8_t> expected;
    if (key_type == CKK_GENERIC_SECRET) {
        expected = pkcs12::hmac("SHA256", secret.value, zeros);
    } else {
        // ECB with padding: the first block is the zero block's encryption.
        expected = pkcs12::cbc_encrypt(key_type == CKK_AES ? fmt::format("AES-{}-ECB", secret.value.size() * 8)
                                                           : std::string("DES-EDE3-ECB"),
                                       secret.value, {}, zeros.data(), zeros.size());
        expected.resize(zeros.size());
    }
    pkcs11::Bytes computed;
    try {
        computed = key_type == CKK_GENERIC_SECRET ? session.sign(pkcs11::Mechanism(mechanism), handle, zeros)
                                                  : session.encrypt(pkcs11::Mechanism(mechanism), handle, zeros);
    } catch (const pkcs11::Pkcs11Error& e) {
        if (!transport::means_path_unavailable(e.rv())) throw;
        return fmt::format("the key could not be checked ({})", e.what());
    }
    if (computed.size() != expected.size() ||
        CRYPTO_memcmp(computed.data(), expected.data(), expected.size()) != 0)
        throw Error(ErrorKind::token, name + ": the key on the token computes differently from the file's key");
    return std::nullopt;
}

}  // namespace

pkcs11::AttributeTemplate certificate_object_template(const X509* cert, const std::vector<std::uint8_t>& id,
                                               const std::string& label) {
    pkcs11::AttributeTemplate t;
    t.add_class(CKO_CERTIFICATE)
        .add_ulong(CKA_CERTIFICATE_TYPE, CKC_X_509)
        .add_bool(CKA_TOKEN, true)
        .add_bool(CKA_PRIVATE, false)
        .add_bytes(CKA_VALUE, ossl::cert_der(cert))
        .add_bytes(CKA_SUBJECT, ossl::der(i2d_X509_NAME, X509_get_subject_name(cert), ErrorKind::bad_input, "a subject"))
        .add_bytes(CKA_ISSUER, ossl::der(i2d_X509_NAME, X509_get_issuer_name(cert), ErrorKind::bad_input, "an issuer"))
        .add_bytes(CKA_SERIAL_NUMBER,
                   ossl::der(i2d_ASN1_INTEGER, X509_get0_serialNumber(cert), ErrorKind::bad_input, "a serial number"));
    if (!id.empty()) t.add_bytes(CKA_ID, id);
    if (!label.empty()) t.add_string(CKA_LABEL, label);
    return t;
}

RestoreResult run_restore(pkcs11::Session& session, const TokenQuirks& quirks, pkcs12::Reader& reader,
                          const RestoreOptions& options) {
    RestoreResult result;
    result.dry_run = options.dry_run;
    result.warnings = reader.contents().warnings;
    // Conflicts are decided under the lock: a second run waits here, then sees what the
    // first one wrote.
    TokenLock lock(session, options.dry_run ? LockMode::shared : LockMode::exclusive, options.lock_wait);
    KeyImporter importer(session, quirks, reader, options.extractable);
    // A token without unwrap takes keys only by C_CreateObject, which some refuse for
    // private keys (tpm2-pkcs11): try each key as a session object first, so that a dry
    // run says what the real run would meet and the real run fails before any write.
    ImportTrial trial;
    SecretImportTrial secret_trial;
    if (!importer.can_unwrap()) {
        trial = [&importer](const PlannedKey& key) { return importer.trial_create(key); };
        secret_trial = [&importer](const PlannedSecretKey& secret) { return importer.trial_create_secret(secret); };
    }
    RestorePlan plan = plan_restore(session, reader, options, result.warnings, trial, secret_trial);

    // The certificates this run writes (a dry run: would write); a failed run writes none.
    result.certificates_written =
        static_cast<std::size_t>(std::count_if(plan.certificates.begin(), plan.certificates.end(), writes));
    if (options.dry_run) {
        for (PlannedKey& key : plan.keys) {
            if (!key.skip) key.report.status = "would-restore";
            result.keys.push_back(std::move(key.report));
        }
        for (PlannedSecretKey& secret : plan.secrets) {
            if (!secret.skip) secret.report.status = "would-restore";
            result.keys.push_back(std::move(secret.report));
        }
        return result;
    }

    // Ctrl-C, SIGTERM or SIGHUP while writing: stop before the next object and undo.
    InterruptGuard interrupts;
    // The objects are written over a pool of sessions (--jobs), each worker with its own
    // importer (its session keys are objects of its session); worker 0 is `session`.
    SessionPool pool = SessionPool::for_token(session, quirks, options.jobs, /*read_write=*/true, result.warnings);
    std::vector<std::unique_ptr<KeyImporter>> worker_importers(pool.size());
    const auto importer_of = [&](unsigned worker) -> KeyImporter& {
        if (worker == 0) return importer;
        if (!worker_importers[worker])
            worker_importers[worker] =
                std::make_unique<KeyImporter>(pool.session(worker), quirks, reader, options.extractable);
        return *worker_importers[worker];
    };
    Rollback rollback(session);
    // One write per task: the keys, then the secret keys, then the certificates, in file
    // order. A task's warnings are kept per task and joined in task order, so the output is
    // the same whatever the number of sessions.
    const std::size_t key_tasks = plan.keys.size(), secret_tasks = plan.secrets.size();
    const std::size_t task_count = key_tasks + secret_tasks + plan.certificates.size();
    std::vector<std::vector<std::string>> task_warnings(task_count);
    const auto create_public_key = [&](pkcs11::Session& worker_session, const PlannedKey& key,
                                       std::vector<std::string>& warnings) {
        const std::string public_name = name_of(key.id, key.label, "public key");
        pkcs11::AttributeTemplate public_template = public_key_template(key);
        CK_OBJECT_HANDLE public_key = worker_session.create_object(public_template);
        rollback.add(public_key, public_name);
        check_and_warn(worker_session, {public_key, &public_template, nullptr, public_name, "C_CreateObject"}, warnings);
    };
    const auto write_key = [&](unsigned worker, PlannedKey& key, std::vector<std::string>& warnings) {
        if (key.skip && !key.add_public_key) return;
        throw_if_interrupted("the restore");
        pkcs11::Session& worker_session = pool.session(worker);
        if (key.skip) {  // the key is already there; only its public key object is missing
            create_public_key(worker_session, key, warnings);
            key.report.notes.push_back("the key was on the token already; its missing public key was added");
            return;
        }
        KeyImporter& key_importer = importer_of(worker);
        const std::string private_name = name_of(key.id, key.label, "private key");
        CK_OBJECT_HANDLE private_key = key_importer.import_private_key(key);
        rollback.add(private_key, private_name);
        pkcs11::AttributeTemplate expected = key_importer.expected_private_attributes(key);
        key.report.repaired = check_and_warn(
            worker_session, {private_key, &expected, key.public_key.get(), private_name, key_importer.created_by()},
            warnings);
        create_public_key(worker_session, key, warnings);
        key.report.status = key.replaces.empty() ? "restored" : "replaced";
    };
    const auto write_secret = [&](unsigned worker, PlannedSecretKey& secret, std::vector<std::string>& warnings) {
        if (secret.skip) return;
        throw_if_interrupted("the restore");
        pkcs11::Session& worker_session = pool.session(worker);
        KeyImporter& key_importer = importer_of(worker);
        const std::string secret_name = name_of(secret.id, secret.label, "secret key");
        CK_OBJECT_HANDLE secret_key = key_importer.import_secret_key(secret);
        rollback.add(secret_key, secret_name);
        pkcs11::AttributeTemplate expected = key_importer.expected_secret_attributes(secret);
        secret.report.repaired = check_and_warn(
            worker_session, {secret_key, &expected, nullptr, secret_name, key_importer.created_by()}, warnings);
        if (auto note = check_secret_value(worker_session, secret_key, secret, secret_name))
            secret.report.notes.push_back(*note);
        secret.report.status = secret.replaces.empty() ? "restored" : "replaced";
    };
    const auto write_certificate = [&](unsigned worker, const PlannedCertificate& cert,
                                       std::vector<std::string>& warnings) {
        if (!writes(cert)) return;
        throw_if_interrupted("the restore");
        pkcs11::Session& worker_session = pool.session(worker);
        pkcs11::AttributeTemplate t = certificate_object_template(cert.bag->certificate.get(), cert.id, cert.label);
        const std::string cert_name = name_of(cert.id, cert.label, "certificate");
        CK_OBJECT_HANDLE cert_object = worker_session.create_object(t);
        rollback.add(cert_object, cert_name);
        check_and_warn(worker_session, {cert_object, &t, nullptr, cert_name, "C_CreateObject"}, warnings);
    };
    try {
        pool.for_each(
            task_count,
            [&](unsigned worker, std::size_t task) {
                if (task < key_tasks)
                    write_key(worker, plan.keys[task], task_warnings[task]);
                else if (task < key_tasks + secret_tasks)
                    write_secret(worker, plan.secrets[task - key_tasks], task_warnings[task]);
                else
                    write_certificate(worker, plan.certificates[task - key_tasks - secret_tasks], task_warnings[task]);
            },
            [&](std::size_t task) {
                if (task >= key_tasks) return;
                const PlannedKey& key = plan.keys[task];
                progress::report(task, key_tasks, name_of(key.id, key.label, "key"));
            });
        progress::report(key_tasks, key_tasks, {});
        throw_if_interrupted("the restore");
    } catch (const Error& e) {
        const std::size_t written = rollback.handles().size();
        std::vector<std::string> left = rollback.undo();
        std::string message = e.what();
        if (!left.empty())
            message += "; the rollback failed too, these objects are still on the token: " +
                       fmt::format("{}", fmt::join(left, ", "));
        else if (dynamic_cast<const Interrupted*>(&e) != nullptr)
            message += fmt::format("; the token was left as it was (the {} object{} written were destroyed)",
                                   written, written == 1 ? "" : "s");
        else
            message += "; nothing was left on the token";
        throw e.with_message(message);
    } catch (...) {
        rollback.undo();
        throw;
    }
    for (std::vector<std::string>& warnings : task_warnings)
        for (std::string& warning : warnings) result.warnings.push_back(std::move(warning));
    // Every task succeeded: what each written object replaces, in file order.
    std::vector<CK_OBJECT_HANDLE> to_replace;
    const auto replace = [&](const std::vector<CK_OBJECT_HANDLE>& old) {
        to_replace.insert(to_replace.end(), old.begin(), old.end());
    };
    for (const PlannedKey& key : plan.keys)
        if (!key.skip) replace(key.replaces);
    for (const PlannedSecretKey& secret : plan.secrets)
        if (!secret.skip) replace(secret.replaces);
    for (const PlannedCertificate& cert : plan.certificates)
        if (writes(cert)) replace(cert.replaces);
    std::vector<CK_OBJECT_HANDLE> created = rollback.handles();
    rollback.commit();

    // --on-conflict replace: the old objects go only now that every new one exists, and
    // a failure here no longer undoes the new ones (that would lose both). A token that
    // replaces same-id objects on create (NSS) may already have dropped the old ones and
    // even reused their handles: never destroy what this run created.
    std::vector<std::string> not_replaced;
    for (CK_OBJECT_HANDLE old : to_replace) {
        if (std::find(created.begin(), created.end(), old) != created.end()) continue;
        try {
            session.destroy_object(old);
        } catch (const pkcs11::Pkcs11Error& e) {
            if (e.rv() == CKR_OBJECT_HANDLE_INVALID && quirks.create_replaces_same_id) continue;
            not_replaced.push_back(fmt::format("object {} ({})", old, e.what()));
        }
    }
    if (!not_replaced.empty())
        throw Error(ErrorKind::token, "the new objects were written, but these old objects could not be removed: " +
                                         fmt::format("{}", fmt::join(not_replaced, ", ")));
    if (int late = InterruptGuard::take(); late != 0)
        result.warnings.push_back(signal_name(late) + " arrived as the restore completed; it is complete");
    for (PlannedKey& key : plan.keys) result.keys.push_back(std::move(key.report));
    for (PlannedSecretKey& secret : plan.secrets) result.keys.push_back(std::move(secret.report));
    return result;
}

}  // namespace p11vault
