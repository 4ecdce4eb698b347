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
#include "src/ec_curves.hpp"

namespace p11vault::keys {

namespace {

constexpr int kBadInput = static_cast<int>(ErrorKind::bad_input);

using BigNum = ossl::Owned<BIGNUM, BN_clear_free>;
using ParamBuild = ossl::Owned<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using Params = ossl::Owned<OSSL_PARAM, OSSL_PARAM_free>;

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

// DSA's domain (CKA_PRIME, CKA_SUBPRIME, CKA_BASE) into `build`; false when one is missing.
bool push_dsa_domain(OSSL_PARAM_BLD* build, const pkcs11::AttributeValues& values, std::vector<BigNum>& keep) {
    const std::pair<CK_ATTRIBUTE_TYPE, const char*> parts[] = {
        {CKA_PRIME, OSSL_PKEY_PARAM_FFC_P}, {CKA_SUBPRIME, OSSL_PKEY_PARAM_FFC_Q}, {CKA_BASE, OSSL_PKEY_PARAM_FFC_G}};
    for (const auto& [attribute, name] : parts) {
        const Bytes* value = values.bytes(attribute);
        if (value == nullptr || value->empty()) return false;
        keep.emplace_back(BN_bin2bn(value->data(), static_cast<int>(value->size()), nullptr));
        OSSL_PARAM_BLD_push_BN(build, name, keep.back().get());
    }
    return true;
}

void add_dsa_domain(const EVP_PKEY* key, pkcs11::AttributeTemplate& out) {
    out.add_bytes(CKA_PRIME, bn_bytes(get_bn(key, OSSL_PKEY_PARAM_FFC_P).get()));
    out.add_bytes(CKA_SUBPRIME, bn_bytes(get_bn(key, OSSL_PKEY_PARAM_FFC_Q).get()));
    out.add_bytes(CKA_BASE, bn_bytes(get_bn(key, OSSL_PKEY_PARAM_FFC_G).get()));
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
    if (algorithm == "DSA") return fmt::format("DSA-{}", bits);
    if (algorithm == "EC") {
        // "EC-P256", "EC-brainpoolP256r1", "EC-P256-explicit", "EC-explicit-256".
        static constexpr std::string_view kExplicit = " (explicit parameters)";
        if (curve == "explicit parameters") return fmt::format("EC-explicit-{}", bits);
        std::string c = curve;
        const bool explicit_parameters = c.ends_with(kExplicit);
        if (explicit_parameters) c.resize(c.size() - kExplicit.size());
        c.erase(std::remove(c.begin(), c.end(), '-'), c.end());
        return "EC-" + c + (explicit_parameters ? "-explicit" : "");
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
        auto curve = ec_curve_of(key);
        if (!curve) throw Error(ErrorKind::bad_input, "EC key whose curve OpenSSL cannot read");
        d.key_type = CKK_EC;
        d.algorithm = "EC";
        d.curve = curve->display;
        d.bits = curve->bits;
    } else if (EVP_PKEY_is_a(key, "DSA")) {
        d.key_type = CKK_DSA;
        d.algorithm = "DSA";
        d.bits = static_cast<unsigned>(EVP_PKEY_get_bits(key));
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
        throw Error(ErrorKind::bad_input,
                    std::string("key type ") + (name ? name : "unknown") + " cannot be stored on a PKCS#11 token by p11vault");
    }
    return d;
}

const std::vector<CK_ATTRIBUTE_TYPE>& public_attribute_types() {
    // Not CKA_VALUE, although a DSA public key object holds its public value there: on a
    // private key object it is the secret.
    static const std::vector<CK_ATTRIBUTE_TYPE> types = {CKA_KEY_TYPE, CKA_MODULUS,  CKA_PUBLIC_EXPONENT, CKA_EC_PARAMS,
                                                         CKA_EC_POINT, CKA_PRIME,    CKA_SUBPRIME,        CKA_BASE};
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
    if (*key_type == CKK_DSA) {
        // The public value is CKA_VALUE of a public key object, read by callers that ask for it.
        const Bytes* y = values.bytes(CKA_VALUE);
        if (y == nullptr || y->empty()) return {};
        ParamBuild build(OSSL_PARAM_BLD_new());
        std::vector<BigNum> keep;
        if (!push_dsa_domain(build.get(), values, keep)) return {};
        keep.emplace_back(BN_bin2bn(y->data(), static_cast<int>(y->size()), nullptr));
        OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_PUB_KEY, keep.back().get());
        return from_params("DSA", build.get(), EVP_PKEY_PUBLIC_KEY);
    }
    const Bytes* params = values.bytes(CKA_EC_PARAMS);
    const Bytes* point = values.bytes(CKA_EC_POINT);
    if (params == nullptr || point == nullptr || point->empty()) return {};
    int nid = curve_nid_from_params(*params);
    if (*key_type == CKK_EC) {
        Bytes raw = unwrap_point(*point, 0);
        return ec_key_from_params(*params, &raw, nullptr);
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
    } else if (d.key_type == CKK_DSA) {
        add_dsa_domain(key, out);
        out.add_bytes(CKA_VALUE, bn_bytes(get_bn(key, OSSL_PKEY_PARAM_PUB_KEY).get()));
    } else if (d.key_type == CKK_EC) {
        out.add_bytes(CKA_EC_PARAMS, ec_params_der(key));
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
    } else if (d.key_type == CKK_DSA) {
        add_dsa_domain(key, out);
        out.add_secret(CKA_VALUE, bn_secret(get_bn(key, OSSL_PKEY_PARAM_PRIV_KEY).get()));
    } else if (d.key_type == CKK_EC) {
        out.add_bytes(CKA_EC_PARAMS, ec_params_der(key));
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

Bytes dsa_public_value(const EVP_PKEY* key) { return bn_bytes(get_bn(key, OSSL_PKEY_PARAM_PUB_KEY).get()); }

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
        throw Error(ErrorKind::refused, "the token did not reveal every private key component");
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
        if (modulus == nullptr || exponent == nullptr) throw Error(ErrorKind::refused, "RSA key without public components");
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
    if (key_type == CKK_DSA) {
        if (!push_dsa_domain(build.get(), public_values, keep))
            throw Error(ErrorKind::refused, "DSA key without CKA_PRIME, CKA_SUBPRIME and CKA_BASE");
        BigNum x = secret_bn(component(secrets, CKA_VALUE));
        // The public value y = g^x mod p (a DSA private key object does not carry it).
        BigNum y(BN_new());
        ossl::Owned<BN_CTX, BN_CTX_free> ctx(BN_CTX_secure_new());
        BIGNUM* p = keep[0].get();
        BIGNUM* g = keep[2].get();
        if (!y || !ctx || BN_mod_exp_mont_consttime(y.get(), g, x.get(), p, ctx.get(), nullptr) != 1)
            ossl::fail(kBadInput, "computing a DSA public value");
        push(OSSL_PKEY_PARAM_PUB_KEY, std::move(y));
        push(OSSL_PKEY_PARAM_PRIV_KEY, std::move(x));
        return from_params("DSA", build.get(), EVP_PKEY_KEYPAIR);
    }
    const Bytes* params = public_values.bytes(CKA_EC_PARAMS);
    if (params == nullptr) throw Error(ErrorKind::refused, "EC key without CKA_EC_PARAMS");
    int nid = curve_nid_from_params(*params);
    const SecretBytes& value = component(secrets, CKA_VALUE);
    if (key_type == CKK_EC_EDWARDS && (nid == NID_ED25519 || nid == NID_ED448)) {
        EVP_PKEY* key = EVP_PKEY_new_raw_private_key_ex(ossl::libctx(), nid == NID_ED25519 ? "ED25519" : "ED448",
                                                        nullptr, value.data(), value.size());
        if (key == nullptr) ossl::fail(kBadInput, "building an EdDSA key from token attributes");
        return ossl::Pkey(key);
    }
    if (key_type != CKK_EC) throw Error(ErrorKind::refused, "unsupported key type or curve");
    if (public_key == nullptr) return ec_key_from_params(*params, nullptr, &value);
    const Bytes point = ec_public_point(public_key);
    return ec_key_from_params(*params, &point, &value);
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
