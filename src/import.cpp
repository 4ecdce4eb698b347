// SPDX-License-Identifier: Apache-2.0
#include "src/import.hpp"

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "pkcs11/error.hpp"
#include "src/key_proof.hpp"
#include "src/keys.hpp"
#include "src/pkcs12/pairing.hpp"
#include "src/secret_random.hpp"
#include "src/token_capability.hpp"
#include "src/transport.hpp"

namespace p11vault {

namespace {

// C_UnwrapKey answers that mean "these bytes do not decrypt to a key under this key":
// a producer quirk the host path knows, or a wrong password in a file without a MAC.
bool means_wrong_key(CK_RV rv) {
    return rv == CKR_WRAPPED_KEY_INVALID || rv == CKR_WRAPPED_KEY_LEN_RANGE || rv == CKR_ENCRYPTED_DATA_INVALID ||
           rv == CKR_ENCRYPTED_DATA_LEN_RANGE || rv == CKR_DATA_INVALID;
}


}  // namespace

KeyImporter::KeyImporter(pkcs11::Session& session, const TokenQuirks& quirks, pkcs12::Reader& reader,
                         bool extractable)
    : session_(session),
      quirks_(quirks),
      reader_(reader),
      extractable_(extractable) {}

pkcs11::AttributeTemplate KeyImporter::private_template(const PlannedKey& key, bool with_key_type, bool on_token) const {
    pkcs11::AttributeTemplate t;
    t.add_class(CKO_PRIVATE_KEY);
    if (with_key_type) t.add_key_type(key.type->key_type);
    // SoftHSM defaults CKA_SENSITIVE to FALSE: always say both explicitly.
    t.add_bool(CKA_TOKEN, on_token)
        .add_bool(CKA_PRIVATE, true)
        .add_bool(CKA_SENSITIVE, true)
        .add_bool(CKA_EXTRACTABLE, extractable_)
        .add_bool(CKA_SIGN, true);
    if (key.type->key_type == CKK_RSA) t.add_bool(CKA_DECRYPT, true).add_bool(CKA_UNWRAP, false);
    if (key.type->key_type == CKK_EC) t.add_bool(CKA_DERIVE, true);
    if (!key.id.empty()) t.add_bytes(CKA_ID, key.id);
    if (!key.label.empty()) t.add_string(CKA_LABEL, key.label);
    if (key.certificate) t.add_bytes(CKA_SUBJECT, ossl::der(i2d_X509_NAME, X509_get_subject_name(key.certificate->certificate.get()),
                                                         ErrorKind::bad_input, "a certificate's subject"));
    if (quirks_.unwrap_needs_nss_db && key.type->key_type == CKK_EC && key.public_key)
        t.add_bytes(CKA_NSS_DB, keys::ec_public_point(key.public_key.get()));
    if (quirks_.unwrap_needs_nss_db && key.type->key_type == CKK_DSA && key.public_key)
        t.add_bytes(CKA_NSS_DB, keys::dsa_public_value(key.public_key.get()));
    return t;
}

CK_OBJECT_HANDLE KeyImporter::import_private_key(PlannedKey& key) {
    created_by_ = "C_UnwrapKey";
    const pkcs12::KeyBag& bag = *key.bag;
    auto& notes = key.report.notes;
    // The token-side paths need the key type before decryption, which the paired
    // certificate gives; a key decrypted during planning goes the host way anyway.
    if (bag.shrouded && !key.host_key) {
        const X509_ALGOR* algorithm = nullptr;
        X509_SIG_get0(bag.shrouded.get(), &algorithm, nullptr);
        auto pbes2 = pkcs12::parse_pbes2(algorithm, reader_.decryptor().limits());
        auto try_token = [&](const char* path, auto&& run) -> std::optional<CK_OBJECT_HANDLE> {
            // Only where the token can then prove the key it unwrapped is the certificate's.
            if (!can_prove(key)) {
                notes.push_back(fmt::format("{} not possible: the token does not offer {} to prove that the key it "
                                            "unwraps is its certificate's",
                                            path, pkcs11::mechanism_name(proof_signature_mechanism(
                                                      key.type->key_type, key.public_key.get()))));
                return std::nullopt;
            }
            try {
                CK_OBJECT_HANDLE handle = run();
                key.report.path = path;
                return handle;
            } catch (const pkcs11::Pkcs11Error& e) {
                if (!transport::means_path_unavailable(e.rv()) && !means_wrong_key(e.rv())) throw;
                notes.push_back(fmt::format("{} not possible: {}", path, e.what()));
                return std::nullopt;
            }
        };
        if (pbes2 && pbes2->cipher.rfind("AES-", 0) == 0 && session_.offers(CKM_AES_CBC_PAD, CKF_UNWRAP)) {
            if (auto handle = try_token("token-unwrap", [&] { return token_unwrap(key, *pbes2, bag.shrouded.get()); })) {
                if (key_derived_in_token_)
                    notes.push_back("the token refuses clear AES keys; it derived the bag key itself (CKM_PKCS5_PBKD2)");
                return *handle;
            }
        } else if (OBJ_obj2nid(algorithm->algorithm) == NID_pbe_WithSHA1And3_Key_TripleDES_CBC &&
                   session_.offers(CKM_DES3_CBC_PAD, CKF_UNWRAP)) {
            if (auto handle = try_token("token-unwrap-legacy", [&] { return token_unwrap_legacy(key, bag.shrouded.get()); }))
                return *handle;
        } else {
            notes.push_back(fmt::format("token-unwrap not possible: the bag is {} and the token {}", bag.protection,
                                        session_.offers(CKM_AES_CBC_PAD, CKF_UNWRAP) ? "offers CKM_AES_CBC_PAD"
                                                                            : "does not offer CKM_AES_CBC_PAD unwrap"));
        }
    }
    key.report.path = "host-decrypt";
    return host_decrypt(key);
}

bool KeyImporter::can_unwrap() const {
    return session_.offers(CKM_AES_CBC_PAD, CKF_UNWRAP) || session_.offers(CKM_AES_KEY_WRAP_PAD, CKF_UNWRAP) ||
           session_.offers(CKM_DES3_CBC_PAD, CKF_UNWRAP);
}

std::optional<std::string> KeyImporter::refusal_of_trial(pkcs11::AttributeTemplate& session_only) {
    try {
        pkcs11::ScopedObject trial(session_, session_.create_object(session_only));
    } catch (const pkcs11::Pkcs11Error& e) {
        if (!means_key_refused(e.rv())) throw;
        return fmt::format("the token offers no unwrap mechanism and refuses to create the key (C_CreateObject of a "
                           "session-only trial object: {})",
                           pkcs11::rv_name(e.rv()));
    }
    return std::nullopt;
}

std::optional<std::string> KeyImporter::trial_create(const PlannedKey& key) {
    ossl::P8Info info = reader_.decrypt_key(*key.bag);
    ossl::Pkey host_key = reader_.key_from_info(info.get());
    if (!host_key) return std::nullopt;  // the real run names the broken key
    pkcs11::AttributeTemplate t = private_template(key, false, /*on_token=*/false);
    keys::add_private_attributes(host_key.get(), t);
    std::optional<std::string> reason = refusal_of_trial(t);
    if (reason && quirks_.private_key_import != nullptr) *reason += "; " + std::string(quirks_.private_key_import);
    return reason;
}

CK_OBJECT_HANDLE KeyImporter::session_key_for(const std::string& made_from, CK_KEY_TYPE key_type,
                                              const std::function<const SecretBytes&()>& value,
                                              const std::function<pkcs11::ScopedObject()>& derive) {
    if (auto known = session_keys_.find(made_from); known != session_keys_.end()) return known->second.get();
    std::optional<pkcs11::ScopedObject> made;
    try {
        made.emplace(transport::import_session_key(session_, key_type, value(), transport::KeyUse::unwrap));
    } catch (const pkcs11::Pkcs11Error& e) {
        if (!derive || !transport::means_clear_key_refused(e.rv())) throw;
        made.emplace(derive());
    }
    return session_keys_.emplace(made_from, std::move(*made)).first->second.get();
}

CK_OBJECT_HANDLE KeyImporter::token_unwrap(const PlannedKey& key, const pkcs12::Pbes2Params& params,
                                           const X509_SIG* bag) {
    const ASN1_OCTET_STRING* data = nullptr;
    X509_SIG_get0(bag, nullptr, &data);
    // A token that refuses clear keys (softoken in FIPS mode) may compute the bag's PBKDF2
    // key itself, from the password as given (the standard UTF-8 form).
    std::function<pkcs11::ScopedObject()> derive;
    if (session_.offers(CKM_PKCS5_PBKD2, CKF_GENERATE) && transport::token_can_derive_with(params.prf_digest)) {
        derive = [&] {
            key_derived_in_token_ = true;
            return reader_.derive_bag_key_with(params, [&](const SecretBytes& password, const pkcs12::Bytes& salt,
                                                           std::uint64_t iterations, const std::string& prf,
                                                           std::size_t key_length) {
                return transport::derive_session_key(session_, password, salt, iterations, prf, key_length,
                                                     transport::KeyUse::unwrap,
                                                     quirks_.pbkd2_password_length_by_pointer);
            });
        };
    }
    const std::string made_from = fmt::format("pbkdf2|{}|{}|{}|{}", ossl::hex(params.salt), params.iterations,
                                              params.prf_digest, params.cipher_key_length);
    CK_OBJECT_HANDLE unwrapping_key = session_key_for(
        made_from, CKK_AES, [&]() -> const SecretBytes& { return reader_.decryptor().pbes2_key(params); }, derive);
    pkcs11::AttributeTemplate t = private_template(key, true);
    std::span<const std::uint8_t> wrapped(ASN1_STRING_get0_data(data), static_cast<std::size_t>(ASN1_STRING_length(data)));
    return proven(key, session_.unwrap_key(pkcs11::Mechanism(CKM_AES_CBC_PAD, params.iv), unwrapping_key, wrapped, t));
}

CK_OBJECT_HANDLE KeyImporter::token_unwrap_legacy(const PlannedKey& key, const X509_SIG* bag) {
    const X509_ALGOR* algorithm = nullptr;
    const ASN1_OCTET_STRING* data = nullptr;
    X509_SIG_get0(bag, &algorithm, &data);
    auto key_iv = reader_.decryptor().des3_key_iv(algorithm);
    // The key is the password's (in the one form the MAC verified) under the scheme, salt
    // and iterations of the AlgorithmIdentifier: its DER names the key. Not the IV: it is
    // derived from the password too.
    const std::vector<std::uint8_t> der =
        ossl::der(i2d_X509_ALGOR, algorithm, ErrorKind::failure, key.bag->where + ": its algorithm");
    const std::string made_from = "p12kdf|" + ossl::hex(der);
    CK_OBJECT_HANDLE unwrapping_key =
        session_key_for(made_from, CKK_DES3, [&]() -> const SecretBytes& { return key_iv->first; });
    pkcs11::AttributeTemplate t = private_template(key, true);
    std::span<const std::uint8_t> wrapped(ASN1_STRING_get0_data(data), static_cast<std::size_t>(ASN1_STRING_length(data)));
    return proven(key, session_.unwrap_key(pkcs11::Mechanism(CKM_DES3_CBC_PAD, key_iv->second), unwrapping_key, wrapped, t));
}

bool KeyImporter::can_prove(const PlannedKey& key) const {
    return key.type->key_type == CKK_RSA ||  // a private RSA key shows its modulus
           session_.offers(proof_signature_mechanism(key.type->key_type, key.public_key.get()), CKF_SIGN);
}

CK_OBJECT_HANDLE KeyImporter::proven(const PlannedKey& key, CK_OBJECT_HANDLE handle) {
    pkcs11::ScopedObject created(session_, handle);
    std::optional<bool> same = shows_public_key(session_, handle, key.public_key.get());
    if (!same) same = proves_by_signature(session_, handle, key.type->key_type, key.public_key.get());
    if (!*same) pkcs12::refuse_mismatch(*key.bag, *key.certificate);
    return created.release();
}

CK_OBJECT_HANDLE KeyImporter::host_decrypt(PlannedKey& key) {
    auto& notes = key.report.notes;
    ossl::P8Info info = reader_.decrypt_key(*key.bag);
    ossl::Pkey host_key = reader_.key_from_info(info.get());
    if (!host_key) ossl::fail(ErrorKind::bad_input, key.bag->where + ": the key does not parse");
    if (key.certificate) pkcs12::check_pairing(*key.bag, *key.certificate, host_key.get());
    // Prefer C_UnwrapKey under an ephemeral key (some tokens refuse C_CreateObject of
    // private keys); RSA-PSS PKCS#8 and tokens that cannot unwrap go by C_CreateObject.
    const bool pss = EVP_PKEY_is_a(host_key.get(), "RSA-PSS");
    const bool eddsa_broken = key.type->key_type == CKK_EC_EDWARDS && quirks_.eddsa_unwrap_broken;
    const bool can_carry =
        session_.offers(CKM_AES_KEY_WRAP_PAD, CKF_UNWRAP) || session_.offers(CKM_AES_CBC_PAD, CKF_UNWRAP);
    if (!pss && !eddsa_broken && can_carry) {
        const SecretBytes der =
            ossl::secret_der(i2d_PKCS8_PRIV_KEY_INFO, info.get(), ErrorKind::bad_input, "a private key");
        if (auto handle = unwrap_from_host(der, [&] { return private_template(key, true); }, notes)) return *handle;
        notes.push_back("creating the key object instead");
    } else if (eddsa_broken) {
        notes.push_back("this token cannot unwrap EdDSA keys; creating the key object instead");
    }
    pkcs11::AttributeTemplate t = private_template(key, false);
    keys::add_private_attributes(host_key.get(), t);
    created_by_ = "C_CreateObject";
    return session_.create_object(t);
}

CK_OBJECT_HANDLE KeyImporter::ephemeral_key() {
    if (ephemeral_.empty()) {
        ephemeral_ = random_secret(32);
    }
    return session_key_for("ephemeral", CKK_AES, [&]() -> const SecretBytes& { return ephemeral_; });
}

std::optional<CK_OBJECT_HANDLE> KeyImporter::unwrap_from_host(
    const SecretBytes& plain, const std::function<pkcs11::AttributeTemplate()>& make_template,
    std::vector<std::string>& notes) {
    for (CK_MECHANISM_TYPE type : transport::kCarrierMechanisms) {
        if (!session_.offers(type, CKF_UNWRAP)) continue;
        CK_OBJECT_HANDLE unwrapping_key = ephemeral_key();
        pkcs11::AttributeTemplate t = make_template();
        const pkcs11::Mechanism mechanism = transport::carrier_mechanism(type);
        try {
            return session_.unwrap_key(mechanism, unwrapping_key, transport::carrier_encrypt(mechanism, ephemeral_, plain),
                                       t);
        } catch (const pkcs11::Pkcs11Error& e) {
            if (!transport::means_path_unavailable(e.rv())) throw;
            notes.push_back(fmt::format("C_UnwrapKey refused ({})", e.what()));
        }
    }
    return std::nullopt;
}

pkcs11::AttributeTemplate KeyImporter::secret_template(const PlannedSecretKey& secret, bool on_token) const {
    pkcs11::AttributeTemplate t;
    t.add_class(CKO_SECRET_KEY).add_key_type(secret.type->key_type);
    t.add_bool(CKA_TOKEN, on_token)
        .add_bool(CKA_PRIVATE, true)
        .add_bool(CKA_SENSITIVE, true)
        .add_bool(CKA_EXTRACTABLE, extractable_);
    secret_keys::add_usage(secret.type->key_type, t);
    if (!secret.id.empty()) t.add_bytes(CKA_ID, secret.id);
    if (!secret.label.empty()) t.add_string(CKA_LABEL, secret.label);
    return t;
}

CK_OBJECT_HANDLE KeyImporter::import_secret_key(PlannedSecretKey& secret) {
    auto& notes = secret.report.notes;
    secret.report.path = "host-decrypt";
    created_by_ = "C_UnwrapKey";
    notes.push_back("token-unwrap not possible: a secret bag holds a PrivateKeyInfo around the key, not the key itself");
    if (auto handle = unwrap_from_host(secret.value, [&] { return secret_template(secret); }, notes)) return *handle;
    pkcs11::AttributeTemplate t = secret_template(secret);
    t.add_secret(CKA_VALUE, secret.value);
    created_by_ = "C_CreateObject";
    return session_.create_object(t);
}

std::optional<std::string> KeyImporter::trial_create_secret(const PlannedSecretKey& secret) {
    pkcs11::AttributeTemplate t = secret_template(secret, /*on_token=*/false);
    t.add_secret(CKA_VALUE, secret.value);
    return refusal_of_trial(t);
}

}  // namespace p11vault
