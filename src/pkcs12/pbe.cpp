// SPDX-License-Identifier: Apache-2.0
#include "src/pkcs12/pbe.hpp"

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/objects.h>
#include <openssl/pkcs12.h>

#include <fmt/format.h>

#include <algorithm>

#include "p11vault/error.hpp"
#include "src/ossl.hpp"

namespace p11vault::pkcs12 {

namespace {


// Producer quirks for PBES2 bags, tried in this order after the standard reading
// (UTF-8 password, the cipher the bag names) fails. Data, not scattered conditions.
struct Pbes2Attempt {
    PasswordForm form;
    bool key_length_from_pbkdf2;  // use the AES variant PBKDF2's keyLength implies
    const char* quirk;            // nullptr for the standard reading
};
constexpr Pbes2Attempt kPbes2Attempts[] = {
    {PasswordForm::utf8, false, nullptr},
    // NSS 3.29.5 (bug 1416265): the bag says aes128-CBC, PBKDF2 keyLength says 32 bytes,
    // and the data is AES-256.
    {PasswordForm::utf8, true, "pbes2-aes-key-length-from-pbkdf2"},
    // NSS before 3.31 fed PBKDF2 the BMPString password.
    {PasswordForm::bmp, false, "pbes2-bmpstring-password (NSS < 3.31)"},
    {PasswordForm::bmp, true, "pbes2-bmpstring-password+aes-key-length-from-pbkdf2 (NSS 3.29)"},
    // RSA JSAFE keyed PBKDF2 with ISO-8859-1 bytes.
    {PasswordForm::latin1, false, "pbes2-latin1-password (RSA JSAFE)"},
};

struct Pkcs12Pbe {
    int nid;
    const char* cipher;
    std::size_t key_length;
    std::size_t iv_length;
};
constexpr Pkcs12Pbe kPkcs12Pbes[] = {
    {NID_pbe_WithSHA1And3_Key_TripleDES_CBC, "DES-EDE3-CBC", 24, 8},
    {NID_pbe_WithSHA1And2_Key_TripleDES_CBC, "DES-EDE-CBC", 16, 8},
    {NID_pbe_WithSHA1And128BitRC2_CBC, "RC2-CBC", 16, 8},
    {NID_pbe_WithSHA1And40BitRC2_CBC, "RC2-40-CBC", 5, 8},
    {NID_pbe_WithSHA1And128BitRC4, "RC4", 16, 0},
    {NID_pbe_WithSHA1And40BitRC4, "RC4-40", 5, 0},
};

const Pkcs12Pbe* find_pkcs12_pbe(int nid) {
    for (const auto& p : kPkcs12Pbes)
        if (p.nid == nid) return &p;
    return nullptr;
}

}  // namespace

namespace {

// What p11vault reads: the hashes of the PKCS#12 MAC (MacData's DigestInfo: the HMAC
// and the PKCS#12 KDF use this hash), and the HMACs of PBKDF2's PRF and PBMAC1's
// messageAuthScheme. Every name is OpenSSL's, the one EVP_MD_fetch takes; the error for
// an algorithm outside these tables lists them, so it never names one it refuses.
struct NamedOid {
    int nid;
    const char* name;
};
constexpr NamedOid kMacDigests[] = {
    {NID_md5, "MD5"},               {NID_sha1, "SHA1"},           {NID_sha224, "SHA224"},
    {NID_sha256, "SHA256"},         {NID_sha384, "SHA384"},       {NID_sha512, "SHA512"},
    {NID_sha512_224, "SHA512-224"}, {NID_sha512_256, "SHA512-256"}, {NID_sha3_224, "SHA3-224"},
    {NID_sha3_256, "SHA3-256"},     {NID_sha3_384, "SHA3-384"},   {NID_sha3_512, "SHA3-512"},
};
constexpr NamedOid kHmacs[] = {
    {NID_hmacWithSHA1, "SHA1"},
    {NID_hmacWithSHA224, "SHA224"},
    {NID_hmacWithSHA256, "SHA256"},
    {NID_hmacWithSHA384, "SHA384"},
    {NID_hmacWithSHA512, "SHA512"},
    {NID_hmacWithSHA512_224, "SHA512-224"},
    {NID_hmacWithSHA512_256, "SHA512-256"},
    {NID_hmac_sha3_224, "SHA3-224"},
    {NID_hmac_sha3_256, "SHA3-256"},
    {NID_hmac_sha3_384, "SHA3-384"},
    {NID_hmac_sha3_512, "SHA3-512"},
};

template <std::size_t N>
const char* find_name(const NamedOid (&table)[N], int nid) {
    for (const auto& entry : table)
        if (entry.nid == nid) return entry.name;
    return nullptr;
}

template <std::size_t N>
std::string list_names(const NamedOid (&table)[N]) {
    std::string out;
    for (const auto& entry : table) out += (out.empty() ? "" : ", ") + std::string(entry.name);
    return out;
}

}  // namespace

const char* mac_digest_name(int nid) { return find_name(kMacDigests, nid); }
const char* hmac_digest_name(int nid) { return find_name(kHmacs, nid); }

const char* digest_name(int nid) {
    const char* name = mac_digest_name(nid);
    return name != nullptr ? name : hmac_digest_name(nid);
}

const char* hmac_or_sha_digest_name(int nid) {
    if (const char* name = hmac_digest_name(nid)) return name;
    return nid == NID_md5 ? nullptr : mac_digest_name(nid);
}

std::string supported_mac_digests() { return list_names(kMacDigests); }
std::string supported_hmacs() { return list_names(kHmacs); }

bool is_weak_mac_digest(const std::string& digest) { return digest == "MD5" || digest == "SHA1"; }

namespace {

// The CBC ciphers of PBES2 that p11vault reads (all in OpenSSL's default provider).
struct CbcCipher {
    int nid;
    const char* name;
    std::size_t key_length;
};
constexpr CbcCipher kCbcCiphers[] = {
    {NID_aes_128_cbc, "AES-128-CBC", 16},           {NID_aes_192_cbc, "AES-192-CBC", 24},
    {NID_aes_256_cbc, "AES-256-CBC", 32},           {NID_camellia_128_cbc, "CAMELLIA-128-CBC", 16},
    {NID_camellia_192_cbc, "CAMELLIA-192-CBC", 24}, {NID_camellia_256_cbc, "CAMELLIA-256-CBC", 32},
    {NID_aria_128_cbc, "ARIA-128-CBC", 16},         {NID_aria_192_cbc, "ARIA-192-CBC", 24},
    {NID_aria_256_cbc, "ARIA-256-CBC", 32},         {NID_des_ede3_cbc, "DES-EDE3-CBC", 24},
};

const char* cbc_cipher(int nid, std::size_t* key_length) {
    for (const auto& cipher : kCbcCiphers) {
        if (cipher.nid == nid) {
            *key_length = cipher.key_length;
            return cipher.name;
        }
    }
    return nullptr;
}

std::string supported_cbc_ciphers() {
    std::string out;
    for (const auto& cipher : kCbcCiphers) out += (out.empty() ? "" : ", ") + std::string(cipher.name);
    return out;
}

const char* aes_for_key_length(std::size_t length) {
    switch (length) {
        case 16: return "AES-128-CBC";
        case 24: return "AES-192-CBC";
        case 32: return "AES-256-CBC";
        default: return nullptr;
    }
}

std::uint64_t checked_iterations(const ASN1_INTEGER* value, const Limits& limits, const char* what) {
    std::uint64_t iterations = 0;
    if (value == nullptr) return 1;  // DEFAULT 1 where the field is optional
    if (ASN1_INTEGER_get_uint64(&iterations, value) != 1 || iterations == 0)
        throw Error(ErrorKind::bad_input, fmt::format("{}: invalid iteration count", what));
    if (iterations > limits.max_iterations)
        throw Error(ErrorKind::bad_input,
                    fmt::format("{}: {} iterations is above the limit of {}; if you trust this file, "
                                "raise the limit with --max-iterations",
                                what, iterations, limits.max_iterations));
    return iterations;
}

// What names a derived key in the cache: the KDF, the password's form and the file's
// non-secret parameters, never the password or key bytes (a Decryptor has one password).
std::string cache_key(const char* kind, PasswordForm form, const Bytes& salt,
                      std::uint64_t iterations, const std::string& digest, std::size_t length, int id) {
    return fmt::format("{}|{}|{}|{}|{}|{}|{}", kind, static_cast<int>(form), ossl::hex(salt), iterations, digest,
                       length, id);
}

}  // namespace

std::string Pbes2Params::describe() const {
    return fmt::format("PBES2 PBKDF2-HMAC-{} {} it, {}", prf_digest, iterations,
                       cipher);
}

std::optional<Pbes2Params> parse_pbes2(const X509_ALGOR* algorithm, const Limits& limits) {
    if (OBJ_obj2nid(algorithm->algorithm) != NID_pbes2) return std::nullopt;
    ossl::Pbe2Param pbe2(static_cast<PBE2PARAM*>(
        ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), algorithm->parameter)));
    if (!pbe2) throw Error(ErrorKind::bad_input, "malformed PBES2 parameters");
    if (OBJ_obj2nid(pbe2->keyfunc->algorithm) != NID_id_pbkdf2)
        throw Error(ErrorKind::bad_input, "unsupported PBES2 key derivation " + ossl::oid_text(pbe2->keyfunc->algorithm));
    ossl::Pbkdf2Param kdf(static_cast<PBKDF2PARAM*>(
        ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), pbe2->keyfunc->parameter)));
    if (!kdf || kdf->salt == nullptr || kdf->salt->type != V_ASN1_OCTET_STRING)
        throw Error(ErrorKind::bad_input, "malformed PBKDF2 parameters");
    Pbes2Params p;
    p.salt = ossl::octets(kdf->salt->value.octet_string);
    p.iterations = checked_iterations(kdf->iter, limits, "PBKDF2");
    if (kdf->keylength != nullptr) {
        std::uint64_t length = 0;
        if (ASN1_INTEGER_get_uint64(&length, kdf->keylength) != 1 || length == 0 || length > 64)
            throw Error(ErrorKind::bad_input, "malformed PBKDF2 key length");
        p.key_length = static_cast<std::size_t>(length);
    }
    int prf = kdf->prf == nullptr ? NID_hmacWithSHA1 : OBJ_obj2nid(kdf->prf->algorithm);
    const char* digest = hmac_or_sha_digest_name(prf);
    if (digest == nullptr)
        throw Error(ErrorKind::bad_input, "unsupported PBKDF2 PRF " + ossl::oid_text(kdf->prf->algorithm) +
                                             " (supported: HMAC with " + supported_hmacs() + ")");
    p.prf_digest = digest;
    const char* cipher = cbc_cipher(OBJ_obj2nid(pbe2->encryption->algorithm), &p.cipher_key_length);
    if (cipher == nullptr)
        throw Error(ErrorKind::bad_input,
                    "unsupported PBES2 cipher " + ossl::oid_text(pbe2->encryption->algorithm) +
                        " (supported: " + supported_cbc_ciphers() + ")");
    p.cipher = cipher;
    const ASN1_TYPE* iv = pbe2->encryption->parameter;
    if (iv == nullptr || iv->type != V_ASN1_OCTET_STRING)
        throw Error(ErrorKind::bad_input, "PBES2 cipher without an IV");
    p.iv = ossl::octets(iv->value.octet_string);
    return p;
}

std::string describe_algorithm(const X509_ALGOR* algorithm) {
    Limits unlimited;
    unlimited.max_iterations = UINT64_MAX;
    try {
        if (auto p = parse_pbes2(algorithm, unlimited)) return p->describe();
    } catch (const Error&) {
        return "PBES2 (malformed)";
    }
    int nid = OBJ_obj2nid(algorithm->algorithm);
    if (find_pkcs12_pbe(nid) != nullptr) {
        ossl::PbeParam pbe(static_cast<PBEPARAM*>(ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBEPARAM), algorithm->parameter)));
        std::uint64_t iterations = 0;
        if (pbe && pbe->iter) ASN1_INTEGER_get_uint64(&iterations, pbe->iter);
        return fmt::format("{} {} it", OBJ_nid2ln(nid), iterations);
    }
    return ossl::oid_text(algorithm->algorithm);
}

bool is_weak_description(const std::string& description) {
    if (description.find("RC2") != std::string::npos || description.find("RC4") != std::string::npos ||
        description.find("2-Key") != std::string::npos)
        return true;
    // "... 2000 it" / "... 600000 it, AES-256-CBC": the number before " it".
    auto at = description.find(" it");
    if (at == std::string::npos) return false;
    auto start = description.rfind(' ', at - 1);
    std::string number = description.substr(start + 1, at - start - 1);
    return !number.empty() && number.find_first_not_of("0123456789") == std::string::npos && std::stoull(number) < 10000;
}

Bytes hmac(const std::string& digest, const SecretBytes& key, std::span<const std::uint8_t> data) {
    ossl::Mac mac(EVP_MAC_fetch(ossl::libctx(), "HMAC", nullptr));
    ossl::MacCtx ctx(mac ? EVP_MAC_CTX_new(mac.get()) : nullptr);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(digest.c_str()), 0),
        OSSL_PARAM_construct_end(),
    };
    Bytes out(EVP_MAX_MD_SIZE);
    std::size_t length = 0;
    if (!ctx || EVP_MAC_init(ctx.get(), key.data(), key.size(), params) != 1 ||
        EVP_MAC_update(ctx.get(), data.data(), data.size()) != 1 ||
        EVP_MAC_final(ctx.get(), out.data(), &length, out.size()) != 1)
        ossl::fail(ErrorKind::bad_input, "computing the MAC");
    out.resize(length);
    return out;
}

SecretBytes pbkdf2(const SecretBytes& password, const Bytes& salt, std::uint64_t iterations,
                   const std::string& digest, std::size_t length) {
    ossl::Kdf kdf(EVP_KDF_fetch(ossl::libctx(), "PBKDF2", nullptr));
    ossl::KdfCtx ctx(kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr);
    if (!ctx) ossl::fail(ErrorKind::failure, "PBKDF2 unavailable");
    // pkcs5=1: the PKCS#5 rules, without SP 800-132's lower bounds (old files use 1
    // iteration and 8-byte salts; we read them, and write only strong parameters).
    int pkcs5 = 1;
    std::uint64_t iter = iterations;
    static const unsigned char no_password = 0;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
                                          password.empty() ? const_cast<unsigned char*>(&no_password)
                                                           : const_cast<std::uint8_t*>(password.data()),
                                          password.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<std::uint8_t*>(salt.data()), salt.size()),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_ITER, &iter),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(digest.c_str()), 0),
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_PKCS5, &pkcs5),
        OSSL_PARAM_construct_end(),
    };
    SecretBytes out(length);
    if (EVP_KDF_derive(ctx.get(), out.data(), length, params) != 1)
        ossl::fail(ErrorKind::bad_input, "PBKDF2 derivation");
    return out;
}

SecretBytes pkcs12_kdf(const SecretBytes& bmp_password, const Bytes& salt, std::uint64_t iterations,
                       const std::string& digest, int id, std::size_t length) {
    ossl::Md md(EVP_MD_fetch(ossl::libctx(), digest.c_str(), nullptr));
    if (!md) ossl::fail(ErrorKind::bad_input, "unsupported digest " + digest);
    if (iterations > static_cast<std::uint64_t>(INT32_MAX))
        throw Error(ErrorKind::bad_input, "PKCS#12 KDF iteration count out of range");
    SecretBytes out(length);
    static unsigned char no_password = 0;
    if (PKCS12_key_gen_uni_ex(bmp_password.empty() ? &no_password : const_cast<std::uint8_t*>(bmp_password.data()),
                              static_cast<int>(bmp_password.size()), const_cast<std::uint8_t*>(salt.data()),
                              static_cast<int>(salt.size()), id, static_cast<int>(iterations), static_cast<int>(length),
                              out.data(), md.get(), ossl::libctx(), nullptr) != 1)
        ossl::fail(ErrorKind::bad_input, "PKCS#12 key derivation");
    return out;
}

namespace {

ossl::Cipher fetch_cipher(const std::string& name) {
    ossl::Cipher cipher(EVP_CIPHER_fetch(ossl::libctx(), name.c_str(), nullptr));
    if (!cipher)
        throw Error(ErrorKind::bad_input,
                    "cipher " + name + " is not available (the OpenSSL legacy provider is needed for RC2/RC4)");
    return cipher;
}

}  // namespace

Bytes cbc_encrypt(const std::string& name, const SecretBytes& key, const Bytes& iv, const std::uint8_t* data,
                  std::size_t size) {
    ossl::Cipher cipher = fetch_cipher(name);
    ossl::CipherCtx ctx(EVP_CIPHER_CTX_new());
    Bytes out(size + static_cast<std::size_t>(EVP_CIPHER_get_block_size(cipher.get())));
    int n1 = 0, n2 = 0;
    if (!ctx || EVP_EncryptInit_ex2(ctx.get(), cipher.get(), key.data(), iv.empty() ? nullptr : iv.data(), nullptr) != 1 ||
        EVP_EncryptUpdate(ctx.get(), out.data(), &n1, data, static_cast<int>(size)) != 1 ||
        EVP_EncryptFinal_ex(ctx.get(), out.data() + n1, &n2) != 1)
        ossl::fail(ErrorKind::failure, "encrypting with " + name);
    out.resize(static_cast<std::size_t>(n1 + n2));
    return out;
}

std::optional<SecretBytes> cbc_decrypt(const std::string& name, const SecretBytes& key, const Bytes& iv,
                                       const std::uint8_t* data, std::size_t size) {
    ossl::Cipher cipher = fetch_cipher(name);
    if (key.size() != static_cast<std::size_t>(EVP_CIPHER_get_key_length(cipher.get())) ||
        iv.size() != static_cast<std::size_t>(EVP_CIPHER_get_iv_length(cipher.get())))
        throw Error(ErrorKind::bad_input, "wrong key or IV length for " + name);
    ossl::CipherCtx ctx(EVP_CIPHER_CTX_new());
    SecretBytes out(size + static_cast<std::size_t>(EVP_CIPHER_get_block_size(cipher.get())));
    int n1 = 0, n2 = 0;
    if (!ctx || EVP_DecryptInit_ex2(ctx.get(), cipher.get(), key.data(), iv.empty() ? nullptr : iv.data(), nullptr) != 1 ||
        EVP_DecryptUpdate(ctx.get(), out.data(), &n1, data, static_cast<int>(size)) != 1)
        ossl::fail(ErrorKind::bad_input, "decrypting with " + name);
    if (EVP_DecryptFinal_ex(ctx.get(), out.data() + n1, &n2) != 1) {
        ossl::last_error();  // bad padding: a wrong key, nothing to report beyond "no"
        return std::nullopt;
    }
    out.resize(static_cast<std::size_t>(n1 + n2));
    return out;
}

bool is_one_sequence(const std::uint8_t* data, std::size_t size) {
    const unsigned char* p = data;
    long length = 0;
    int tag = 0, cls = 0;
    int ret = ASN1_get_object(&p, &length, &tag, &cls, static_cast<long>(size));
    if ((ret & 0x80) != 0 || tag != V_ASN1_SEQUENCE || cls != V_ASN1_UNIVERSAL || (ret & V_ASN1_CONSTRUCTED) == 0)
        return false;
    std::size_t header = static_cast<std::size_t>(p - data);
    if (ret & 1) return size >= header + 2 && data[size - 1] == 0 && data[size - 2] == 0;  // indefinite length
    return header + static_cast<std::size_t>(length) == size;
}

Decryptor::Decryptor(const SecretBytes& password, PasswordForm pkcs12_form, Limits limits)
    : password_(password), pkcs12_form_(pkcs12_form), limits_(limits) {}

void Decryptor::prefetch(const X509_ALGOR* algorithm, std::uint64_t max_iterations) {
    if (prefetched_.valid()) return;
    std::optional<Pbes2Params> p;
    try {
        p = parse_pbes2(algorithm, limits_);
    } catch (const Error&) {
        return;  // decrypt() will say what is wrong, after the MAC
    }
    if (!p || p->iterations > max_iterations) return;
    std::string key = cache_key("pbkdf2", PasswordForm::utf8, p->salt, p->iterations, p->prf_digest,
                                p->cipher_key_length, 0);
    if (cache_.count(key) != 0) return;
    prefetch_key_ = std::move(key);
    // The thread owns copies of what it reads (the Decryptor may move meanwhile).
    prefetched_ = std::async(std::launch::async, [password = password_.clone(), params = std::move(*p)] {
        return pbkdf2(password, params.salt, params.iterations, params.prf_digest, params.cipher_key_length);
    });
}

void Decryptor::adopt_prefetched() {
    if (!prefetched_.valid()) return;
    try {
        cache_.emplace(prefetch_key_, prefetched_.get());
    } catch (const Error&) {
        // A failed prefetch costs nothing more: decrypt() derives the key itself and reports.
        // Anything else (std::bad_alloc, std::system_error) is not expected from a KDF and
        // propagates from here, from the next decrypt, like it would from decrypt itself.
    }
}

const SecretBytes& Decryptor::cached(const std::string& key, const std::function<SecretBytes()>& derive) {
    // The workers of a parallel restore share one Decryptor: a key is derived once, the
    // others wait for it. std::map's nodes never move, so the reference stays valid.
    std::lock_guard lock(cache_mutex_);
    adopt_prefetched();
    auto it = cache_.find(key);
    if (it == cache_.end()) it = cache_.emplace(key, derive()).first;
    return it->second;
}

void Decryptor::note_quirk(const std::string& name) {
    std::lock_guard lock(quirks_mutex_);
    for (const auto& q : quirks_used_)
        if (q == name) return;
    quirks_used_.push_back(name);
}

const SecretBytes& Decryptor::pbes2_key(const Pbes2Params& p) {
    std::size_t length = p.cipher_key_length;
    return cached(cache_key("pbkdf2", PasswordForm::utf8, p.salt, p.iterations, p.prf_digest, length, 0),
                  [&] { return pbkdf2(password_, p.salt, p.iterations, p.prf_digest, length); });
}

std::optional<SecretBytes> Decryptor::try_pbes2(const Pbes2Params& p, const std::uint8_t* data, std::size_t size) {
    for (const auto& attempt : kPbes2Attempts) {
        std::string cipher = p.cipher;
        std::size_t key_length = p.cipher_key_length;
        if (attempt.key_length_from_pbkdf2) {
            const char* implied = p.key_length ? aes_for_key_length(*p.key_length) : nullptr;
            if (implied == nullptr || *p.key_length == p.cipher_key_length || p.cipher.rfind("AES", 0) != 0) continue;
            cipher = implied;
            key_length = *p.key_length;
        }
        auto form_password = password_bytes(password_, attempt.form);
        if (!form_password) continue;
        if (attempt.form != PasswordForm::utf8 && *form_password == password_) continue;  // same bytes: already tried
        const SecretBytes& key = cached(
            cache_key("pbkdf2", attempt.form, p.salt, p.iterations, p.prf_digest, key_length, 0),
            [&] { return pbkdf2(*form_password, p.salt, p.iterations, p.prf_digest, key_length); });
        auto plain = cbc_decrypt(cipher, key, p.iv, data, size);
        if (plain && is_one_sequence(plain->data(), plain->size())) {
            if (attempt.quirk != nullptr) note_quirk(attempt.quirk);
            return plain;
        }
    }
    return std::nullopt;
}

std::optional<SecretBytes> Decryptor::try_pkcs12_pbe(const X509_ALGOR* algorithm, const std::uint8_t* data,
                                                     std::size_t size) {
    const Pkcs12Pbe* scheme = find_pkcs12_pbe(OBJ_obj2nid(algorithm->algorithm));
    ossl::PbeParam params(static_cast<PBEPARAM*>(ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBEPARAM), algorithm->parameter)));
    if (!params || params->salt == nullptr) throw Error(ErrorKind::bad_input, "malformed PKCS#12 PBE parameters");
    Bytes salt = ossl::octets(params->salt);
    std::uint64_t iterations = checked_iterations(params->iter, limits_, "PKCS#12 PBE");
    // The form the MAC verified with first; then (a file without a MAC) the standard
    // BMPString, the other empty-password form, and the BMPString of p11vault before it
    // used OpenSSL's conversion: each only when its bytes differ from those tried.
    std::vector<SecretBytes> tried;
    for (PasswordForm form : {pkcs12_form_, PasswordForm::bmp, PasswordForm::absent, PasswordForm::bmp_bytewise}) {
        if (form == PasswordForm::absent && !password_.empty()) continue;
        auto bmp = password_bytes(password_, form);
        if (!bmp || std::find(tried.begin(), tried.end(), *bmp) != tried.end()) continue;
        tried.push_back(bmp->clone());
        const SecretBytes& key = cached(cache_key("p12kdf", form, salt, iterations, "SHA1", scheme->key_length, 1),
                                        [&] { return pkcs12_kdf(*bmp, salt, iterations, "SHA1", 1, scheme->key_length); });
        Bytes iv;
        if (scheme->iv_length != 0) {
            SecretBytes derived = pkcs12_kdf(*bmp, salt, iterations, "SHA1", 2, scheme->iv_length);
            iv.assign(derived.data(), derived.data() + derived.size());
        }
        std::optional<SecretBytes> plain;
        if (scheme->iv_length == 0) {
            // RC4: a stream cipher, no padding to check; the DER check below decides.
            ossl::Cipher cipher = fetch_cipher(scheme->cipher);
            ossl::CipherCtx ctx(EVP_CIPHER_CTX_new());
            SecretBytes out(size);
            int n = 0;
            if (EVP_DecryptInit_ex2(ctx.get(), cipher.get(), key.data(), nullptr, nullptr) == 1 &&
                EVP_DecryptUpdate(ctx.get(), out.data(), &n, data, static_cast<int>(size)) == 1)
                plain = std::move(out);
        } else {
            plain = cbc_decrypt(scheme->cipher, key, iv, data, size);
        }
        if (plain && is_one_sequence(plain->data(), plain->size())) {
            if (form == PasswordForm::bmp_bytewise) note_quirk(kBytewiseBmpQuirk);
            return plain;
        }
    }
    return std::nullopt;
}

std::optional<std::pair<SecretBytes, Bytes>> Decryptor::des3_key_iv(const X509_ALGOR* algorithm) {
    if (OBJ_obj2nid(algorithm->algorithm) != NID_pbe_WithSHA1And3_Key_TripleDES_CBC) return std::nullopt;
    ossl::PbeParam params(static_cast<PBEPARAM*>(ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBEPARAM), algorithm->parameter)));
    if (!params || params->salt == nullptr) throw Error(ErrorKind::bad_input, "malformed PKCS#12 PBE parameters");
    Bytes salt = ossl::octets(params->salt);
    std::uint64_t iterations = checked_iterations(params->iter, limits_, "PKCS#12 PBE");
    auto bmp = password_bytes(password_, pkcs12_form_);
    if (!bmp) return std::nullopt;
    SecretBytes key = pkcs12_kdf(*bmp, salt, iterations, "SHA1", 1, 24);
    SecretBytes iv = pkcs12_kdf(*bmp, salt, iterations, "SHA1", 2, 8);
    return std::make_pair(std::move(key), Bytes(iv.data(), iv.data() + iv.size()));
}

SecretBytes Decryptor::decrypt(const X509_ALGOR* algorithm, const std::uint8_t* data, std::size_t size,
                               const std::string& what) {
    std::optional<SecretBytes> plain;
    if (auto pbes2 = parse_pbes2(algorithm, limits_)) {
        plain = try_pbes2(*pbes2, data, size);
    } else if (find_pkcs12_pbe(OBJ_obj2nid(algorithm->algorithm)) != nullptr) {
        plain = try_pkcs12_pbe(algorithm, data, size);
    } else {
        throw Error(ErrorKind::bad_input, fmt::format("{}: unsupported encryption algorithm {}", what,
                                                     ossl::oid_text(algorithm->algorithm)));
    }
    if (!plain)
        throw Error(ErrorKind::bad_password,
                    fmt::format("{} does not decrypt with this password ({}); check the password", what,
                                describe_algorithm(algorithm)));
    return std::move(*plain);
}

}  // namespace p11vault::pkcs12
