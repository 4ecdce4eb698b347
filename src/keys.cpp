// SPDX-License-Identifier: Apache-2.0
#include "src/keys.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>

#include <fmt/format.h>

#include <algorithm>

#include "p11vault/error.hpp"

namespace p11vault::keys {

namespace {

constexpr int kBadInput = static_cast<int>(ExitCode::bad_input);

using BigNum = ossl::Owned<BIGNUM, BN_clear_free>;
using ParamBuild = ossl::Owned<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using Params = ossl::Owned<OSSL_PARAM, OSSL_PARAM_free>;

struct Curve {
    const char* group;    // OpenSSL group name
    const char* display;  // our name
    int nid;
    unsigned bits;
};
constexpr Curve kCurves[] = {
    {"prime256v1", "P-256", NID_X9_62_prime256v1, 256},
    {"secp384r1", "P-384", NID_secp384r1, 384},
    {"secp521r1", "P-521", NID_secp521r1, 521},
};

const Curve* curve_by_group(const std::string& group) {
    for (const auto& c : kCurves)
        if (group == c.group || group == c.display) return &c;
    return nullptr;
}
const Curve* curve_by_nid(int nid) {
    for (const auto& c : kCurves)
        if (nid == c.nid) return &c;
    return nullptr;
}

Bytes der_object(int nid) {
    ossl::Object object(OBJ_nid2obj(nid));
    unsigned char* der = nullptr;
    int length = i2d_ASN1_OBJECT(object.get(), &der);
    if (length <= 0) ossl::fail(kBadInput, "encoding a curve identifier");
    Bytes out(der, der + length);
    OPENSSL_free(der);
    return out;
}

Bytes der_octet_string(const Bytes& content) {
    ossl::OctetString octets(ASN1_OCTET_STRING_new());
    ASN1_OCTET_STRING_set(octets.get(), content.data(), static_cast<int>(content.size()));
    unsigned char* der = nullptr;
    int length = i2d_ASN1_OCTET_STRING(octets.get(), &der);
    if (length <= 0) ossl::fail(kBadInput, "encoding a public point");
    Bytes out(der, der + length);
    OPENSSL_free(der);
    return out;
}

// CKA_EC_POINT is a DER OCTET STRING per the spec; some tokens return the raw point.
Bytes unwrap_point(const Bytes& attribute, std::size_t raw_size_hint) {
    const unsigned char* p = attribute.data();
    ossl::OctetString octets(d2i_ASN1_OCTET_STRING(nullptr, &p, static_cast<long>(attribute.size())));
    if (octets && p == attribute.data() + attribute.size() &&
        (raw_size_hint == 0 || static_cast<std::size_t>(octets->length) == raw_size_hint ||
         attribute.size() != raw_size_hint))
        return Bytes(octets->data, octets->data + octets->length);
    return attribute;
}

// The curve of CKA_EC_PARAMS: a DER OID (or, for EdDSA on older tokens, a
// PrintableString curve name).
int curve_nid_from_params(const Bytes& params) {
    const unsigned char* p = params.data();
    ossl::Object object(d2i_ASN1_OBJECT(nullptr, &p, static_cast<long>(params.size())));
    if (object) return OBJ_obj2nid(object.get());
    p = params.data();
    ossl::Owned<ASN1_PRINTABLESTRING, ASN1_PRINTABLESTRING_free> name(
        d2i_ASN1_PRINTABLESTRING(nullptr, &p, static_cast<long>(params.size())));
    if (name) {
        std::string text(reinterpret_cast<const char*>(name->data), static_cast<std::size_t>(name->length));
        if (text == "edwards25519") return NID_ED25519;
        if (text == "edwards448") return NID_ED448;
    }
    return NID_undef;
}

BigNum get_bn(const EVP_PKEY* key, const char* name) {
    BIGNUM* bn = nullptr;
    if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) ossl::fail(kBadInput, std::string("reading key parameter ") + name);
    return BigNum(bn);
}

Bytes bn_bytes(const BIGNUM* bn) {
    Bytes out(static_cast<std::size_t>(BN_num_bytes(bn)));
    BN_bn2bin(bn, out.data());
    return out;
}

SecretBytes bn_secret(const BIGNUM* bn, std::size_t pad_to = 0) {
    std::size_t size = static_cast<std::size_t>(BN_num_bytes(bn));
    if (pad_to > size) size = pad_to;
    SecretBytes out(size);
    if (BN_bn2binpad(bn, out.data(), static_cast<int>(size)) < 0) ossl::fail(kBadInput, "encoding a key component");
    return out;
}

std::string group_name(const EVP_PKEY* key) {
    char name[64] = {};
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, nullptr) != 1)
        ossl::fail(kBadInput, "reading the curve of an EC key");
    return name;
}

ossl::Pkey from_params(const char* type, OSSL_PARAM_BLD* build, int selection) {
    Params params(OSSL_PARAM_BLD_to_param(build));
    ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(ossl::libctx(), type, nullptr));
    EVP_PKEY* key = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &key, selection, params.get()) != 1)
        ossl::fail(kBadInput, std::string("building a ") + type + " public key from token attributes");
    return ossl::Pkey(key);
}

}  // namespace

std::string KeyDescription::name() const {
    if (algorithm == "RSA" || algorithm == "RSA-PSS") return fmt::format("{}-{}", algorithm, bits);
    if (algorithm == "EC") {
        std::string c = curve;
        c.erase(std::remove(c.begin(), c.end(), '-'), c.end());
        return "EC-" + c;
    }
    return algorithm;
}

KeyDescription describe(const EVP_PKEY* key) {
    KeyDescription d;
    if (EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_is_a(key, "RSA-PSS")) {
        // An RSA-PSS key is an RSA key restricted to PSS: CKK_RSA on a token.
        d.key_type = CKK_RSA;
        d.algorithm = EVP_PKEY_is_a(key, "RSA-PSS") ? "RSA-PSS" : "RSA";
        d.bits = static_cast<unsigned>(EVP_PKEY_get_bits(key));
    } else if (EVP_PKEY_is_a(key, "EC")) {
        const Curve* curve = curve_by_group(group_name(key));
        if (curve == nullptr)
            throw Error(ExitCode::bad_input, "EC key on curve " + group_name(key) + " (supported: P-256, P-384, P-521)");
        d.key_type = CKK_EC;
        d.algorithm = "EC";
        d.curve = curve->display;
        d.bits = curve->bits;
    } else if (EVP_PKEY_is_a(key, "ED25519")) {
        d.key_type = CKK_EC_EDWARDS;
        d.algorithm = d.curve = "Ed25519";
        d.bits = 255;
    } else if (EVP_PKEY_is_a(key, "ED448")) {
        d.key_type = CKK_EC_EDWARDS;
        d.algorithm = d.curve = "Ed448";
        d.bits = 448;
    } else {
        const char* name = EVP_PKEY_get0_type_name(key);
        throw Error(ExitCode::bad_input,
                    std::string("key type ") + (name ? name : "unknown") + " cannot be stored on a PKCS#11 token by p11vault");
    }
    return d;
}

const std::vector<CK_ATTRIBUTE_TYPE>& public_attribute_types() {
    static const std::vector<CK_ATTRIBUTE_TYPE> types = {CKA_KEY_TYPE, CKA_MODULUS, CKA_PUBLIC_EXPONENT,
                                                         CKA_EC_PARAMS, CKA_EC_POINT};
    return types;
}

ossl::Pkey public_key_from_attributes(const pkcs11::AttributeValues& values) {
    auto key_type = values.ulong(CKA_KEY_TYPE);
    if (!key_type) return {};
    if (*key_type == CKK_RSA) {
        const Bytes* modulus = values.bytes(CKA_MODULUS);
        const Bytes* exponent = values.bytes(CKA_PUBLIC_EXPONENT);
        if (modulus == nullptr || exponent == nullptr || modulus->empty() || exponent->empty()) return {};
        BigNum n(BN_bin2bn(modulus->data(), static_cast<int>(modulus->size()), nullptr));
        BigNum e(BN_bin2bn(exponent->data(), static_cast<int>(exponent->size()), nullptr));
        ParamBuild build(OSSL_PARAM_BLD_new());
        OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_N, n.get());
        OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_E, e.get());
        return from_params("RSA", build.get(), EVP_PKEY_PUBLIC_KEY);
    }
    const Bytes* params = values.bytes(CKA_EC_PARAMS);
    const Bytes* point = values.bytes(CKA_EC_POINT);
    if (params == nullptr || point == nullptr || point->empty()) return {};
    int nid = curve_nid_from_params(*params);
    if (*key_type == CKK_EC) {
        const Curve* curve = curve_by_nid(nid);
        if (curve == nullptr) return {};
        Bytes raw = unwrap_point(*point, 0);
        ParamBuild build(OSSL_PARAM_BLD_new());
        OSSL_PARAM_BLD_push_utf8_string(build.get(), OSSL_PKEY_PARAM_GROUP_NAME, curve->group, 0);
        OSSL_PARAM_BLD_push_octet_string(build.get(), OSSL_PKEY_PARAM_PUB_KEY, raw.data(), raw.size());
        return from_params("EC", build.get(), EVP_PKEY_PUBLIC_KEY);
    }
    if (*key_type == CKK_EC_EDWARDS && (nid == NID_ED25519 || nid == NID_ED448)) {
        std::size_t size = nid == NID_ED25519 ? 32 : 57;
        Bytes raw = unwrap_point(*point, size);
        EVP_PKEY* key = EVP_PKEY_new_raw_public_key_ex(ossl::libctx(), nid == NID_ED25519 ? "ED25519" : "ED448",
                                                       nullptr, raw.data(), raw.size());
        if (key == nullptr) ossl::fail(kBadInput, "building an EdDSA public key from token attributes");
        return ossl::Pkey(key);
    }
    return {};
}

void add_public_attributes(const EVP_PKEY* key, pkcs11::AttributeTemplate& out) {
    KeyDescription d = describe(key);
    out.add_key_type(d.key_type);
    if (d.key_type == CKK_RSA) {
        out.add_bytes(CKA_MODULUS, bn_bytes(get_bn(key, OSSL_PKEY_PARAM_RSA_N).get()));
        out.add_bytes(CKA_PUBLIC_EXPONENT, bn_bytes(get_bn(key, OSSL_PKEY_PARAM_RSA_E).get()));
    } else if (d.key_type == CKK_EC) {
        out.add_bytes(CKA_EC_PARAMS, der_object(curve_by_group(d.curve)->nid));
        out.add_bytes(CKA_EC_POINT, der_octet_string(ec_public_point(key)));
    } else {
        out.add_bytes(CKA_EC_PARAMS, der_object(d.curve == "Ed25519" ? NID_ED25519 : NID_ED448));
        std::size_t size = 0;
        EVP_PKEY_get_raw_public_key(key, nullptr, &size);
        Bytes raw(size);
        if (EVP_PKEY_get_raw_public_key(key, raw.data(), &size) != 1) ossl::fail(kBadInput, "reading an EdDSA public key");
        out.add_bytes(CKA_EC_POINT, der_octet_string(raw));
    }
}

void add_private_attributes(const EVP_PKEY* key, pkcs11::AttributeTemplate& out) {
    KeyDescription d = describe(key);
    out.add_key_type(d.key_type);
    if (d.key_type == CKK_RSA) {
        out.add_bytes(CKA_MODULUS, bn_bytes(get_bn(key, OSSL_PKEY_PARAM_RSA_N).get()));
        out.add_bytes(CKA_PUBLIC_EXPONENT, bn_bytes(get_bn(key, OSSL_PKEY_PARAM_RSA_E).get()));
        const std::pair<CK_ATTRIBUTE_TYPE, const char*> components[] = {
            {CKA_PRIVATE_EXPONENT, OSSL_PKEY_PARAM_RSA_D},     {CKA_PRIME_1, OSSL_PKEY_PARAM_RSA_FACTOR1},
            {CKA_PRIME_2, OSSL_PKEY_PARAM_RSA_FACTOR2},        {CKA_EXPONENT_1, OSSL_PKEY_PARAM_RSA_EXPONENT1},
            {CKA_EXPONENT_2, OSSL_PKEY_PARAM_RSA_EXPONENT2},   {CKA_COEFFICIENT, OSSL_PKEY_PARAM_RSA_COEFFICIENT1},
        };
        for (const auto& [attribute, name] : components) out.add_secret(attribute, bn_secret(get_bn(key, name).get()));
    } else if (d.key_type == CKK_EC) {
        out.add_bytes(CKA_EC_PARAMS, der_object(curve_by_group(d.curve)->nid));
        out.add_secret(CKA_VALUE, bn_secret(get_bn(key, OSSL_PKEY_PARAM_PRIV_KEY).get(), (d.bits + 7) / 8));
    } else {
        out.add_bytes(CKA_EC_PARAMS, der_object(d.curve == "Ed25519" ? NID_ED25519 : NID_ED448));
        std::size_t size = 0;
        EVP_PKEY_get_raw_private_key(key, nullptr, &size);
        SecretBytes raw(size);
        if (EVP_PKEY_get_raw_private_key(key, raw.data(), &size) != 1) ossl::fail(kBadInput, "reading an EdDSA key");
        out.add_secret(CKA_VALUE, raw);
    }
}

Bytes ec_public_point(const EVP_PKEY* key) {
    std::size_t size = 0;
    if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, nullptr, 0, &size) != 1)
        ossl::fail(kBadInput, "reading an EC public point");
    Bytes point(size);
    if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point.data(), size, &size) != 1)
        ossl::fail(kBadInput, "reading an EC public point");
    point.resize(size);
    return point;
}

Bytes spki_der(const EVP_PKEY* key) {
    unsigned char* der = nullptr;
    int length = i2d_PUBKEY(key, &der);
    if (length <= 0) ossl::fail(kBadInput, "encoding a public key");
    Bytes out(der, der + length);
    OPENSSL_free(der);
    return out;
}

Bytes spki_sha256(const EVP_PKEY* key) {
    Bytes der = spki_der(key);
    return ossl::sha256(der.data(), der.size());
}

bool same_public_key(const EVP_PKEY* a, const EVP_PKEY* b) {
    return a != nullptr && b != nullptr && EVP_PKEY_eq(a, b) == 1;
}

ossl::Pkey public_only(const EVP_PKEY* key) {
    Bytes der = spki_der(key);
    const unsigned char* p = der.data();
    ossl::Pkey out(d2i_PUBKEY_ex(nullptr, &p, static_cast<long>(der.size()), ossl::libctx(), nullptr));
    if (!out) ossl::fail(kBadInput, "decoding a public key");
    return out;
}

bool has_rsa_modulus(const EVP_PKEY* key, const Bytes& modulus) {
    if (key == nullptr || modulus.empty()) return false;
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA && EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA_PSS) return false;
    BIGNUM* raw = nullptr;
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &raw) != 1) {
        ERR_clear_error();
        return false;
    }
    BigNum n(raw);
    BigNum other(BN_bin2bn(modulus.data(), static_cast<int>(modulus.size()), nullptr));
    return other && BN_cmp(n.get(), other.get()) == 0;
}

}  // namespace p11vault::keys

namespace p11vault::keys {

std::vector<CK_ATTRIBUTE_TYPE> private_component_types(CK_KEY_TYPE key_type) {
    if (key_type == CKK_RSA)
        return {CKA_PRIVATE_EXPONENT, CKA_PRIME_1, CKA_PRIME_2, CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_COEFFICIENT};
    return {CKA_VALUE};
}

namespace {

BigNum secret_bn(const SecretBytes& bytes) {
    return BigNum(BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
}

const SecretBytes& component(const std::map<CK_ATTRIBUTE_TYPE, SecretBytes>& secrets, CK_ATTRIBUTE_TYPE type) {
    auto found = secrets.find(type);
    if (found == secrets.end() || found->second.empty())
        throw Error(ExitCode::refused, "the token did not reveal every private key component");
    return found->second;
}

}  // namespace

ossl::Pkey private_key_from_components(CK_KEY_TYPE key_type, const pkcs11::AttributeValues& public_values,
                                       const std::map<CK_ATTRIBUTE_TYPE, SecretBytes>& secrets,
                                       const EVP_PKEY* public_key) {
    ParamBuild build(OSSL_PARAM_BLD_new());
    std::vector<BigNum> keep;  // the builder refers to these until to_param
    auto push = [&](const char* name, BigNum bn) {
        OSSL_PARAM_BLD_push_BN(build.get(), name, bn.get());
        keep.push_back(std::move(bn));
    };
    if (key_type == CKK_RSA) {
        const Bytes* modulus = public_values.bytes(CKA_MODULUS);
        const Bytes* exponent = public_values.bytes(CKA_PUBLIC_EXPONENT);
        if (modulus == nullptr || exponent == nullptr) throw Error(ExitCode::refused, "RSA key without public components");
        push(OSSL_PKEY_PARAM_RSA_N, BigNum(BN_bin2bn(modulus->data(), static_cast<int>(modulus->size()), nullptr)));
        push(OSSL_PKEY_PARAM_RSA_E, BigNum(BN_bin2bn(exponent->data(), static_cast<int>(exponent->size()), nullptr)));
        const std::pair<CK_ATTRIBUTE_TYPE, const char*> parts[] = {
            {CKA_PRIVATE_EXPONENT, OSSL_PKEY_PARAM_RSA_D},   {CKA_PRIME_1, OSSL_PKEY_PARAM_RSA_FACTOR1},
            {CKA_PRIME_2, OSSL_PKEY_PARAM_RSA_FACTOR2},      {CKA_EXPONENT_1, OSSL_PKEY_PARAM_RSA_EXPONENT1},
            {CKA_EXPONENT_2, OSSL_PKEY_PARAM_RSA_EXPONENT2}, {CKA_COEFFICIENT, OSSL_PKEY_PARAM_RSA_COEFFICIENT1},
        };
        for (const auto& [attribute, name] : parts) push(name, secret_bn(component(secrets, attribute)));
        return from_params("RSA", build.get(), EVP_PKEY_KEYPAIR);
    }
    const Bytes* params = public_values.bytes(CKA_EC_PARAMS);
    if (params == nullptr) throw Error(ExitCode::refused, "EC key without CKA_EC_PARAMS");
    int nid = curve_nid_from_params(*params);
    const SecretBytes& value = component(secrets, CKA_VALUE);
    if (key_type == CKK_EC_EDWARDS && (nid == NID_ED25519 || nid == NID_ED448)) {
        EVP_PKEY* key = EVP_PKEY_new_raw_private_key_ex(ossl::libctx(), nid == NID_ED25519 ? "ED25519" : "ED448",
                                                        nullptr, value.data(), value.size());
        if (key == nullptr) ossl::fail(kBadInput, "building an EdDSA key from token attributes");
        return ossl::Pkey(key);
    }
    const Curve* curve = key_type == CKK_EC ? curve_by_nid(nid) : nullptr;
    if (curve == nullptr) throw Error(ExitCode::refused, "unsupported key type or curve");
    OSSL_PARAM_BLD_push_utf8_string(build.get(), OSSL_PKEY_PARAM_GROUP_NAME, curve->group, 0);
    push(OSSL_PKEY_PARAM_PRIV_KEY, secret_bn(value));
    Bytes point;
    if (public_key != nullptr) {
        point = ec_public_point(public_key);
        OSSL_PARAM_BLD_push_octet_string(build.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
    }
    return from_params("EC", build.get(), EVP_PKEY_KEYPAIR);
}

SecretBytes private_key_info_der(const EVP_PKEY* key) {
    ossl::P8Info info(EVP_PKEY2PKCS8(key));
    if (!info) ossl::fail(kBadInput, "encoding a private key");
    unsigned char* der = nullptr;
    int length = i2d_PKCS8_PRIV_KEY_INFO(info.get(), &der);
    if (length <= 0) ossl::fail(kBadInput, "encoding a private key");
    SecretBytes out(der, static_cast<std::size_t>(length));
    OPENSSL_clear_free(der, static_cast<std::size_t>(length));
    return out;
}

std::size_t der_element_length(const std::uint8_t* data, std::size_t size) {
    const unsigned char* p = data;
    long length = 0;
    int tag = 0, cls = 0;
    int ret = ASN1_get_object(&p, &length, &tag, &cls, static_cast<long>(size));
    if ((ret & 0x80) != 0 || (ret & 1) != 0) return 0;
    std::size_t total = static_cast<std::size_t>(p - data) + static_cast<std::size_t>(length);
    return total <= size ? total : 0;
}

}  // namespace p11vault::keys
