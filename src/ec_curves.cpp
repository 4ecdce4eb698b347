// SPDX-License-Identifier: Apache-2.0
#include "src/ec_curves.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>

#include <cstring>

#include "p11vault/error.hpp"

namespace p11vault::keys {

namespace {

constexpr int kBadInput = static_cast<int>(ErrorKind::bad_input);

using Bytes = std::vector<std::uint8_t>;
using BigNum = ossl::Owned<BIGNUM, BN_clear_free>;
using ParamBuild = ossl::Owned<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using Params = ossl::Owned<OSSL_PARAM, OSSL_PARAM_free>;
using DecoderCtx = ossl::Owned<OSSL_DECODER_CTX, OSSL_DECODER_CTX_free>;

// The domain parameters alone, as a parameters-only EC key (on the private library context).
ossl::Pkey domain_from_params(const Bytes& params) {
    if (params.empty()) return {};
    EVP_PKEY* key = nullptr;
    DecoderCtx decoder(OSSL_DECODER_CTX_new_for_pkey(&key, "DER", "type-specific", "EC", EVP_PKEY_KEY_PARAMETERS,
                                                     ossl::libctx(), nullptr));
    const unsigned char* data = params.data();
    std::size_t size = params.size();
    if (!decoder || OSSL_DECODER_from_data(decoder.get(), &data, &size) != 1 || size != 0) {
        EVP_PKEY_free(key);
        ERR_clear_error();
        return {};
    }
    return ossl::Pkey(key);
}

std::string text_param(const EVP_PKEY* key, const char* name) {
    char text[80] = {};
    if (EVP_PKEY_get_utf8_string_param(key, name, text, sizeof text, nullptr) != 1) {
        ERR_clear_error();
        return {};
    }
    return text;
}

}  // namespace

Bytes ec_params_der(const EVP_PKEY* key) {
    unsigned char* der = nullptr;
    const int length = i2d_KeyParams(key, &der);
    if (length <= 0) ossl::fail(kBadInput, "encoding the curve of an EC key");
    Bytes out(der, der + length);
    OPENSSL_free(der);
    return out;
}

std::optional<CurveInfo> ec_curve_of(const EVP_PKEY* key) {
    if (!EVP_PKEY_is_a(key, "EC")) return std::nullopt;
    CurveInfo info;
    const int bits = EVP_PKEY_get_bits(key);
    if (bits <= 0) return std::nullopt;
    info.bits = static_cast<unsigned>(bits);
    info.explicit_parameters = text_param(key, OSSL_PKEY_PARAM_EC_ENCODING) == OSSL_PKEY_EC_ENCODING_EXPLICIT;
    // OpenSSL names explicit parameters that match a known curve by that curve.
    const std::string group = text_param(key, OSSL_PKEY_PARAM_GROUP_NAME);
    const int nid = group.empty() ? NID_undef : OBJ_sn2nid(group.c_str());
    std::string name = group;
    if (nid != NID_undef)
        if (const char* nist = EC_curve_nid2nist(nid)) name = nist;
    if (!info.explicit_parameters) {
        if (name.empty()) return std::nullopt;
        info.display = name;
    } else {
        info.display = name.empty() ? "explicit parameters" : name + " (explicit parameters)";
    }
    return info;
}

std::optional<CurveInfo> ec_curve_from_params(const Bytes& params) {
    ossl::Pkey domain = domain_from_params(params);
    if (!domain) return std::nullopt;
    return ec_curve_of(domain.get());
}

int curve_nid_from_params(const Bytes& params) {
    const unsigned char* p = params.data();
    ossl::Object object(d2i_ASN1_OBJECT(nullptr, &p, static_cast<long>(params.size())));
    if (object && p == params.data() + params.size()) return OBJ_obj2nid(object.get());
    ERR_clear_error();
    p = params.data();
    ossl::Owned<ASN1_PRINTABLESTRING, ASN1_PRINTABLESTRING_free> name(
        d2i_ASN1_PRINTABLESTRING(nullptr, &p, static_cast<long>(params.size())));
    if (name) {
        const std::string text(reinterpret_cast<const char*>(name->data), static_cast<std::size_t>(name->length));
        if (text == "edwards25519") return NID_ED25519;
        if (text == "edwards448") return NID_ED448;
    }
    ERR_clear_error();
    return NID_undef;
}

ossl::Pkey ec_key_from_params(const Bytes& params, const Bytes* point, const SecretBytes* private_value) {
    ossl::Pkey domain = domain_from_params(params);
    if (!domain) throw Error(ErrorKind::bad_input, "CKA_EC_PARAMS are not EC domain parameters OpenSSL can read");
    OSSL_PARAM* raw_domain = nullptr;
    if (EVP_PKEY_todata(domain.get(), EVP_PKEY_KEY_PARAMETERS, &raw_domain) != 1)
        ossl::fail(kBadInput, "reading EC domain parameters");
    Params domain_params(raw_domain);

    ParamBuild build(OSSL_PARAM_BLD_new());
    BigNum scalar;
    if (!build) ossl::fail(kBadInput, "building an EC key");
    if (point != nullptr && !point->empty())
        OSSL_PARAM_BLD_push_octet_string(build.get(), OSSL_PKEY_PARAM_PUB_KEY, point->data(), point->size());
    if (private_value != nullptr) {
        scalar.reset(BN_secure_new());
        if (!scalar || BN_bin2bn(private_value->data(), static_cast<int>(private_value->size()), scalar.get()) == nullptr)
            ossl::fail(kBadInput, "reading an EC private value");
        OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_PRIV_KEY, scalar.get());
    }
    Params key_params(OSSL_PARAM_BLD_to_param(build.get()));
    Params all(key_params ? OSSL_PARAM_merge(domain_params.get(), key_params.get()) : nullptr);
    ossl::PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(ossl::libctx(), "EC", nullptr));
    EVP_PKEY* key = nullptr;
    const int selection = private_value != nullptr ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY;
    if (!all || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 || EVP_PKEY_fromdata(ctx.get(), &key, selection, all.get()) != 1)
        ossl::fail(kBadInput, "building an EC key from token attributes");
    return ossl::Pkey(key);
}

}  // namespace p11vault::keys
