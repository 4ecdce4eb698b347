// SPDX-License-Identifier: Apache-2.0
#include "tests/support/test_keys.hpp"

#include <stdexcept>

namespace p11vault::testing {
namespace {

struct CurveOid {
    const char* name;
    pkcs11::Bytes der;
};

// DER as `openssl ecparam -name GROUP -outform DER` prints it.
const CurveOid curve_oids[] = {
    {"P-256", {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}},
    {"P-384", {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}},
    {"P-521", {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23}},
    {"secp256k1", {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a}},
    {"brainpoolP256r1", {0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07}},
    {"brainpoolP384r1", {0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0b}},
    {"brainpoolP512r1", {0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0d}},
    {"Ed25519", {0x06, 0x03, 0x2b, 0x65, 0x70}},
    {"Ed448", {0x06, 0x03, 0x2b, 0x65, 0x71}},
};

// The attributes both keys of a pair share, and the private key's protection flags.
void add_common(pkcs11::AttributeTemplate& public_template, pkcs11::AttributeTemplate& private_template,
                const pkcs11::Bytes& id, const std::string& label, KeyFlags flags) {
    public_template.add_bool(CKA_TOKEN, true)
        .add_bool(CKA_PRIVATE, false)
        .add_bytes(CKA_ID, id)
        .add_string(CKA_LABEL, label)
        .add_bool(CKA_VERIFY, true);
    private_template.add_bool(CKA_TOKEN, true)
        .add_bool(CKA_PRIVATE, true)
        .add_bool(CKA_SENSITIVE, flags.sensitive)
        .add_bool(CKA_EXTRACTABLE, flags.extractable)
        .add_bytes(CKA_ID, id)
        .add_string(CKA_LABEL, label)
        .add_bool(CKA_SIGN, true);
}

TestKey make_key(std::pair<CK_OBJECT_HANDLE, CK_OBJECT_HANDLE> handles, CK_KEY_TYPE type, pkcs11::Bytes id,
                 std::string label) {
    TestKey key;
    key.public_key = handles.first;
    key.private_key = handles.second;
    key.key_type = type;
    key.id = std::move(id);
    key.label = std::move(label);
    return key;
}

}  // namespace

pkcs11::Bytes ec_params_for(const std::string& curve) {
    for (const CurveOid& known : curve_oids) {
        if (curve == known.name) return known.der;
    }
    throw std::invalid_argument("unknown curve " + curve);
}

std::string curve_for(const pkcs11::Bytes& ec_params) {
    for (const CurveOid& known : curve_oids) {
        if (ec_params == known.der) return known.name;
    }
    return {};
}

TestKey generate_rsa(pkcs11::Session& session, unsigned bits, pkcs11::Bytes id, std::string label, KeyFlags flags) {
    pkcs11::AttributeTemplate public_template;
    pkcs11::AttributeTemplate private_template;
    add_common(public_template, private_template, id, label, flags);
    static const std::uint8_t f4[] = {0x01, 0x00, 0x01};
    public_template.add_ulong(CKA_MODULUS_BITS, bits).add_bytes(CKA_PUBLIC_EXPONENT, f4).add_bool(CKA_ENCRYPT, true);
    private_template.add_bool(CKA_DECRYPT, true);
    auto handles = session.generate_key_pair(pkcs11::Mechanism(CKM_RSA_PKCS_KEY_PAIR_GEN), public_template,
                                             private_template);
    return make_key(handles, CKK_RSA, std::move(id), std::move(label));
}

TestKey generate_ec(pkcs11::Session& session, const std::string& curve, pkcs11::Bytes id, std::string label,
                    KeyFlags flags) {
    pkcs11::AttributeTemplate public_template;
    pkcs11::AttributeTemplate private_template;
    add_common(public_template, private_template, id, label, flags);
    public_template.add_bytes(CKA_EC_PARAMS, ec_params_for(curve));
    private_template.add_bool(CKA_DERIVE, true);
    auto handles =
        session.generate_key_pair(pkcs11::Mechanism(CKM_EC_KEY_PAIR_GEN), public_template, private_template);
    return make_key(handles, CKK_EC, std::move(id), std::move(label));
}

std::optional<TestKey> generate_ed25519(pkcs11::Session& session, pkcs11::Bytes id, std::string label,
                                        KeyFlags flags) {
    if (!session.module().mechanism_info(session.slot(), CKM_EC_EDWARDS_KEY_PAIR_GEN)) return std::nullopt;
    pkcs11::AttributeTemplate public_template;
    pkcs11::AttributeTemplate private_template;
    add_common(public_template, private_template, id, label, flags);
    public_template.add_bytes(CKA_EC_PARAMS, ec_params_for("Ed25519"));
    auto handles = session.generate_key_pair(pkcs11::Mechanism(CKM_EC_EDWARDS_KEY_PAIR_GEN), public_template,
                                             private_template);
    return make_key(handles, CKK_EC_EDWARDS, std::move(id), std::move(label));
}

CK_OBJECT_HANDLE generate_aes_session_key(pkcs11::Session& session, unsigned bytes, bool sensitive,
                                          bool extractable) {
    pkcs11::AttributeTemplate attributes;
    attributes.add_class(CKO_SECRET_KEY)
        .add_key_type(CKK_AES)
        .add_ulong(CKA_VALUE_LEN, bytes)
        .add_bool(CKA_TOKEN, false)
        .add_bool(CKA_PRIVATE, true)
        .add_bool(CKA_SENSITIVE, sensitive)
        .add_bool(CKA_EXTRACTABLE, extractable)
        .add_bool(CKA_WRAP, true)
        .add_bool(CKA_UNWRAP, true)
        .add_bool(CKA_ENCRYPT, true)
        .add_bool(CKA_DECRYPT, true);
    return session.generate_key(pkcs11::Mechanism(CKM_AES_KEY_GEN), attributes);
}

}  // namespace p11vault::testing
