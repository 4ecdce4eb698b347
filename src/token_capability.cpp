// SPDX-License-Identifier: Apache-2.0
#include "src/token_capability.hpp"

#include <fmt/format.h>

#include "pkcs11/error.hpp"
#include "src/ec_curves.hpp"

namespace p11vault {

bool means_key_refused(CK_RV rv) {
    return rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_TEMPLATE_INCONSISTENT ||
           rv == CKR_TEMPLATE_INCOMPLETE || rv == CKR_ATTRIBUTE_READ_ONLY || rv == CKR_FUNCTION_NOT_SUPPORTED ||
           rv == CKR_KEY_SIZE_RANGE || rv == CKR_DOMAIN_PARAMS_INVALID || rv == CKR_CURVE_NOT_SUPPORTED;
}

TokenCapability::TokenCapability(pkcs11::Session& session) : session_(session) {}

std::optional<std::string> TokenCapability::refusal(const keys::KeyDescription& type, const EVP_PKEY* public_key) {
    const auto no_mechanism = [&] { return fmt::format("the token offers no mechanism for {} keys", type.name()); };
    switch (type.key_type) {
        case CKK_RSA:
            if (!session_.mechanisms().offers_any({CKM_RSA_PKCS, CKM_RSA_PKCS_KEY_PAIR_GEN})) return no_mechanism();
            return std::nullopt;
        case CKK_EC:
            if (!session_.mechanisms().offers_any({CKM_ECDSA, CKM_EC_KEY_PAIR_GEN})) return no_mechanism();
            return curve_refusal(type, public_key);
        case CKK_EC_EDWARDS:
            if (!session_.mechanisms().offers_any({CKM_EDDSA, CKM_EC_EDWARDS_KEY_PAIR_GEN})) return no_mechanism();
            return curve_refusal(type, public_key);
        case CKK_DSA: {
            const pkcs11::MechanismEntry* dsa = session_.mechanisms().find(CKM_DSA);
            if (dsa == nullptr) return fmt::format("the token offers no CKM_DSA for {} keys", type.name());
            // ulMaxKeySize is the prime's size in bits for CKM_DSA; 0 means not stated.
            const auto& info = dsa->info;
            if (info.ulMaxKeySize != 0 && (type.bits < info.ulMinKeySize || type.bits > info.ulMaxKeySize))
                return fmt::format("the token's CKM_DSA takes keys of {} to {} bits, not {}", info.ulMinKeySize,
                                   info.ulMaxKeySize, type.bits);
            return std::nullopt;
        }
        default: return no_mechanism();
    }
}

// EC and EdDSA. A public key object is what a restore writes beside every key, so a session-only one on
// the curve is a faithful question that leaves nothing behind (generating a key pair could
// overwrite a key slot on a smart card). Asked once per curve.
std::optional<std::string> TokenCapability::curve_refusal(const keys::KeyDescription& type, const EVP_PKEY* public_key) {
    if (public_key == nullptr) return std::nullopt;
    // Explicit parameters differ from each other and from the curve's OID: by their DER.
    const std::string curve = type.key_type == CKK_EC ? ossl::hex(keys::ec_params_der(public_key)) : type.curve;
    if (auto known = curves_.find(curve); known != curves_.end()) return known->second;
    std::optional<std::string> answer;
    pkcs11::AttributeTemplate t;
    t.add_class(CKO_PUBLIC_KEY).add_bool(CKA_TOKEN, false).add_bool(CKA_PRIVATE, false);
    keys::add_public_attributes(public_key, t);
    try {
        pkcs11::ScopedObject trial(session_, session_.create_object(t));
    } catch (const pkcs11::Pkcs11Error& e) {
        // The answers that are about the curve; a token that makes no session objects in a
        // read-only session (tpm2-pkcs11) or not at all says nothing about it.
        const CK_RV rv = e.rv();
        if (rv == CKR_SESSION_READ_ONLY || rv == CKR_FUNCTION_NOT_SUPPORTED || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
            rv == CKR_TEMPLATE_INCOMPLETE || rv == CKR_ATTRIBUTE_READ_ONLY) {
            curves_.emplace(curve, std::nullopt);
            return std::nullopt;
        }
        if (!means_key_refused(rv)) throw;
        answer = fmt::format("the token does not take keys on curve {} (C_CreateObject of a session-only public key "
                             "object on it: {})",
                             type.curve, pkcs11::rv_name(e.rv()));
    }
    curves_.emplace(curve, answer);
    return answer;
}

}  // namespace p11vault
