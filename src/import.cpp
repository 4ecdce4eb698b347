// SPDX-License-Identifier: Apache-2.0
#include "src/import.hpp"

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "pkcs11/error.hpp"
#include "src/keys.hpp"
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

std::vector<std::uint8_t> der_name(const X509_NAME* name) {
    unsigned char* der = nullptr;
    int length = i2d_X509_NAME(name, &der);
    if (length <= 0) return {};
    std::vector<std::uint8_t> out(der, der + length);
    OPENSSL_free(der);
    return out;
}

SecretBytes encode_private_key_info(const PKCS8_PRIV_KEY_INFO* info) {
    unsigned char* der = nullptr;
    int length = i2d_PKCS8_PRIV_KEY_INFO(info, &der);
    if (length <= 0) ossl::fail(static_cast<int>(ErrorKind::bad_input), "encoding a private key");
    SecretBytes out(der, static_cast<std::size_t>(length));
    OPENSSL_clear_free(der, static_cast<std::size_t>(length));
    return out;
}

}  // namespace

KeyImporter::KeyImporter(pkcs11::Session& session, const TokenQuirks& quirks, pkcs12::Reader& reader,
                         bool extractable)
    : session_(session),
      quirks_(quirks),
      reader_(reader),
      extractable_(extractable),
      mechanisms_(session.module().mechanisms(session.slot())) {}

bool KeyImporter::offers(CK_MECHANISM_TYPE mechanism, CK_FLAGS flag) const {
    for (const auto& entry : mechanisms_)
        if (entry.type == mechanism) return entry.has(flag);
    return false;
}

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
    if (key.certificate) t.add_bytes(CKA_SUBJECT, der_name(X509_get_subject_name(key.certificate->certificate.get())));
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
        if (pbes2 && pbes2->cipher.rfind("AES-", 0) == 0 && offers(CKM_AES_CBC_PAD, CKF_UNWRAP)) {
            if (auto handle = try_token("token-unwrap", [&] { return token_unwrap(key, *pbes2, bag.shrouded.get()); })) {
                if (key_derived_in_token_)
                    notes.push_back("the token refuses clear AES keys; it derived the bag key itself (CKM_PKCS5_PBKD2)");
                return *handle;
            }
        } else if (OBJ_obj2nid(algorithm->algorithm) == NID_pbe_WithSHA1And3_Key_TripleDES_CBC &&
                   offers(CKM_DES3_CBC_PAD, CKF_UNWRAP)) {
            if (auto handle = try_token("token-unwrap-legacy", [&] { return token_unwrap_legacy(key, bag.shrouded.get()); }))
                return *handle;
        } else {
            notes.push_back(fmt::format("token-unwrap not possible: the bag is {} and the token {}", bag.protection,
                                        offers(CKM_AES_CBC_PAD, CKF_UNWRAP) ? "offers CKM_AES_CBC_PAD"
                                                                            : "does not offer CKM_AES_CBC_PAD unwrap"));
        }
    }
    key.report.path = "host-decrypt";
    return host_decrypt(key);
}

bool KeyImporter::can_unwrap() const {
    return offers(CKM_AES_CBC_PAD, CKF_UNWRAP) || offers(CKM_AES_KEY_WRAP_PAD, CKF_UNWRAP) ||
           offers(CKM_DES3_CBC_PAD, CKF_UNWRAP);
}

std::optional<std::string> KeyImporter::trial_create(const PlannedKey& key) {
    ossl::P8Info info = reader_.decrypt_key(*key.bag);
    ossl::Pkey host_key = reader_.key_from_info(info.get());
    if (!host_key) return std::nullopt;  // the real run names the broken key
    pkcs11::AttributeTemplate t = private_template(key, false, /*on_token=*/false);
    keys::add_private_attributes(host_key.get(), t);
    try {
        pkcs11::ScopedObject trial(session_, session_.create_object(t));
    } catch (const pkcs11::Pkcs11Error& e) {
        if (!means_key_refused(e.rv())) throw;
        std::string reason = fmt::format("the token offers no unwrap mechanism and refuses to create the key "
                                         "(C_CreateObject of a session-only trial object: {})",
                                         pkcs11::rv_name(e.rv()));
        if (quirks_.private_key_import != nullptr) reason += "; " + std::string(quirks_.private_key_import);
        return reason;
    }
    return std::nullopt;
}

CK_OBJECT_HANDLE KeyImporter::session_key_for(const SecretBytes& value, CK_KEY_TYPE key_type,
                                              const std::function<pkcs11::ScopedObject()>& derive) {
    for (const auto& [known, object] : session_keys_)
        if (known == value) return object->get();
    CK_OBJECT_HANDLE handle_made = CK_INVALID_HANDLE;
    try {
        handle_made = transport::import_session_key(session_, key_type, value, transport::KeyUse::unwrap).release();
    } catch (const pkcs11::Pkcs11Error& e) {
        if (!derive || !transport::means_clear_key_refused(e.rv())) throw;
        handle_made = derive().release();
    }
    auto object = std::make_unique<pkcs11::ScopedObject>(session_, handle_made);
    CK_OBJECT_HANDLE handle = object->get();
    session_keys_.emplace_back(value.clone(), std::move(object));
    return handle;
}

CK_OBJECT_HANDLE KeyImporter::token_unwrap(const PlannedKey& key, const pkcs12::Pbes2Params& params,
                                           const X509_SIG* bag) {
    const ASN1_OCTET_STRING* data = nullptr;
    X509_SIG_get0(bag, nullptr, &data);
    // A token that refuses clear keys (softoken in FIPS mode) may compute the bag's PBKDF2
    // key itself, from the password as given (the standard UTF-8 form).
    std::function<pkcs11::ScopedObject()> derive;
    if (offers(CKM_PKCS5_PBKD2, CKF_GENERATE) && transport::token_can_derive_with(params.prf_digest)) {
        derive = [&] {
            key_derived_in_token_ = true;
            return transport::derive_session_key(session_, reader_.password(), params.salt, params.iterations,
                                                 params.prf_digest, params.cipher_key_length,
                                                 transport::KeyUse::unwrap, quirks_.pbkd2_password_length_by_pointer);
        };
    }
    CK_OBJECT_HANDLE unwrapping_key =
        session_key_for(reader_.decryptor().pbes2_key(params), CKK_AES, derive);
    pkcs11::AttributeTemplate t = private_template(key, true);
    std::span<const std::uint8_t> wrapped(ASN1_STRING_get0_data(data), static_cast<std::size_t>(ASN1_STRING_length(data)));
    CK_OBJECT_HANDLE handle = session_.unwrap_key(pkcs11::Mechanism(CKM_AES_CBC_PAD, params.iv), unwrapping_key,
                                                  wrapped, t);
    // The certificate said what key to expect; make sure the token holds that key and
    // not whatever else a mislabelled bag contained (RSA: the modulus is public).
    if (key.type->key_type == CKK_RSA) {
        pkcs11::ScopedObject created(session_, handle);
        static const CK_ATTRIBUTE_TYPE types[] = {CKA_KEY_TYPE, CKA_MODULUS, CKA_PUBLIC_EXPONENT};
        ossl::Pkey unwrapped = keys::public_key_from_attributes(session_.get_attributes(handle, types));
        if (unwrapped && !keys::same_public_key(unwrapped.get(), key.public_key.get()))
            throw Error(ErrorKind::bad_input,
                        key.bag->where + ": the key does not match its certificate (different public key)");
        created.release();
    }
    return handle;
}

CK_OBJECT_HANDLE KeyImporter::token_unwrap_legacy(const PlannedKey& key, const X509_SIG* bag) {
    const X509_ALGOR* algorithm = nullptr;
    const ASN1_OCTET_STRING* data = nullptr;
    X509_SIG_get0(bag, &algorithm, &data);
    auto key_iv = reader_.decryptor().des3_key_iv(algorithm);
    CK_OBJECT_HANDLE unwrapping_key = session_key_for(key_iv->first, CKK_DES3);
    pkcs11::AttributeTemplate t = private_template(key, true);
    std::span<const std::uint8_t> wrapped(ASN1_STRING_get0_data(data), static_cast<std::size_t>(ASN1_STRING_length(data)));
    return session_.unwrap_key(pkcs11::Mechanism(CKM_DES3_CBC_PAD, key_iv->second), unwrapping_key, wrapped, t);
}

CK_OBJECT_HANDLE KeyImporter::host_decrypt(PlannedKey& key) {
    auto& notes = key.report.notes;
    ossl::P8Info info = reader_.decrypt_key(*key.bag);
    ossl::Pkey host_key = reader_.key_from_info(info.get());
    if (!host_key) ossl::fail(static_cast<int>(ErrorKind::bad_input), key.bag->where + ": the key does not parse");
    if (key.public_key && !keys::same_public_key(host_key.get(), key.public_key.get()))
        throw Error(ErrorKind::bad_input,
                    key.bag->where + ": the key does not match its certificate (different public key)");
    // Prefer C_UnwrapKey under an ephemeral key (some tokens refuse C_CreateObject of
    // private keys); RSA-PSS PKCS#8 and tokens that cannot unwrap go by C_CreateObject.
    const bool pss = EVP_PKEY_is_a(host_key.get(), "RSA-PSS");
    const bool eddsa_broken = key.type->key_type == CKK_EC_EDWARDS && quirks_.eddsa_unwrap_broken;
    if (!pss && !eddsa_broken && (offers(CKM_AES_KEY_WRAP_PAD, CKF_UNWRAP) || offers(CKM_AES_CBC_PAD, CKF_UNWRAP))) {
        SecretBytes der = encode_private_key_info(info.get());
        CK_OBJECT_HANDLE unwrapping_key = ephemeral_key();
        // CBC_PAD first: its format is the same on every token, while NSS's
        // CKM_AES_KEY_WRAP_PAD is RFC 3394 with PKCS#7 padding, not RFC 5649. SoftHSM
        // offers CBC_PAD but refuses it for private keys (CKR_MECHANISM_INVALID): then KWP.
        for (CK_MECHANISM_TYPE mechanism : {CKM_AES_CBC_PAD, CKM_AES_KEY_WRAP_PAD}) {
            if (!offers(mechanism, CKF_UNWRAP)) continue;
            pkcs11::AttributeTemplate t = private_template(key, true);
            try {
                if (mechanism == CKM_AES_CBC_PAD) {
                    std::vector<std::uint8_t> iv = ossl::random_bytes(16);
                    std::vector<std::uint8_t> wrapped =
                        pkcs12::cbc_encrypt("AES-256-CBC", ephemeral_, iv, der.data(), der.size());
                    return session_.unwrap_key(pkcs11::Mechanism(mechanism, iv), unwrapping_key, wrapped, t);
                }
                std::vector<std::uint8_t> wrapped = transport::aes_wrap_pad(ephemeral_, der);
                return session_.unwrap_key(pkcs11::Mechanism(mechanism), unwrapping_key, wrapped, t);
            } catch (const pkcs11::Pkcs11Error& e) {
                if (!transport::means_path_unavailable(e.rv())) throw;
                notes.push_back(fmt::format("C_UnwrapKey refused ({})", e.what()));
            }
        }
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
        std::vector<std::uint8_t> random = ossl::random_bytes(32);
        ephemeral_ = SecretBytes(random.data(), random.size());
        secure_wipe(random.data(), random.size());
    }
    return session_key_for(ephemeral_, CKK_AES);
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
    for (CK_MECHANISM_TYPE mechanism : {CKM_AES_CBC_PAD, CKM_AES_KEY_WRAP_PAD}) {
        if (!offers(mechanism, CKF_UNWRAP)) continue;
        CK_OBJECT_HANDLE unwrapping_key = ephemeral_key();
        pkcs11::AttributeTemplate t = secret_template(secret);
        try {
            if (mechanism == CKM_AES_CBC_PAD) {
                std::vector<std::uint8_t> iv = ossl::random_bytes(16);
                std::vector<std::uint8_t> wrapped = pkcs12::cbc_encrypt("AES-256-CBC", ephemeral_, iv,
                                                                        secret.value.data(), secret.value.size());
                return session_.unwrap_key(pkcs11::Mechanism(mechanism, iv), unwrapping_key, wrapped, t);
            }
            std::vector<std::uint8_t> wrapped = transport::aes_wrap_pad(ephemeral_, secret.value);
            return session_.unwrap_key(pkcs11::Mechanism(mechanism), unwrapping_key, wrapped, t);
        } catch (const pkcs11::Pkcs11Error& e) {
            if (!transport::means_path_unavailable(e.rv())) throw;
            notes.push_back(fmt::format("C_UnwrapKey refused ({})", e.what()));
        }
    }
    pkcs11::AttributeTemplate t = secret_template(secret);
    t.add_secret(CKA_VALUE, secret.value);
    created_by_ = "C_CreateObject";
    return session_.create_object(t);
}

std::optional<std::string> KeyImporter::trial_create_secret(const PlannedSecretKey& secret) {
    pkcs11::AttributeTemplate t = secret_template(secret, /*on_token=*/false);
    t.add_secret(CKA_VALUE, secret.value);
    try {
        pkcs11::ScopedObject trial(session_, session_.create_object(t));
    } catch (const pkcs11::Pkcs11Error& e) {
        if (!means_key_refused(e.rv())) throw;
        return fmt::format("the token offers no unwrap mechanism and refuses to create the key (C_CreateObject of a "
                           "session-only trial object: {})",
                           pkcs11::rv_name(e.rv()));
    }
    return std::nullopt;
}

}  // namespace p11vault
