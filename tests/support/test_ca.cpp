// SPDX-License-Identifier: Apache-2.0
#include "tests/support/test_ca.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <stdexcept>

namespace p11vault::testing {
namespace {

[[noreturn]] void openssl_fail(const std::string& what) {
    char text[256] = "no OpenSSL error queued";
    if (unsigned long code = ERR_get_error(); code != 0) ERR_error_string_n(code, text, sizeof text);
    ERR_clear_error();
    throw std::runtime_error(what + ": " + text);
}

void ensure(int result, const std::string& what) {
    if (result <= 0) openssl_fail(what);
}

template <typename T>
T* ensure(T* pointer, const std::string& what) {
    if (pointer == nullptr) openssl_fail(what);
    return pointer;
}

template <typename T, void (*Free)(T*)>
struct Deleter {
    void operator()(T* p) const noexcept { Free(p); }
};
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Deleter<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, Deleter<OSSL_PARAM, OSSL_PARAM_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using NamePtr = std::unique_ptr<X509_NAME, Deleter<X509_NAME, X509_NAME_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG, ECDSA_SIG_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

template <typename T, typename Encode>
pkcs11::Bytes encode(const T* object, Encode i2d, const std::string& what) {
    int length = i2d(object, nullptr);
    if (length <= 0) openssl_fail("encoding " + what);
    pkcs11::Bytes out(static_cast<std::size_t>(length));
    unsigned char* p = out.data();
    i2d(object, &p);
    return out;
}

void add_extension(X509* cert, X509V3_CTX* context, int nid, const char* value) {
    ExtPtr extension(ensure(X509V3_EXT_conf_nid(nullptr, context, nid, value), "X509V3_EXT_conf_nid"));
    ensure(X509_add_ext(cert, extension.get(), -1), "X509_add_ext");
}

// A certificate for `subject`, signed by `signer` (self-signed when issuer is null).
X509Ptr make_certificate(EVP_PKEY* subject, const std::string& common_name, X509* issuer, EVP_PKEY* signer) {
    X509Ptr cert(ensure(X509_new(), "X509_new"));
    ensure(X509_set_version(cert.get(), X509_VERSION_3), "X509_set_version");
    // A positive 63-bit random serial: unique enough for tests, and a short DER INTEGER.
    std::uint8_t random[8];
    ensure(RAND_bytes(random, sizeof random), "RAND_bytes");
    random[0] &= 0x7f;
    BnPtr serial(ensure(BN_bin2bn(random, sizeof random, nullptr), "BN_bin2bn"));
    ensure(BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) != nullptr ? 1 : 0,
           "BN_to_ASN1_INTEGER");
    ensure(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr ? 1 : 0, "notBefore");
    ensure(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600) != nullptr ? 1 : 0, "notAfter");
    ensure(X509_set_pubkey(cert.get(), subject), "X509_set_pubkey");

    NamePtr name(ensure(X509_NAME_new(), "X509_NAME_new"));
    ensure(X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>("p11vault tests"), -1, -1, 0),
           "X509_NAME_add_entry_by_txt");
    ensure(X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0),
           "X509_NAME_add_entry_by_txt");
    ensure(X509_set_subject_name(cert.get(), name.get()), "X509_set_subject_name");
    ensure(X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name.get()),
           "X509_set_issuer_name");

    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, issuer != nullptr ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
    add_extension(cert.get(), &context, NID_subject_key_identifier, "hash");
    if (issuer == nullptr) {
        add_extension(cert.get(), &context, NID_basic_constraints, "critical,CA:TRUE");
        add_extension(cert.get(), &context, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_extension(cert.get(), &context, NID_authority_key_identifier, "keyid");
        add_extension(cert.get(), &context, NID_basic_constraints, "critical,CA:FALSE");
        add_extension(cert.get(), &context, NID_key_usage, "critical,digitalSignature");
    }
    ensure(X509_sign(cert.get(), signer, EVP_sha256()), "X509_sign");
    return cert;
}

PkeyPtr from_params(const char* type, OSSL_PARAM_BLD* builder) {
    ParamPtr params(ensure(OSSL_PARAM_BLD_to_param(builder), "OSSL_PARAM_BLD_to_param"));
    PkeyCtxPtr context(ensure(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr), "EVP_PKEY_CTX_new_from_name"));
    ensure(EVP_PKEY_fromdata_init(context.get()), "EVP_PKEY_fromdata_init");
    EVP_PKEY* key = nullptr;
    ensure(EVP_PKEY_fromdata(context.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()), "EVP_PKEY_fromdata");
    return PkeyPtr(key);
}

// CKA_EC_POINT is a DER OCTET STRING around the point in PKCS#11 (and in SoftHSM and NSS),
// but some tokens hand out the bare point; the curve's point size tells them apart.
pkcs11::Bytes bare_point(const pkcs11::Bytes& value, std::size_t bare_size) {
    if (value.size() == bare_size) return value;
    std::size_t header = 0;
    std::size_t length = 0;
    if (value.size() >= 2 && value[0] == 0x04 && value[1] < 0x80) {
        header = 2;
        length = value[1];
    } else if (value.size() >= 3 && value[0] == 0x04 && value[1] == 0x81) {
        header = 3;
        length = value[2];
    }
    if (header == 0 || header + length != value.size() || length != bare_size) {
        throw std::runtime_error("CKA_EC_POINT is neither a DER OCTET STRING nor a bare point");
    }
    return pkcs11::Bytes(value.begin() + static_cast<std::ptrdiff_t>(header), value.end());
}

}  // namespace

pkcs11::Bytes to_der(const X509* cert) { return encode(cert, i2d_X509, "certificate"); }

std::string to_pem(const X509* cert) {
    BioPtr bio(ensure(BIO_new(BIO_s_mem()), "BIO_new"));
    ensure(PEM_write_bio_X509(bio.get(), cert), "PEM_write_bio_X509");
    char* data = nullptr;
    long length = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(length));
}

pkcs11::Bytes spki_der(const EVP_PKEY* key) { return encode(key, i2d_PUBKEY, "public key"); }

TestCa& TestCa::instance() {
    static TestCa ca;
    return ca;
}

TestCa::TestCa() {
    key_.reset(ensure(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), "EVP_PKEY_Q_keygen"));
    cert_ = make_certificate(key_.get(), "p11vault test CA", nullptr, key_.get());
    cert_der_ = to_der(cert_.get());
    cert_pem_ = to_pem(cert_.get());
}

IssuedCert TestCa::issue(EVP_PKEY* subject, const std::string& common_name) const {
    IssuedCert out;
    out.cert = make_certificate(subject, common_name, cert_.get(), key_.get());
    out.der = to_der(out.cert.get());
    out.pem = to_pem(out.cert.get());
    return out;
}

PkeyPtr public_key_from_token(pkcs11::Session& session, CK_OBJECT_HANDLE object) {
    static const CK_ATTRIBUTE_TYPE types[] = {CKA_KEY_TYPE, CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_EC_PARAMS,
                                              CKA_EC_POINT};
    auto values = session.get_attributes(object, types);
    auto key_type = values.ulong(CKA_KEY_TYPE);
    if (key_type == CKK_RSA && values.has(CKA_MODULUS) && values.has(CKA_PUBLIC_EXPONENT)) {
        const auto& n = *values.bytes(CKA_MODULUS);
        const auto& e = *values.bytes(CKA_PUBLIC_EXPONENT);
        BnPtr modulus(ensure(BN_bin2bn(n.data(), static_cast<int>(n.size()), nullptr), "BN_bin2bn"));
        BnPtr exponent(ensure(BN_bin2bn(e.data(), static_cast<int>(e.size()), nullptr), "BN_bin2bn"));
        ParamBldPtr builder(ensure(OSSL_PARAM_BLD_new(), "OSSL_PARAM_BLD_new"));
        ensure(OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_N, modulus.get()), "push n");
        ensure(OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_E, exponent.get()), "push e");
        return from_params("RSA", builder.get());
    }
    if ((key_type == CKK_EC || key_type == CKK_EC_EDWARDS) && values.has(CKA_EC_PARAMS) && values.has(CKA_EC_POINT)) {
        std::string curve = curve_for(*values.bytes(CKA_EC_PARAMS));
        if (curve == "Ed25519" || curve == "Ed448") {
            const std::size_t size = curve == "Ed25519" ? 32 : 57;
            pkcs11::Bytes point = bare_point(*values.bytes(CKA_EC_POINT), size);
            return PkeyPtr(ensure(EVP_PKEY_new_raw_public_key_ex(nullptr, curve == "Ed25519" ? "ED25519" : "ED448",
                                                                 nullptr, point.data(), size),
                                  "EVP_PKEY_new_raw_public_key_ex"));
        }
        if (curve.empty()) throw std::runtime_error("public_key_from_token: unsupported CKA_EC_PARAMS");
        // OpenSSL's group name: the NIST curves by their NIST names, the others as named.
        const std::string group = curve == "P-256" ? "prime256v1" : curve == "P-384" ? "secp384r1"
                                  : curve == "P-521"                ? "secp521r1"
                                                                    : curve;
        const std::size_t field = curve == "P-384" || curve == "brainpoolP384r1" ? 48
                                  : curve == "P-521"                             ? 66
                                  : curve == "brainpoolP512r1"                   ? 64
                                                                                 : 32;
        pkcs11::Bytes point = bare_point(*values.bytes(CKA_EC_POINT), 1 + 2 * field);
        ParamBldPtr builder(ensure(OSSL_PARAM_BLD_new(), "OSSL_PARAM_BLD_new"));
        ensure(OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, group.c_str(), 0),
               "push group");
        ensure(OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
               "push pub");
        return from_params("EC", builder.get());
    }
    throw std::runtime_error("public_key_from_token: the object has no public key attributes");
}

CK_OBJECT_HANDLE add_certificate(pkcs11::Session& session, const X509* cert, const pkcs11::Bytes& id,
                                 const std::string& label) {
    pkcs11::AttributeTemplate attributes;
    attributes.add_class(CKO_CERTIFICATE)
        .add_ulong(CKA_CERTIFICATE_TYPE, CKC_X_509)
        .add_bool(CKA_TOKEN, true)
        .add_bool(CKA_PRIVATE, false)
        .add_bytes(CKA_VALUE, to_der(cert))
        .add_bytes(CKA_SUBJECT, encode(X509_get_subject_name(cert), i2d_X509_NAME, "subject"))
        .add_bytes(CKA_ISSUER, encode(X509_get_issuer_name(cert), i2d_X509_NAME, "issuer"))
        .add_bytes(CKA_SERIAL_NUMBER, encode(X509_get0_serialNumber(cert), i2d_ASN1_INTEGER, "serial"))
        .add_bytes(CKA_ID, id)
        .add_string(CKA_LABEL, label);
    return session.create_object(attributes);
}

pkcs11::Bytes sign_for_openssl(pkcs11::Session& session, CK_OBJECT_HANDLE private_key, CK_KEY_TYPE key_type,
                               std::span<const std::uint8_t> data) {
    if (key_type == CKK_RSA) {
        if (session.module().mechanism_info(session.slot(), CKM_SHA256_RSA_PKCS))
            return session.sign(pkcs11::Mechanism(CKM_SHA256_RSA_PKCS), private_key, data);
        // openCryptoki 3.8 has no CKM_SHA256_RSA_PKCS: the same PKCS#1 v1.5 signature from
        // CKM_RSA_PKCS over the DER DigestInfo of the SHA-256 hash (RFC 8017, 9.2).
        static const std::uint8_t sha256_prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                                     0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
        pkcs11::Bytes digest_info(std::begin(sha256_prefix), std::end(sha256_prefix));
        std::uint8_t digest[32];
        unsigned int digest_size = 0;
        ensure(EVP_Digest(data.data(), data.size(), digest, &digest_size, EVP_sha256(), nullptr), "EVP_Digest");
        digest_info.insert(digest_info.end(), digest, digest + digest_size);
        return session.sign(pkcs11::Mechanism(CKM_RSA_PKCS), private_key, digest_info);
    }
    if (key_type == CKK_EC_EDWARDS) return session.sign(pkcs11::Mechanism(CKM_EDDSA), private_key, data);
    if (key_type != CKK_EC && key_type != CKK_DSA) throw std::invalid_argument("sign_for_openssl: unsupported key type");
    std::uint8_t digest[32];
    unsigned int digest_size = 0;
    ensure(EVP_Digest(data.data(), data.size(), digest, &digest_size, EVP_sha256(), nullptr), "EVP_Digest");
    // A DSA-Sig-Value is the same SEQUENCE of r and s as an ECDSA-Sig-Value.
    pkcs11::Bytes raw = session.sign(pkcs11::Mechanism(key_type == CKK_EC ? CKM_ECDSA : CKM_DSA), private_key,
                                     std::span(digest, digest_size));
    std::size_t half = raw.size() / 2;
    BnPtr r(ensure(BN_bin2bn(raw.data(), static_cast<int>(half), nullptr), "BN_bin2bn"));
    BnPtr s(ensure(BN_bin2bn(raw.data() + half, static_cast<int>(half), nullptr), "BN_bin2bn"));
    EcdsaSigPtr signature(ensure(ECDSA_SIG_new(), "ECDSA_SIG_new"));
    ensure(ECDSA_SIG_set0(signature.get(), r.get(), s.get()), "ECDSA_SIG_set0");
    r.release();  // owned by the ECDSA_SIG now
    s.release();
    return encode(signature.get(), i2d_ECDSA_SIG, "ECDSA signature");
}

bool openssl_verify(EVP_PKEY* public_key, std::span<const std::uint8_t> data, std::span<const std::uint8_t> signature) {
    MdCtxPtr context(ensure(EVP_MD_CTX_new(), "EVP_MD_CTX_new"));
    const bool pure = EVP_PKEY_is_a(public_key, "ED25519") == 1 || EVP_PKEY_is_a(public_key, "ED448") == 1;
    ensure(EVP_DigestVerifyInit_ex(context.get(), nullptr, pure ? nullptr : "SHA256", nullptr, nullptr, public_key,
                                   nullptr),
           "EVP_DigestVerifyInit_ex");
    int result = EVP_DigestVerify(context.get(), signature.data(), signature.size(), data.data(), data.size());
    ERR_clear_error();
    return result == 1;
}

IssuedCert certify(pkcs11::Session& session, const TestKey& key) {
    PkeyPtr public_key = public_key_from_token(session, key.public_key);
    IssuedCert issued = TestCa::instance().issue(public_key.get(), key.label.empty() ? "p11vault test key" : key.label);
    add_certificate(session, issued.cert.get(), key.id, key.label);
    return issued;
}

}  // namespace p11vault::testing
