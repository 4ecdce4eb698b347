// SPDX-License-Identifier: Apache-2.0
#include "src/secret_keys.hpp"

#include <openssl/asn1.h>
#include <openssl/objects.h>

#include <fmt/format.h>

#include <cstring>

#include "p11vault/error.hpp"
#include "src/ossl.hpp"

namespace p11vault::secret_keys {

namespace {

constexpr const char* kAes = "2.16.840.1.101.3.4.1";
// Java's AlgorithmId.get("DESede") is the OIW desEDE OID; des-ede3-cbc is accepted too.
constexpr const char* kDesEde = "1.3.14.3.2.17";
constexpr const char* kDesEde3Cbc = "1.2.840.113549.3.7";

struct Hmac {
    const char* oid;
    const char* java_name;
    CK_KEY_TYPE pkcs11_type;
};
constexpr Hmac kHmacs[] = {
    {"1.2.840.113549.2.7", "HmacSHA1", CKK_SHA_1_HMAC},    {"1.2.840.113549.2.8", "HmacSHA224", CKK_SHA224_HMAC},
    {"1.2.840.113549.2.9", "HmacSHA256", CKK_SHA256_HMAC}, {"1.2.840.113549.2.10", "HmacSHA384", CKK_SHA384_HMAC},
    {"1.2.840.113549.2.11", "HmacSHA512", CKK_SHA512_HMAC},
};

std::string generic_name(std::size_t length, const char* java_name) {
    return fmt::format("GENERIC-SECRET-{} ({})", length * 8, java_name);
}

const char* oid_of(CK_KEY_TYPE key_type) {
    if (key_type == CKK_AES) return kAes;
    if (key_type == CKK_DES3) return kDesEde;
    for (const Hmac& hmac : kHmacs)
        if (hmac.pkcs11_type == key_type) return hmac.oid;
    return kHmacs[2].oid;  // a generic secret: HmacSHA256, what keytool -genseckey makes by default for HMAC
}

bool offers(const std::vector<pkcs11::MechanismEntry>& mechanisms, std::initializer_list<CK_MECHANISM_TYPE> any_of) {
    for (const auto& entry : mechanisms)
        for (CK_MECHANISM_TYPE type : any_of)
            if (entry.type == type) return true;
    return false;
}

}  // namespace

DecodedSecret decode(const PKCS8_PRIV_KEY_INFO* info) {
    DecodedSecret out;
    const ASN1_OBJECT* object = nullptr;
    const unsigned char* data = nullptr;
    int length = 0;
    if (PKCS8_pkey_get0(&object, &data, &length, nullptr, info) != 1 || object == nullptr || length < 0) {
        out.unsupported = "the secret is not a PrivateKeyInfo with an algorithm";
        return out;
    }
    char oid[128];
    OBJ_obj2txt(oid, sizeof oid, object, 1);
    out.algorithm_oid = oid;
    // privateKey is the OCTET STRING's content: the key bytes themselves.
    out.value = SecretBytes(data, static_cast<std::size_t>(length));
    const std::size_t size = out.value.size();
    if (out.algorithm_oid == kAes) {
        out.type = SecretKeyType{CKK_AES, fmt::format("AES-{}", size * 8)};
        if (size != 16 && size != 24 && size != 32)
            out.unsupported = fmt::format("an AES key of {} bytes (AES keys are 16, 24 or 32)", size);
    } else if (out.algorithm_oid == kDesEde || out.algorithm_oid == kDesEde3Cbc) {
        out.type = SecretKeyType{CKK_DES3, "DES3"};
        if (size != 24) out.unsupported = fmt::format("a DESede key of {} bytes (DES3 keys are 24)", size);
    } else {
        for (const Hmac& hmac : kHmacs)
            if (out.algorithm_oid == hmac.oid) out.type = SecretKeyType{CKK_GENERIC_SECRET, generic_name(size, hmac.java_name)};
        if (!out.type)
            out.unsupported = fmt::format("secret key algorithm {} is not one p11vault can put on a token (AES, "
                                          "HmacSHA1/224/256/384/512, DESede)",
                                          out.algorithm_oid);
        else if (size == 0)
            out.unsupported = "an empty HMAC key";
    }
    return out;
}

std::optional<SecretKeyType> token_type(CK_KEY_TYPE key_type, std::size_t value_length) {
    if (key_type == CKK_AES) return SecretKeyType{CKK_AES, fmt::format("AES-{}", value_length * 8)};
    if (key_type == CKK_DES3) return SecretKeyType{CKK_DES3, "DES3"};
    if (key_type == CKK_GENERIC_SECRET) return SecretKeyType{key_type, generic_name(value_length, "HmacSHA256")};
    for (const Hmac& hmac : kHmacs)
        if (hmac.pkcs11_type == key_type) return SecretKeyType{key_type, generic_name(value_length, hmac.java_name)};
    return std::nullopt;
}

SecretBytes private_key_info_der(CK_KEY_TYPE key_type, const SecretBytes& value) {
    ossl::P8Info info(PKCS8_PRIV_KEY_INFO_new());
    ossl::Object object(OBJ_txt2obj(oid_of(key_type), 1));
    if (!info || !object) ossl::fail(static_cast<int>(ErrorKind::failure), "building a PrivateKeyInfo");
    // PKCS8_pkey_set0 takes the bytes it is given; PKCS8_PRIV_KEY_INFO_free clears them.
    auto* copy = static_cast<unsigned char*>(OPENSSL_malloc(value.size() ? value.size() : 1));
    if (copy == nullptr) ossl::fail(static_cast<int>(ErrorKind::failure), "allocating a key");
    if (!value.empty()) std::memcpy(copy, value.data(), value.size());
    if (PKCS8_pkey_set0(info.get(), object.get(), 0, V_ASN1_NULL, nullptr, copy, static_cast<int>(value.size())) != 1) {
        OPENSSL_clear_free(copy, value.size());
        ossl::fail(static_cast<int>(ErrorKind::failure), "building a PrivateKeyInfo");
    }
    object.release();  // info owns it now
    unsigned char* der = nullptr;
    const int length = i2d_PKCS8_PRIV_KEY_INFO(info.get(), &der);
    if (length <= 0) ossl::fail(static_cast<int>(ErrorKind::failure), "encoding a PrivateKeyInfo");
    SecretBytes out(der, static_cast<std::size_t>(length));
    OPENSSL_clear_free(der, static_cast<std::size_t>(length));
    return out;
}

std::optional<std::string> unsupported_on_token(const SecretKeyType& type,
                                                const std::vector<pkcs11::MechanismEntry>& mechanisms) {
    bool ok = false;
    switch (type.key_type) {
        case CKK_AES: ok = offers(mechanisms, {CKM_AES_CBC, CKM_AES_ECB, CKM_AES_GCM, CKM_AES_KEY_GEN}); break;
        case CKK_DES3: ok = offers(mechanisms, {CKM_DES3_CBC, CKM_DES3_ECB, CKM_DES3_KEY_GEN}); break;
        default:
            ok = offers(mechanisms, {CKM_SHA_1_HMAC, CKM_SHA224_HMAC, CKM_SHA256_HMAC, CKM_SHA384_HMAC, CKM_SHA512_HMAC,
                                     CKM_GENERIC_SECRET_KEY_GEN});
    }
    if (ok) return std::nullopt;
    return fmt::format("the token offers no mechanism for {} keys", type.name);
}

void add_usage(CK_KEY_TYPE key_type, pkcs11::AttributeTemplate& out) {
    if (key_type == CKK_AES || key_type == CKK_DES3) out.add_bool(CKA_ENCRYPT, true).add_bool(CKA_DECRYPT, true);
    else out.add_bool(CKA_SIGN, true).add_bool(CKA_VERIFY, true);
}

}  // namespace p11vault::secret_keys
