// SPDX-License-Identifier: Apache-2.0
#include "src/transport.hpp"

#include <openssl/evp.h>

#include "p11vault/error.hpp"
#include "src/ossl.hpp"

namespace p11vault::transport {

namespace {
constexpr int kFailure = static_cast<int>(ErrorKind::failure);

std::string wrap_cipher_for(std::size_t key_size) {
    switch (key_size) {
        case 16: return "AES-128-WRAP-PAD";
        case 24: return "AES-192-WRAP-PAD";
        case 32: return "AES-256-WRAP-PAD";
        default: throw Error(ErrorKind::failure, "internal: bad AES key size for key wrap");
    }
}
}  // namespace

namespace {

// A session secret key that can do exactly one thing: wrap, or unwrap.
pkcs11::AttributeTemplate session_key_template(CK_KEY_TYPE key_type, KeyUse use) {
    pkcs11::AttributeTemplate t;
    t.add_class(CKO_SECRET_KEY)
        .add_key_type(key_type)
        .add_bool(CKA_TOKEN, false)
        .add_bool(CKA_PRIVATE, true)
        .add_bool(CKA_SENSITIVE, true)
        .add_bool(CKA_EXTRACTABLE, false)
        .add_bool(CKA_WRAP, use == KeyUse::wrap)
        .add_bool(CKA_UNWRAP, use == KeyUse::unwrap)
        .add_bool(CKA_ENCRYPT, false)
        .add_bool(CKA_DECRYPT, false);
    return t;
}

// CK_PKCS5_PBKD2_PARAMS2 of PKCS#11 2.40 (section 2.35.7) has the password length by
// value; v2.20's CK_PKCS5_PBKD2_PARAMS had a pointer there, and some tokens still read
// that layout (TokenQuirks::pbkd2_password_length_by_pointer). p11-kit defines neither.
template <typename PasswordLength>
struct Pbkd2Params {
    CK_ULONG salt_source;
    CK_VOID_PTR salt_source_data;
    CK_ULONG salt_source_data_length;
    CK_ULONG iterations;
    CK_ULONG prf;
    CK_VOID_PTR prf_data;
    CK_ULONG prf_data_length;
    CK_UTF8CHAR_PTR password;
    PasswordLength password_length;
};
constexpr CK_ULONG kSaltSpecified = 0x1;  // CKZ_SALT_SPECIFIED

// 0 for a PRF PKCS#11 has no CKP_ value for (SHA-512/224, SHA-512/256, SHA-3).
CK_ULONG pbkd2_prf_or_0(const std::string& digest) {
    if (digest == "SHA1") return 0x1;    // CKP_PKCS5_PBKD2_HMAC_SHA1
    if (digest == "SHA224") return 0x3;  // CKP_PKCS5_PBKD2_HMAC_SHA224
    if (digest == "SHA256") return 0x4;  // CKP_PKCS5_PBKD2_HMAC_SHA256
    if (digest == "SHA384") return 0x5;  // CKP_PKCS5_PBKD2_HMAC_SHA384
    if (digest == "SHA512") return 0x6;  // CKP_PKCS5_PBKD2_HMAC_SHA512
    return 0;
}

CK_ULONG pbkd2_prf(const std::string& digest) {
    const CK_ULONG prf = pbkd2_prf_or_0(digest);
    if (prf == 0) throw Error(ErrorKind::failure, "internal: no CKP_PKCS5_PBKD2 PRF for " + digest);
    return prf;
}

}  // namespace

bool token_can_derive_with(const std::string& prf_digest) { return pbkd2_prf_or_0(prf_digest) != 0; }

pkcs11::ScopedObject import_session_key(pkcs11::Session& session, CK_KEY_TYPE key_type, const SecretBytes& value,
                                        KeyUse use) {
    pkcs11::AttributeTemplate t = session_key_template(key_type, use);
    t.add_secret(CKA_VALUE, value);
    return pkcs11::ScopedObject(session, session.create_object(t));
}

pkcs11::ScopedObject derive_session_key(pkcs11::Session& session, const SecretBytes& password,
                                        const std::vector<std::uint8_t>& salt, std::uint64_t iterations,
                                        const std::string& prf_digest, std::size_t key_length, KeyUse use,
                                        bool password_length_by_pointer) {
    pkcs11::AttributeTemplate t = session_key_template(CKK_AES, use);
    t.add_ulong(CKA_VALUE_LEN, key_length);
    // The mechanism parameter holds pointers to the salt and the password, not copies:
    // both outlive the call, and the password is never copied out of its SecretBytes.
    CK_ULONG password_length = password.size();
    auto fill = [&](auto& params) {
        params.salt_source = kSaltSpecified;
        params.salt_source_data = const_cast<std::uint8_t*>(salt.data());
        params.salt_source_data_length = salt.size();
        params.iterations = static_cast<CK_ULONG>(iterations);
        params.prf = pbkd2_prf(prf_digest);
        params.prf_data = nullptr;
        params.prf_data_length = 0;
        params.password = const_cast<CK_UTF8CHAR*>(password.data());
    };
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    if (password_length_by_pointer) {
        Pbkd2Params<CK_ULONG*> params{};
        fill(params);
        params.password_length = &password_length;
        key = session.generate_key(pkcs11::Mechanism::with_struct(CKM_PKCS5_PBKD2, params), t);
    } else {
        Pbkd2Params<CK_ULONG> params{};
        fill(params);
        params.password_length = password_length;
        key = session.generate_key(pkcs11::Mechanism::with_struct(CKM_PKCS5_PBKD2, params), t);
    }
    return pkcs11::ScopedObject(session, key);
}

bool means_clear_key_refused(CK_RV rv) {
    return rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_TEMPLATE_INCONSISTENT || rv == CKR_ATTRIBUTE_READ_ONLY ||
           rv == CKR_FUNCTION_NOT_SUPPORTED;
}

Bytes aes_wrap_pad(const SecretBytes& key, const SecretBytes& plain) {
    ossl::Cipher cipher(EVP_CIPHER_fetch(ossl::libctx_modern(), wrap_cipher_for(key.size()).c_str(), nullptr));
    ossl::CipherCtx ctx(EVP_CIPHER_CTX_new());
    Bytes out(plain.size() + 16);
    int n1 = 0, n2 = 0;
    if (!cipher || !ctx || EVP_EncryptInit_ex2(ctx.get(), cipher.get(), key.data(), nullptr, nullptr) != 1 ||
        EVP_EncryptUpdate(ctx.get(), out.data(), &n1, plain.data(), static_cast<int>(plain.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx.get(), out.data() + n1, &n2) != 1)
        ossl::fail(kFailure, "AES key wrap");
    out.resize(static_cast<std::size_t>(n1 + n2));
    return out;
}

SecretBytes aes_unwrap_pad(const SecretBytes& key, const Bytes& wrapped) {
    ossl::Cipher cipher(EVP_CIPHER_fetch(ossl::libctx_modern(), wrap_cipher_for(key.size()).c_str(), nullptr));
    ossl::CipherCtx ctx(EVP_CIPHER_CTX_new());
    SecretBytes out(wrapped.size() + 16);
    int n1 = 0, n2 = 0;
    if (!cipher || !ctx || EVP_DecryptInit_ex2(ctx.get(), cipher.get(), key.data(), nullptr, nullptr) != 1 ||
        EVP_DecryptUpdate(ctx.get(), out.data(), &n1, wrapped.data(), static_cast<int>(wrapped.size())) != 1 ||
        EVP_DecryptFinal_ex(ctx.get(), out.data() + n1, &n2) != 1)
        ossl::fail(kFailure, "AES key unwrap of what the token wrapped (integrity check failed)");
    out.resize(static_cast<std::size_t>(n1 + n2));
    return out;
}

bool first_block_is_private_key_info(const std::string& cipher_cbc, const SecretBytes& key, const Bytes& iv,
                                     const Bytes& encrypted) {
    std::string ecb = cipher_cbc.substr(0, cipher_cbc.size() - 3) + "ECB";  // "AES-256-CBC" -> "AES-256-ECB"
    if (cipher_cbc == "DES-EDE3-CBC") ecb = "DES-EDE3-ECB";
    ossl::Cipher cipher(EVP_CIPHER_fetch(ossl::libctx_modern(), ecb.c_str(), nullptr));
    if (!cipher) ossl::fail(kFailure, "cipher " + ecb);
    std::size_t block = static_cast<std::size_t>(EVP_CIPHER_get_block_size(cipher.get()));
    if (encrypted.size() < block || iv.size() != block) return false;
    ossl::CipherCtx ctx(EVP_CIPHER_CTX_new());
    SecretBytes plain(block * 2);
    int n = 0;
    if (EVP_DecryptInit_ex2(ctx.get(), cipher.get(), key.data(), nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1 ||
        EVP_DecryptUpdate(ctx.get(), plain.data(), &n, encrypted.data(), static_cast<int>(block)) != 1)
        ossl::fail(kFailure, "checking the wrapped key");
    for (std::size_t i = 0; i < block; ++i) plain.data()[i] ^= iv[i];
    const std::uint8_t* b = plain.data();
    if (b[0] != 0x30) return false;
    std::size_t offset;
    if (b[1] < 0x80) offset = 2;
    else if (b[1] >= 0x81 && b[1] <= 0x83) offset = 2 + (b[1] & 0x7f);
    else return false;
    if (offset + 4 > block) return false;
    return b[offset] == 0x02 && b[offset + 1] == 0x01 && (b[offset + 2] == 0x00 || b[offset + 2] == 0x01) &&
           b[offset + 3] == 0x30;
}

bool means_path_unavailable(CK_RV rv) {
    switch (rv) {
        case CKR_MECHANISM_INVALID:
        case CKR_MECHANISM_PARAM_INVALID:
        case CKR_KEY_NOT_WRAPPABLE:
        case CKR_KEY_FUNCTION_NOT_PERMITTED:
        case CKR_KEY_TYPE_INCONSISTENT:
        case CKR_WRAPPING_KEY_TYPE_INCONSISTENT:
        case CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT:
        case CKR_FUNCTION_NOT_SUPPORTED:
        case CKR_TEMPLATE_INCONSISTENT:
        case CKR_ATTRIBUTE_VALUE_INVALID:
        case CKR_ATTRIBUTE_SENSITIVE:
            return true;
        default:
            return false;
    }
}

}  // namespace p11vault::transport
