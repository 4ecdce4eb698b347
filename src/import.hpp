// SPDX-License-Identifier: Apache-2.0
// The restore paths of extraction.md for one private key: token-unwrap (the clear key
// never on the host), token-unwrap-legacy, host-decrypt.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pkcs11/session.hpp"
#include "src/pkcs12/reader.hpp"
#include "src/quirks.hpp"
#include "src/restore_plan.hpp"

namespace p11vault {

class KeyImporter {
public:
    KeyImporter(pkcs11::Session& session, const TokenQuirks& quirks, pkcs12::Reader& reader, bool extractable);

    // Creates the private key object of `key` and returns its handle; sets
    // key.report.path and adds a note for every path that was tried and not taken.
    CK_OBJECT_HANDLE import_private_key(PlannedKey& key);
    // What the private key object of `key` must be (check_written_object), and the call
    // that made the last key ("C_UnwrapKey" or "C_CreateObject").
    pkcs11::AttributeTemplate expected_private_attributes(const PlannedKey& key) const {
        return private_template(key, true);
    }
    const char* created_by() const { return created_by_; }

    // Creates the secret key object of `secret` (host-decrypted while planning: a secret
    // bag's plaintext is a PrivateKeyInfo around the key, not the key a token would
    // unwrap) by C_UnwrapKey under the run's ephemeral key, else C_CreateObject; sets
    // secret.report.path and notes. expected_secret_attributes() is what it must be.
    CK_OBJECT_HANDLE import_secret_key(PlannedSecretKey& secret);
    pkcs11::AttributeTemplate expected_secret_attributes(const PlannedSecretKey& secret) const {
        return secret_template(secret);
    }
    // trial_create for a secret key.
    std::optional<std::string> trial_create_secret(const PlannedSecretKey& secret);

    // Whether the token offers any unwrap mechanism a restore path uses; without one,
    // every key must be made with C_CreateObject.
    bool can_unwrap() const;
    // For a token that cannot unwrap: creates the key as it would be restored, but as a
    // session object (CKA_TOKEN=FALSE), destroys it at once and returns why the token
    // refused it, in the token's words (nullopt: it took it). Token failures other than a
    // refusal of the key or its template throw.
    std::optional<std::string> trial_create(const PlannedKey& key);

private:
    pkcs11::AttributeTemplate private_template(const PlannedKey& key, bool with_key_type, bool on_token = true) const;
    pkcs11::AttributeTemplate secret_template(const PlannedSecretKey& secret, bool on_token = true) const;
    // Creates the session-only object `session_only` and destroys it at once: why the
    // token refused it, in its words; nullopt when it took it (other failures throw).
    std::optional<std::string> refusal_of_trial(pkcs11::AttributeTemplate& session_only);
    // The host-decrypt path's transport key, imported once per run.
    CK_OBJECT_HANDLE ephemeral_key();
    // `plain` (a PrivateKeyInfo, or a secret key's value) onto the token by C_UnwrapKey
    // under the ephemeral key, by the first of transport::kCarrierMechanisms the token
    // takes; nullopt, with a note per refusal, when it takes neither.
    std::optional<CK_OBJECT_HANDLE> unwrap_from_host(const SecretBytes& plain,
                                                     const std::function<pkcs11::AttributeTemplate()>& make_template,
                                                     std::vector<std::string>& notes);
    CK_OBJECT_HANDLE token_unwrap(const PlannedKey& key, const pkcs12::Pbes2Params& params, const X509_SIG* bag);
    CK_OBJECT_HANDLE token_unwrap_legacy(const PlannedKey& key, const X509_SIG* bag);
    // Whether the token can prove that a key it unwrapped is the certificate's: by the
    // public half it shows (RSA), else by a signature (key_proof.hpp).
    bool can_prove(const PlannedKey& key) const;
    // `handle`, the key a token-side path unwrapped, once proved to be the certificate's;
    // else it is destroyed and the bag refused as verify refuses it (exit 4).
    CK_OBJECT_HANDLE proven(const PlannedKey& key, CK_OBJECT_HANDLE handle);
    CK_OBJECT_HANDLE host_decrypt(PlannedKey& key);

    // Session keys live for the whole run, not per key: one C_CreateObject per distinct
    // key instead of one per bag (a file written by backup has one PBKDF2 key in all).
    // They are found by what made them (`made_from`: the KDF and its salt, iterations and
    // PRF, or "ephemeral"), never by comparing key bytes. `value()` is the key, asked for
    // only when the session key is not there yet; `derive`, when given, makes the same key
    // inside the token for a token that refuses clear keys.
    CK_OBJECT_HANDLE session_key_for(const std::string& made_from, CK_KEY_TYPE key_type,
                                     const std::function<const SecretBytes&()>& value,
                                     const std::function<pkcs11::ScopedObject()>& derive = {});

    pkcs11::Session& session_;
    const TokenQuirks& quirks_;
    pkcs12::Reader& reader_;
    bool extractable_;
    SecretBytes ephemeral_;  // the host-decrypt path's transport key, made on first use
    std::map<std::string, pkcs11::ScopedObject> session_keys_;  // by made_from
    // Set once the token had to derive a PBES2 key itself (CKM_PKCS5_PBKD2).
    bool key_derived_in_token_ = false;
    const char* created_by_ = "C_UnwrapKey";
};

}  // namespace p11vault
