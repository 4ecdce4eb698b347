// SPDX-License-Identifier: Apache-2.0
#include "src/pkcs12/mac.hpp"

#include <openssl/crypto.h>
#include <openssl/objects.h>

#include <fmt/format.h>

#include <optional>
#include <string>

#include "p11vault/error.hpp"
#include "src/pkcs12/asn1_reading.hpp"
#include "src/pkcs12/password.hpp"

namespace p11vault::pkcs12 {

namespace {

constexpr int kBadInput = static_cast<int>(ErrorKind::bad_input);

bool equal_digest(const Bytes& computed, const ASN1_OCTET_STRING* expected) {
    return static_cast<std::size_t>(ASN1_STRING_length(expected)) == computed.size() &&
           CRYPTO_memcmp(computed.data(), ASN1_STRING_get0_data(expected), computed.size()) == 0;
}

// RFC 9579 PBMAC1: PBKDF2 (UTF-8 password) gives the HMAC key. keyLength is mandatory,
// and a key shorter than the HMAC output is refused: a 1-byte key lets a forger find a
// salt under which any password verifies.
bool verify_pbmac1(const X509_ALGOR* algorithm, const ASN1_OCTET_STRING* expected, std::span<const std::uint8_t> data,
                   const SecretBytes& password, const Limits& limits, MacInfo& info) {
    if (algorithm->parameter == nullptr || algorithm->parameter->type != V_ASN1_SEQUENCE)
        malformed("PBMAC1 without parameters");
    const ASN1_STRING* seq = algorithm->parameter->value.sequence;
    const unsigned char* p = ASN1_STRING_get0_data(seq);
    const unsigned char* end = p + ASN1_STRING_length(seq);
    Header outer = read_header(p, end, "PBMAC1 parameters");
    if (outer.tag != V_ASN1_SEQUENCE) malformed("PBMAC1 parameters");
    ossl::Algor kdf(d2i_X509_ALGOR(nullptr, &p, end - p));
    ossl::Algor scheme(d2i_X509_ALGOR(nullptr, &p, end - p));
    if (!kdf || !scheme) malformed("PBMAC1 parameters");
    if (OBJ_obj2nid(kdf->algorithm) != NID_id_pbkdf2)
        throw Error(ErrorKind::bad_input, "PBMAC1 with unsupported key derivation " + ossl::oid_text(kdf->algorithm));
    ossl::Pbkdf2Param params(static_cast<PBKDF2PARAM*>(
        ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), kdf->parameter)));
    if (!params || params->salt == nullptr || params->salt->type != V_ASN1_OCTET_STRING || params->iter == nullptr)
        malformed("PBMAC1 PBKDF2 parameters");
    if (params->keylength == nullptr)
        throw Error(ErrorKind::bad_input, "PBMAC1 without the mandatory PBKDF2 keyLength (RFC 9579); refusing the file");
    const char* prf = hmac_or_sha_digest_name(params->prf ? OBJ_obj2nid(params->prf->algorithm) : NID_hmacWithSHA1);
    const char* digest = hmac_or_sha_digest_name(OBJ_obj2nid(scheme->algorithm));
    if (prf == nullptr || digest == nullptr)
        throw Error(ErrorKind::bad_input,
                    fmt::format("PBMAC1 with an unsupported {} {} (supported: HMAC with {})",
                                prf == nullptr ? "PBKDF2 PRF" : "MAC algorithm",
                                ossl::oid_text(prf == nullptr ? params->prf->algorithm : scheme->algorithm),
                                supported_hmacs()));
    std::uint64_t key_length = 0, iterations = 0;
    ASN1_INTEGER_get_uint64(&key_length, params->keylength);
    ASN1_INTEGER_get_uint64(&iterations, params->iter);
    ossl::Md md(EVP_MD_fetch(ossl::libctx(), digest, nullptr));
    if (!md) ossl::fail(kBadInput, std::string("digest ") + digest);
    if (key_length < static_cast<std::uint64_t>(EVP_MD_get_size(md.get())) || key_length > 128)
        throw Error(ErrorKind::bad_input,
                    fmt::format("PBMAC1 key length {} is shorter than the {}-byte HMAC output: such a MAC can be "
                                "forged; refusing the file",
                                key_length, EVP_MD_get_size(md.get())));
    if (iterations == 0 || iterations > limits.max_iterations)
        throw Error(ErrorKind::bad_input, fmt::format("PBMAC1: {} iterations is outside 1..{} (--max-iterations)",
                                                     iterations, limits.max_iterations));
    Bytes salt = ossl::octets(params->salt->value.octet_string);
    SecretBytes key = pbkdf2(password, salt, iterations, prf, static_cast<std::size_t>(key_length));
    info.algorithm = fmt::format("PBMAC1 (PBKDF2-HMAC-{}, HMAC-{})", prf, digest);
    info.iterations = iterations;
    if (is_weak_mac_digest(digest)) info.weak_digest = digest;
    else if (is_weak_mac_digest(prf)) info.weak_digest = prf;
    info.password_form = PasswordForm::bmp;  // for the PKCS#12 PBE of the bags, if any
    return equal_digest(hmac(digest, key, data), expected);
}

}  // namespace

void verify_mac(const X509_SIG* digest_info, const ASN1_OCTET_STRING* salt, const ASN1_INTEGER* iterations,
                std::span<const std::uint8_t> content, const SecretBytes& password, const Limits& limits,
                MacInfo& info, const std::function<void(std::uint64_t)>& before_kdf) {
    const X509_ALGOR* algorithm = nullptr;
    const ASN1_OCTET_STRING* expected = nullptr;
    X509_SIG_get0(digest_info, &algorithm, &expected);
    info.present = true;
    int nid = OBJ_obj2nid(algorithm->algorithm);
    bool verified = false;
    if (nid == NID_pbmac1) {
        verified = verify_pbmac1(algorithm, expected, content, password, limits, info);
    } else {
        const char* digest = digest_name(nid);
        if (digest == nullptr)
            throw Error(ErrorKind::bad_input, "unsupported MAC algorithm " + ossl::oid_text(algorithm->algorithm) +
                                                 " (supported: HMAC with " + supported_mac_digests() +
                                                 "; PBMAC1)");
        std::uint64_t count = 1;
        if (iterations != nullptr && (ASN1_INTEGER_get_uint64(&count, iterations) != 1 || count == 0))
            malformed("MAC iteration count");
        if (count > limits.max_iterations)
            throw Error(ErrorKind::bad_input, fmt::format("MAC: {} iterations is above the limit of {}; if you "
                                                         "trust this file, raise it with --max-iterations",
                                                         count, limits.max_iterations));
        info.algorithm = fmt::format("HMAC-{} (PKCS#12 KDF)", digest);
        info.iterations = count;
        if (is_weak_mac_digest(digest)) info.weak_digest = digest;
        ossl::Md md(EVP_MD_fetch(ossl::libctx(), digest, nullptr));
        if (!md) ossl::fail(kBadInput, std::string("the MAC's digest ") + digest + " is not available");
        std::size_t size = static_cast<std::size_t>(EVP_MD_get_size(md.get()));
        Bytes salt_bytes = ossl::octets(salt);
        before_kdf(count);
        // An empty password has two encodings in the wild: BMPString 00 00 (the
        // standard) and 0 bytes (a NULL password); try the standard one first. A
        // password that is not valid UTF-8 has two BMPStrings: OpenSSL's (the
        // standard here) and the one earlier p11vault builds wrote.
        std::optional<SecretBytes> standard;
        for (PasswordForm form : {PasswordForm::bmp, PasswordForm::absent, PasswordForm::bmp_bytewise}) {
            if (form == PasswordForm::absent && !password.empty()) continue;
            auto bmp = password_bytes(password, form);
            if (!bmp) continue;
            if (form == PasswordForm::bmp) standard = bmp->clone();
            else if (form == PasswordForm::bmp_bytewise && standard && *standard == *bmp) continue;
            SecretBytes key = pkcs12_kdf(*bmp, salt_bytes, count, digest, 3, size);
            if (equal_digest(hmac(digest, key, content), expected)) {
                info.password_form = form;
                verified = true;
                break;
            }
        }
    }
    if (!verified)
        throw Error(ErrorKind::bad_password,
                    "wrong password, or the file was changed (MAC mismatch); check the password and the file");
}

}  // namespace p11vault::pkcs12
