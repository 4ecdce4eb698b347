// SPDX-License-Identifier: Apache-2.0
#include "src/extraction.hpp"

#include <fmt/format.h>

#include <memory>
#include <optional>

#include "p11vault/error.hpp"
#include "pkcs11/error.hpp"
#include "src/keys.hpp"
#include "src/pkcs12/pbe.hpp"
#include "src/secret_keys.hpp"
#include "src/transport.hpp"

namespace p11vault {

namespace {

// The verdict when no path exported a key: why, and what else could copy it.
std::string why_not_exported(const std::string& what, bool extractable, bool trusted_only) {
    if (!extractable)
        return what + " is not extractable (CKA_EXTRACTABLE=FALSE): no PKCS#11 call can export it; only the HSM "
                      "vendor's own backup or cloning can copy it";
    if (trusted_only)
        return "the key may only be wrapped by a trusted key (CKA_WRAP_WITH_TRUSTED=TRUE); use the HSM vendor's backup";
    return "the token offers no way to export this key";
}

// Runs one export path; false, with a note why, when the token does not offer it (any
// other failure propagates).
template <typename Run>
bool try_path(ExtractionPath path, Run&& run, std::vector<std::string>& notes) {
    try {
        run();
        return true;
    } catch (const pkcs11::Pkcs11Error& e) {
        if (!transport::means_path_unavailable(e.rv())) throw;
        notes.push_back(fmt::format("{} not possible: {}", path_name(path), e.what()));
        return false;
    }
}

}  // namespace

KeyExporter::KeyExporter(pkcs11::Session& session, const TokenQuirks& quirks, pkcs12::Writer& writer,
                         bool token_wrap_only)
    : session_(session),
      quirks_(quirks),
      writer_(writer),
      token_wrap_only_(token_wrap_only),
      mechanisms_(session.module().mechanisms(session.slot())) {}

bool KeyExporter::offers(CK_MECHANISM_TYPE mechanism, CK_FLAGS flag) const {
    for (const auto& entry : mechanisms_)
        if (entry.type == mechanism) return entry.has(flag);
    return false;
}

std::optional<ExtractionPath> KeyExporter::export_key(const TokenObject& key, const EVP_PKEY* public_key,
                                                      const pkcs12::EntryAttributes& attributes,
                                                      std::vector<std::string>& notes) {
    const bool extractable = key.extractable.value_or(false);
    const bool sensitive = key.sensitive.value_or(true);
    const bool trusted_only = key.wrap_with_trusted.value_or(false);
    auto attempt = [&](ExtractionPath path, auto&& run) { return try_path(path, run, notes); };

    if (extractable && !trusted_only) {
        if (pkcs12::uses_pbes2(writer_.profile())) {
            if (!offers(CKM_AES_CBC_PAD, CKF_WRAP))
                notes.push_back("token-wrap not possible: the token does not offer CKM_AES_CBC_PAD for wrapping");
            else if (attempt(ExtractionPath::token_wrap,
                             [&] { token_wrap(key, CKM_AES_CBC_PAD, CKK_AES, attributes, notes); }))
                return ExtractionPath::token_wrap;
        } else {
            if (!offers(CKM_DES3_CBC_PAD, CKF_WRAP))
                notes.push_back("token-wrap-legacy not possible: the token does not offer CKM_DES3_CBC_PAD for wrapping");
            else if (attempt(ExtractionPath::token_wrap_legacy,
                             [&] { token_wrap(key, CKM_DES3_CBC_PAD, CKK_DES3, attributes, notes); }))
                return ExtractionPath::token_wrap_legacy;
        }
        if (token_wrap_only_) {
            notes.push_back("--token-wrap-only: the token cannot wrap this key into the file format itself, and "
                            "every other path decrypts it on the host");
            return std::nullopt;
        }
        if (!offers(CKM_AES_KEY_WRAP_PAD, CKF_WRAP) && !offers(CKM_AES_CBC_PAD, CKF_WRAP))
            notes.push_back("host-reencrypt not possible: the token offers neither CKM_AES_CBC_PAD nor "
                            "CKM_AES_KEY_WRAP_PAD for wrapping");
        else if (attempt(ExtractionPath::host_reencrypt, [&] { host_reencrypt(key, attributes); }))
            return ExtractionPath::host_reencrypt;
    }
    if (!sensitive) {
        if (token_wrap_only_) {
            notes.push_back("--token-wrap-only: the key is not sensitive, but reading its components puts it on the host");
            return std::nullopt;
        }
        if (attempt(ExtractionPath::attribute_read, [&] { attribute_read(key, public_key, attributes); }))
            return ExtractionPath::attribute_read;
    }
    notes.push_back(why_not_exported("the key", extractable, trusted_only));
    return std::nullopt;
}

void KeyExporter::token_wrap(const TokenObject& key, CK_MECHANISM_TYPE mechanism, CK_KEY_TYPE wrapping_key_type,
                             const pkcs12::EntryAttributes& attributes, std::vector<std::string>& notes) {
    pkcs12::BagEncryption encryption = writer_.next_bag_encryption();
    CK_OBJECT_HANDLE wrapping_key = CK_INVALID_HANDLE;
    try {
        // The modern profile's bags share one key: import it once, not once per key.
        if (!imported_wrapping_key_ || imported_key_type_ != wrapping_key_type ||
            !(imported_key_bytes_ == encryption.key)) {
            imported_wrapping_key_.reset();
            imported_wrapping_key_ = std::make_unique<pkcs11::ScopedObject>(
                session_, transport::import_session_key(session_, wrapping_key_type, encryption.key,
                                                        transport::KeyUse::wrap)
                              .release());
            imported_key_bytes_ = encryption.key.clone();
            imported_key_type_ = wrapping_key_type;
        }
        wrapping_key = imported_wrapping_key_->get();
    } catch (const pkcs11::Pkcs11Error& e) {
        // A token that refuses clear keys (softoken in FIPS mode) may still compute the
        // modern and fips profiles' PBKDF2 key itself; the legacy PKCS#12 KDF has no mechanism.
        if (!transport::means_clear_key_refused(e.rv()) || !pkcs12::uses_pbes2(writer_.profile()) ||
            !offers(CKM_PKCS5_PBKD2, CKF_GENERATE))
            throw;
        if (!derived_wrapping_key_) {
            derived_wrapping_key_ = std::make_unique<pkcs11::ScopedObject>(
                session_, transport::derive_session_key(session_, writer_.password(), writer_.shared_salt(),
                                                        writer_.iterations(), "SHA256", encryption.key.size(),
                                                        transport::KeyUse::wrap,
                                                        quirks_.pbkd2_password_length_by_pointer)
                              .release());
        }
        wrapping_key = derived_wrapping_key_->get();
        notes.push_back(fmt::format("the token refuses a clear AES key ({}); it derived the file key itself "
                                    "(CKM_PKCS5_PBKD2, {} iterations)",
                                    e.what(), writer_.iterations()));
    }
    pkcs11::Bytes wrapped = session_.wrap_key(pkcs11::Mechanism(mechanism, encryption.iv), wrapping_key, key.handle);
    // The bag is what the token produced; make sure it is PKCS#8 and not a vendor format
    // before it goes into a file someone will rely on years from now.
    if (!transport::first_block_is_private_key_info(encryption.cipher, encryption.key, encryption.iv, wrapped))
        throw Error(ErrorKind::failure,
                    fmt::format("C_WrapKey({}) did not produce a PKCS#8 PrivateKeyInfo; this token's wrap format is "
                                "not supported",
                                pkcs11::mechanism_name(mechanism)));
    writer_.add_encrypted_key(std::move(encryption), wrapped, attributes);
}

SecretBytes KeyExporter::wrap_out_to_host(CK_OBJECT_HANDLE key) {
    std::vector<std::uint8_t> random = ossl::random_bytes(32);
    SecretBytes ephemeral(random.data(), random.size());
    secure_wipe(random.data(), random.size());
    pkcs11::ScopedObject wrapping_key =
        transport::import_session_key(session_, CKK_AES, ephemeral, transport::KeyUse::wrap);
    // CBC_PAD first (its format is the same on every token; NSS's CKM_AES_KEY_WRAP_PAD is
    // not RFC 5649); SoftHSM offers CBC_PAD but refuses it for private keys, then RFC 5649.
    SecretBytes plain;
    std::optional<pkcs11::Pkcs11Error> refusal;
    for (CK_MECHANISM_TYPE mechanism : {CKM_AES_CBC_PAD, CKM_AES_KEY_WRAP_PAD}) {
        if (!offers(mechanism, CKF_WRAP)) continue;
        try {
            if (mechanism == CKM_AES_CBC_PAD) {
                std::vector<std::uint8_t> iv = ossl::random_bytes(16);
                pkcs11::Bytes wrapped = session_.wrap_key(pkcs11::Mechanism(mechanism, iv), wrapping_key.get(), key);
                auto decrypted = pkcs12::cbc_decrypt("AES-256-CBC", ephemeral, iv, wrapped.data(), wrapped.size());
                if (!decrypted) throw Error(ErrorKind::failure, "the token's CKM_AES_CBC_PAD wrap does not decrypt");
                plain = std::move(*decrypted);
            } else {
                pkcs11::Bytes wrapped = session_.wrap_key(pkcs11::Mechanism(mechanism), wrapping_key.get(), key);
                plain = transport::aes_unwrap_pad(ephemeral, wrapped);
            }
            break;
        } catch (const pkcs11::Pkcs11Error& e) {
            if (!transport::means_path_unavailable(e.rv()) || mechanism == CKM_AES_KEY_WRAP_PAD) throw;
            refusal = e;  // the token's own answer, reported if no other mechanism works
        }
    }
    if (plain.empty()) {
        if (refusal) throw *refusal;
        throw pkcs11::Pkcs11Error("C_WrapKey", CKR_MECHANISM_INVALID,
                                  "the token offers neither CKM_AES_CBC_PAD nor CKM_AES_KEY_WRAP_PAD for wrapping");
    }
    return plain;
}

void KeyExporter::host_reencrypt(const TokenObject& key, const pkcs12::EntryAttributes& attributes) {
    SecretBytes plain = wrap_out_to_host(key.handle);
    // SoftHSM pads EC keys with bytes after the DER element: trust the DER length.
    std::size_t length = keys::der_element_length(plain.data(), plain.size());
    if (length == 0)
        throw Error(ErrorKind::failure, "the token's wrapped key is not a DER PrivateKeyInfo");
    plain.resize(length);
    writer_.add_clear_key(plain, attributes);
}

void KeyExporter::attribute_read(const TokenObject& key, const EVP_PKEY* public_key,
                                 const pkcs12::EntryAttributes& attributes) {
    if (!key.key_type) throw Error(ErrorKind::refused, "key type unknown");
    std::map<CK_ATTRIBUTE_TYPE, SecretBytes> secrets;
    for (CK_ATTRIBUTE_TYPE type : keys::private_component_types(*key.key_type)) {
        auto value = session_.get_secret(key.handle, type);
        if (!value) {
            throw pkcs11::Pkcs11Error("C_GetAttributeValue", CKR_ATTRIBUTE_SENSITIVE,
                                      pkcs11::attribute_name(type) + " is not readable");
        }
        secrets.emplace(type, std::move(*value));
    }
    const auto& types = keys::public_attribute_types();
    pkcs11::AttributeValues public_values = session_.get_attributes(key.handle, types);
    ossl::Pkey private_key = keys::private_key_from_components(*key.key_type, public_values, secrets, public_key);
    writer_.add_clear_key(keys::private_key_info_der(private_key.get()), attributes);
}

std::optional<ExtractionPath> KeyExporter::export_secret_key(const TokenObject& key,
                                                             const pkcs12::EntryAttributes& attributes,
                                                             std::vector<std::string>& notes) {
    const CK_KEY_TYPE key_type = key.key_type.value_or(CKK_VENDOR_DEFINED);
    const std::size_t length = key.description ? key.description->bits / 8 : 0;
    auto type = secret_keys::token_type(key_type, length);
    if (!type) {
        notes.push_back(fmt::format("a {} secret key has no form Java or p11vault reads back (AES, DES3 and HMAC keys "
                                    "do)",
                                    pkcs11::key_type_name(key_type)));
        return std::nullopt;
    }
    const bool extractable = key.extractable.value_or(false);
    const bool sensitive = key.sensitive.value_or(true);
    if (token_wrap_only_) {
        // The bag holds a PrivateKeyInfo around the key: no token wraps a secret key so.
        notes.push_back("--token-wrap-only: a secret key's bag is a PrivateKeyInfo around the key, which no token "
                        "wraps into; every path decrypts it on the host");
        return std::nullopt;
    }
    auto attempt = [&](ExtractionPath path, auto&& run) { return try_path(path, run, notes); };
    auto add = [&](SecretBytes value) {
        // RFC 5649 and CBC_PAD give the key's exact bytes; a token may say otherwise.
        if (length != 0 && value.size() != length)
            throw Error(ErrorKind::failure, fmt::format("the token returned {} bytes of a {}-byte secret key",
                                                       value.size(), length));
        writer_.add_secret_key(secret_keys::private_key_info_der(key_type, value), attributes);
    };
    const bool trusted_only = key.wrap_with_trusted.value_or(false);
    if (extractable && !trusted_only) {
        if (!offers(CKM_AES_KEY_WRAP_PAD, CKF_WRAP) && !offers(CKM_AES_CBC_PAD, CKF_WRAP))
            notes.push_back("host-reencrypt not possible: the token offers neither CKM_AES_CBC_PAD nor "
                            "CKM_AES_KEY_WRAP_PAD for wrapping");
        else if (attempt(ExtractionPath::host_reencrypt, [&] { add(wrap_out_to_host(key.handle)); }))
            return ExtractionPath::host_reencrypt;
    }
    if (!sensitive && attempt(ExtractionPath::attribute_read, [&] {
            auto value = session_.get_secret(key.handle, CKA_VALUE);
            if (!value) throw pkcs11::Pkcs11Error("C_GetAttributeValue", CKR_ATTRIBUTE_SENSITIVE, "CKA_VALUE");
            add(std::move(*value));
        }))
        return ExtractionPath::attribute_read;
    notes.push_back(why_not_exported("the secret key", extractable, trusted_only));
    return std::nullopt;
}

}  // namespace p11vault
