// SPDX-License-Identifier: Apache-2.0
// Planning a restore: which certificate belongs to which key, what each object's CKA_ID
// and CKA_LABEL will be, whether the token can hold each key, and what already exists.
// Nothing here writes to the token.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "pkcs11/session.hpp"
#include "src/keys.hpp"
#include "src/pkcs12/reader.hpp"
#include "src/report.hpp"
#include "src/restore_options.hpp"
#include "src/secret_keys.hpp"

namespace p11vault {

struct PlannedKey {
    const pkcs12::KeyBag* bag = nullptr;
    const pkcs12::CertBag* certificate = nullptr;  // the paired certificate, if any
    std::vector<std::uint8_t> id;
    std::optional<std::vector<std::uint8_t>> renumbered_from;  // the file's id (--renumber-duplicate-ids)
    std::string label;
    ossl::Pkey public_key;              // from the certificate, or the host-decrypted key
    ossl::Pkey host_key;                // set when planning already had to decrypt on the host
    std::optional<keys::KeyDescription> type;
    std::optional<std::string> unsupported;  // why the token cannot hold it
    std::vector<CK_OBJECT_HANDLE> replaces;  // existing objects to destroy (--on-conflict replace)
    bool skip = false;
    // --on-conflict skip, and the conflicting private key is this very key (a restore of
    // the file stopped half-way): what it lacks is added, its public key object when
    // add_public_key, its certificate through the certificate plan.
    bool already_on_token = false;
    bool add_public_key = false;
    KeyReport report;
};

// A secret key (AES, HMAC, DES3) of a secret bag. Its type is inside the encrypted
// PrivateKeyInfo, so planning decrypts it on the host; the bytes stay in locked memory.
struct PlannedSecretKey {
    const pkcs12::KeyBag* bag = nullptr;
    std::vector<std::uint8_t> id;
    std::string label;
    std::optional<secret_keys::SecretKeyType> type;
    SecretBytes value;
    std::optional<std::string> unsupported;
    std::vector<CK_OBJECT_HANDLE> replaces;
    bool skip = false;
    KeyReport report;
};

struct PlannedCertificate {
    const pkcs12::CertBag* bag = nullptr;
    std::vector<std::uint8_t> id;
    std::string label;
    bool already_present = false;            // the same certificate is on the token
    std::vector<CK_OBJECT_HANDLE> replaces;
    bool skip = false;
};

struct RestorePlan {
    std::vector<PlannedKey> keys;
    std::vector<PlannedSecretKey> secrets;
    std::vector<PlannedCertificate> certificates;  // paired and chain certificates
};

// Error(refused) for conflicts under --on-conflict fail and for unsupported key types
// without --skip-unsupported, naming every offending key, before anything is written.
// Error(bad_input) for different keys under one id, without --renumber-duplicate-ids.
// `import_trial`, when given, is asked for every key the token could hold by type: why
// the token would refuse to take it (nullopt: it would take it). Its answer counts as
// an unsupported key type: refused, or skipped under --skip-unsupported.
// `secret_trial` is the same for secret keys. Bags the reader could not use
// (Contents::unsupported) are refused the same way, or skipped with a warning.
using ImportTrial = std::function<std::optional<std::string>(const PlannedKey&)>;
using SecretImportTrial = std::function<std::optional<std::string>(const PlannedSecretKey&)>;
RestorePlan plan_restore(pkcs11::Session& session, pkcs12::Reader& reader, const RestoreOptions& options,
                         std::vector<std::string>& warnings, const ImportTrial& import_trial = {},
                         const SecretImportTrial& secret_trial = {});

// The id other tools give a key without localKeyID: SHA-1 of the RSA modulus, or of the
// EC/EdDSA public point (NSS, pkcs11-tool).
std::vector<std::uint8_t> derived_key_id(const EVP_PKEY* public_key);

}  // namespace p11vault
