// SPDX-License-Identifier: Apache-2.0
#include "src/migrate.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <optional>

#include "p11vault/error.hpp"
#include "src/inventory.hpp"
#include "src/keys.hpp"
#include "src/object_text.hpp"
#include "src/ossl.hpp"
#include "src/secret_random.hpp"
#include "src/session_pool.hpp"
#include "src/token_lock.hpp"

namespace p11vault {

namespace {

// The public key a token shows for a private key: its own attributes (RSA), else its
// public key object or certificate.
const EVP_PKEY* shown_public_key(const Inventory& inventory, const TokenObject& key) {
    if (key.public_key) return key.public_key.get();
    if (key.paired_public_key && inventory.objects[*key.paired_public_key].public_key)
        return inventory.objects[*key.paired_public_key].public_key.get();
    if (key.paired_certificate) return inventory.objects[*key.paired_certificate].public_key.get();
    return nullptr;
}

}  // namespace

MigrateResult run_migrate(pkcs11::Session& source, const TokenQuirks& source_quirks, pkcs11::Session& target,
                          const TokenQuirks& target_quirks, const BackupOptions& backup_options,
                          const RestoreOptions& restore_options, const pkcs12::Limits& limits) {
    // 256 random bits: a password nobody types needs no slow KDF.
    SecretBytes password = random_hex_secret(32);
    BackupOptions options = backup_options;
    options.profile = pkcs12::Profile::modern;
    options.iterations = 1000;

    MigrateResult result;
    {
        // The source is read under its shared lock, released before the target's is
        // taken (source and target may be one token, whose locks would exclude each other).
        TokenLock source_lock(source, LockMode::shared, options.lock_wait);
        std::vector<std::string> job_warnings;
        SessionPool pool = SessionPool::for_token(source, source_quirks, options.jobs, /*read_write=*/false, job_warnings);
        Inventory source_inventory = read_inventory(pool, PublicKeyObjects::in_full);
        result.exported = run_backup(pool, source_quirks, source_inventory, password, options);
        result.exported.warnings.insert(result.exported.warnings.begin(), job_warnings.begin(), job_warnings.end());
    }
    {
        // The file is ciphertext under the random password above; the reader takes it and
        // releases it once parsed, so it is not held twice.
        std::optional<pkcs12::Reader> reader;
        try {
            reader.emplace(std::move(result.exported.file), password, limits);
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::bad_input) throw;
            // "key bag 3" is the third selected key: say where the bags came from.
            throw e.with_message(std::string("the keys selected on the source token: ") + e.what());
        }
        result.imported = run_restore(target, target_quirks, *reader, restore_options);
    }
    if (restore_options.dry_run) return result;

    // Proof: every migrated key is on the target with the same CKA_ID and public key.
    std::vector<std::string> said_by_the_restore;  // its --jobs warning, if any, is in result.imported
    SessionPool target_pool =
        SessionPool::for_token(target, target_quirks, restore_options.jobs, /*read_write=*/false, said_by_the_restore);
    Inventory target_inventory = read_inventory(target_pool, PublicKeyObjects::in_full);
    std::vector<std::string> problems;
    for (std::size_t k = 0; k < result.exported.keys.size(); ++k) {
        const KeyReport& exported = result.exported.keys[k];
        // The restore plans one key per bag, in the order backup wrote them; its id is
        // the exported one unless --renumber-duplicate-ids changed it.
        const std::vector<std::uint8_t>& id =
            k < result.imported.keys.size() ? result.imported.keys[k].id : exported.id;
        // A key the target cannot hold and --skip-unsupported left out is reported as such.
        if (k < result.imported.keys.size() && result.imported.keys[k].status == "skipped-unsupported") continue;
        bool found = false;
        // A secret key has no public key: it must be there under its id; restore
        // compared what it computes with the file's key.
        if (exported.secret_key)
            for (std::size_t i : target_inventory.indexes_of(CKO_SECRET_KEY))
                found = found || target_inventory.objects[i].id == id;
        for (std::size_t i : target_inventory.indexes_of(CKO_PRIVATE_KEY)) {
            if (found) break;
            const TokenObject& key = target_inventory.objects[i];
            if (key.id != id) continue;
            const EVP_PKEY* public_key = shown_public_key(target_inventory, key);
            found = public_key != nullptr && keys::spki_sha256(public_key) == exported.spki_sha256;
            if (found) break;
        }
        if (!found)
            problems.push_back("key " + describe_object(id, exported.label));
    }
    if (!problems.empty()) {
        throw Error(ErrorKind::failure,
                    fmt::format("after the migration the target does not show the same public key for: {}",
                                fmt::join(problems, ", ")));
    }
    return result;
}

}  // namespace p11vault
