// SPDX-License-Identifier: Apache-2.0
#include "src/key_proof.hpp"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>

#include "p11vault/error.hpp"
#include "src/keys.hpp"
#include "src/ossl.hpp"

namespace p11vault {

namespace {

const std::uint8_t kMessage[] = "p11vault: this token key is the file's key";

// PKCS#11 signs ECDSA and DSA as r||s; OpenSSL verifies the DER SEQUENCE {r, s}.
std::vector<std::uint8_t> der_signature(const std::vector<std::uint8_t>& raw) {
    using EcdsaSig = ossl::Owned<ECDSA_SIG, ECDSA_SIG_free>;
    const std::size_t half = raw.size() / 2;
    EcdsaSig sig(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(raw.data(), static_cast<int>(half), nullptr);
    BIGNUM* s = BN_bin2bn(raw.data() + half, static_cast<int>(half), nullptr);
    if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ossl::fail(ErrorKind::failure, "decoding a signature");
    }
    return ossl::der(i2d_ECDSA_SIG, sig.get(), ErrorKind::failure, "a signature");
}

bool host_verifies(const EVP_PKEY* expected, CK_KEY_TYPE key_type, const std::vector<std::uint8_t>& signature) {
    EVP_PKEY* key = const_cast<EVP_PKEY*>(expected);
    if (key_type == CKK_EC || key_type == CKK_DSA) {
        if (signature.empty() || signature.size() % 2 != 0) return false;
        ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(ossl::libctx(), key, nullptr));
        const auto digest = ossl::sha256(kMessage, sizeof kMessage);
        const auto der = der_signature(signature);
        const bool verified = ctx && EVP_PKEY_verify_init(ctx.get()) == 1 &&
                              EVP_PKEY_verify(ctx.get(), der.data(), der.size(), digest.data(), digest.size()) == 1;
        if (!verified) ossl::last_error();  // clears the queue
        return verified;
    }
    ossl::MdCtx ctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pkey_ctx = nullptr;
    const char* digest = key_type == CKK_RSA ? "SHA256" : nullptr;  // EdDSA signs the message itself
    bool verified = ctx && EVP_DigestVerifyInit_ex(ctx.get(), &pkey_ctx, digest, ossl::libctx(), nullptr, key, nullptr) == 1;
    if (verified && EVP_PKEY_is_a(expected, "RSA-PSS"))
        verified = EVP_PKEY_CTX_set_rsa_padding(pkey_ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
                   EVP_PKEY_CTX_set_rsa_pss_saltlen(pkey_ctx, 32) == 1;
    verified = verified && EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), kMessage, sizeof kMessage) == 1;
    if (!verified) ossl::last_error();
    return verified;
}

}  // namespace

std::optional<bool> shows_public_key(pkcs11::Session& session, CK_OBJECT_HANDLE handle, const EVP_PKEY* expected) {
    const pkcs11::AttributeValues values = session.get_attributes(handle, keys::public_attribute_types());
    if (const auto* modulus = values.bytes(CKA_MODULUS); modulus != nullptr && !modulus->empty())
        return keys::has_rsa_modulus(expected, *modulus);
    ossl::Pkey shown = keys::public_key_from_attributes(values);
    if (!shown) return std::nullopt;
    return keys::same_public_key(shown.get(), expected);
}

CK_MECHANISM_TYPE proof_signature_mechanism(CK_KEY_TYPE key_type, const EVP_PKEY* expected) {
    switch (key_type) {
        case CKK_RSA: return EVP_PKEY_is_a(expected, "RSA-PSS") ? CKM_SHA256_RSA_PKCS_PSS : CKM_SHA256_RSA_PKCS;
        case CKK_EC: return CKM_ECDSA;  // over the SHA-256 digest: SoftHSM has no CKM_ECDSA_SHA256
        case CKK_DSA: return CKM_DSA;
        default: return CKM_EDDSA;
    }
}

bool proves_by_signature(pkcs11::Session& session, CK_OBJECT_HANDLE handle, CK_KEY_TYPE key_type,
                         const EVP_PKEY* expected) {
    const CK_MECHANISM_TYPE mechanism = proof_signature_mechanism(key_type, expected);
    std::vector<std::uint8_t> signature;
    if (mechanism == CKM_SHA256_RSA_PKCS_PSS) {
        CK_RSA_PKCS_PSS_PARAMS params{CKM_SHA256, CKG_MGF1_SHA256, 32};
        signature = session.sign(pkcs11::Mechanism::with_struct(mechanism, params), handle, kMessage);
    } else if (mechanism == CKM_ECDSA || mechanism == CKM_DSA) {
        signature = session.sign(pkcs11::Mechanism(mechanism), handle, ossl::sha256(kMessage, sizeof kMessage));
    } else {
        signature = session.sign(pkcs11::Mechanism(mechanism), handle, kMessage);
    }
    return host_verifies(expected, key_type, signature);
}

}  // namespace p11vault
