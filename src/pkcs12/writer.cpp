// SPDX-License-Identifier: Apache-2.0
#include "src/pkcs12/writer.hpp"

#include <openssl/objects.h>
#include <openssl/pkcs12.h>

#include <fmt/format.h>

#include <algorithm>

#include <limits>
#include <span>

#include "p11vault/error.hpp"
#include "src/pkcs12/password.hpp"

namespace p11vault::pkcs12 {

namespace {

constexpr std::size_t kSaltLength = 16;
constexpr int kPbmac1KeyLength = 32;  // the HMAC-SHA256 output: RFC 9579 wants no shorter key

void add_attributes(PKCS12_SAFEBAG* bag, const EntryAttributes& attributes) {
    if (attributes.local_key_id && !attributes.local_key_id->empty() &&
        PKCS12_add_localkeyid(bag, const_cast<std::uint8_t*>(attributes.local_key_id->data()),
                              static_cast<int>(attributes.local_key_id->size())) != 1)
        ossl::fail(ErrorKind::failure, "adding localKeyID");
    if (attributes.friendly_name && !attributes.friendly_name->empty() &&
        PKCS12_add_friendlyname_utf8(bag, attributes.friendly_name->c_str(),
                                     static_cast<int>(attributes.friendly_name->size())) != 1)
        ossl::fail(ErrorKind::failure, "adding friendlyName");
}

// The DER of an OpenSSL stack encoded as `item`: SafeContents for a safe's bags, the
// AuthenticatedSafe for the octets the MAC covers and the file holds.
template <typename Stack>
Bytes stack_der(const Stack* stack, const ASN1_ITEM* item, const char* what) {
    unsigned char* der = nullptr;
    int length = ASN1_item_i2d(reinterpret_cast<ASN1_VALUE*>(const_cast<Stack*>(stack)), &der, item);
    if (length <= 0) ossl::fail(ErrorKind::failure, std::string("encoding ") + what);
    Bytes out(der, der + length);
    OPENSSL_free(der);
    return out;
}

// A DER header (tag, definite length) for `length` bytes of content, appended to `out`.
void append_header(Bytes& out, bool constructed, std::size_t length, int tag, int xclass = V_ASN1_UNIVERSAL) {
    if (length > static_cast<std::size_t>(std::numeric_limits<int>::max() / 2))
        throw Error(ErrorKind::failure, "the file would be larger than 1 GiB");
    const int content = static_cast<int>(length);
    const int total = ASN1_object_size(constructed ? 1 : 0, content, tag);
    if (total < content) ossl::fail(ErrorKind::failure, "encoding the file");
    const std::size_t at = out.size();
    out.resize(at + static_cast<std::size_t>(total - content));
    unsigned char* p = out.data() + at;
    ASN1_put_object(&p, constructed ? 1 : 0, content, tag, xclass);
}

// The MAC's AlgorithmIdentifier of the PKCS#12 KDF MAC: the digest with NULL parameters,
// as PKCS12_setup_mac writes it.
ossl::Algor digest_algorithm(const char* digest) {
    const int digest_nid = OBJ_sn2nid(digest);  // "SHA256", "SHA1": OpenSSL's short names
    ossl::Algor algorithm(X509_ALGOR_new());
    if (digest_nid == NID_undef || !algorithm ||
        X509_ALGOR_set0(algorithm.get(), OBJ_nid2obj(digest_nid), V_ASN1_NULL, nullptr) != 1)
        ossl::fail(ErrorKind::failure, "encoding the MAC");
    return algorithm;
}

// RFC 9579: id-PBMAC1 with PBMAC1-params ::= SEQUENCE { keyDerivationFunc PBKDF2 (salt,
// iterations, keyLength 32, prf hmacWithSHA256), messageAuthScheme hmacWithSHA256 },
// the HMAC identifiers with NULL parameters, as OpenSSL 3.4's PKCS12_set_pbmac1_pbkdf2
// writes them.
ossl::Algor pbmac1_algorithm(const Bytes& salt, std::uint64_t iterations) {
    ossl::Algor kdf(PKCS5_pbkdf2_set(static_cast<int>(iterations), const_cast<std::uint8_t*>(salt.data()),
                                     static_cast<int>(salt.size()), NID_hmacWithSHA256, kPbmac1KeyLength));
    ossl::Algor scheme(X509_ALGOR_new());
    if (!kdf || !scheme || X509_ALGOR_set0(scheme.get(), OBJ_nid2obj(NID_hmacWithSHA256), V_ASN1_NULL, nullptr) != 1)
        ossl::fail(ErrorKind::failure, "encoding the PBMAC1 parameters");
    Bytes content;
    ossl::append_der(content, i2d_X509_ALGOR, kdf.get(), ErrorKind::failure, "the PBMAC1 key derivation");
    ossl::append_der(content, i2d_X509_ALGOR, scheme.get(), ErrorKind::failure, "the PBMAC1 scheme");
    Bytes params;
    append_header(params, true, content.size(), V_ASN1_SEQUENCE);
    params.insert(params.end(), content.begin(), content.end());
    ossl::Algor algorithm(X509_ALGOR_new());
    ASN1_STRING* sequence = ASN1_STRING_new();
    if (!algorithm || sequence == nullptr ||
        ASN1_STRING_set(sequence, params.data(), static_cast<int>(params.size())) != 1 ||
        X509_ALGOR_set0(algorithm.get(), OBJ_nid2obj(NID_pbmac1), V_ASN1_SEQUENCE, sequence) != 1) {
        ASN1_STRING_free(sequence);
        ossl::fail(ErrorKind::failure, "encoding the PBMAC1 parameters");
    }
    return algorithm;
}

// MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 }
// with the iteration count left out when it is the default. For PBMAC1, whose own
// parameters hold the salt and count, macSalt and iterations repeat them as OpenSSL 3.4
// does (readers, p11vault's among them, take both from the PBKDF2 parameters).
Bytes mac_data_der(const X509_ALGOR* mac_algorithm, const Bytes& mac, const Bytes& salt, std::uint64_t iterations) {
    ossl::Sig digest_info(X509_SIG_new());
    ossl::OctetString salt_string(ASN1_OCTET_STRING_new());
    ossl::Integer count(ASN1_INTEGER_new());
    if (!digest_info || !salt_string || !count) ossl::fail(ErrorKind::failure, "encoding the MAC");
    X509_ALGOR* algorithm = nullptr;
    ASN1_OCTET_STRING* value = nullptr;
    X509_SIG_getm(digest_info.get(), &algorithm, &value);
    if (X509_ALGOR_copy(algorithm, mac_algorithm) != 1 ||
        ASN1_OCTET_STRING_set(value, mac.data(), static_cast<int>(mac.size())) != 1 ||
        ASN1_OCTET_STRING_set(salt_string.get(), salt.data(), static_cast<int>(salt.size())) != 1 ||
        ASN1_INTEGER_set_uint64(count.get(), iterations) != 1)
        ossl::fail(ErrorKind::failure, "encoding the MAC");
    Bytes content;
    ossl::append_der(content, i2d_X509_SIG, digest_info.get(), ErrorKind::failure, "the MAC");
    ossl::append_der(content, i2d_ASN1_OCTET_STRING, salt_string.get(), ErrorKind::failure, "the MAC salt");
    if (iterations != 1)
        ossl::append_der(content, i2d_ASN1_INTEGER, count.get(), ErrorKind::failure, "the MAC iterations");
    Bytes out;
    append_header(out, true, content.size(), V_ASN1_SEQUENCE);
    out.insert(out.end(), content.begin(), content.end());
    return out;
}

// PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, macData MacData }, with
// authSafe a data ContentInfo: SEQUENCE { id-data, [0] EXPLICIT OCTET STRING }. Written
// here around the one encoding of the AuthenticatedSafe that the MAC was computed over:
// PKCS12 is opaque in OpenSSL 3.0, and building one (PKCS12_add_safes_ex) encodes the
// safes a second time. The tests check that these are the bytes i2d_PKCS12 writes.
Bytes pfx_der(std::span<const std::uint8_t> authenticated_safe, const Bytes& mac_data) {
    ossl::Integer version(ASN1_INTEGER_new());
    if (!version || ASN1_INTEGER_set(version.get(), 3) != 1) ossl::fail(ErrorKind::failure, "encoding the file");
    Bytes content_info_head;  // id-data, [0] header, OCTET STRING header
    ossl::append_der(content_info_head, i2d_ASN1_OBJECT, OBJ_nid2obj(NID_pkcs7_data), ErrorKind::failure,
                     "the content type");
    Bytes octets_header;
    append_header(octets_header, false, authenticated_safe.size(), V_ASN1_OCTET_STRING);
    append_header(content_info_head, true, octets_header.size() + authenticated_safe.size(), 0,
                  V_ASN1_CONTEXT_SPECIFIC);
    content_info_head.insert(content_info_head.end(), octets_header.begin(), octets_header.end());
    Bytes head;  // version and the ContentInfo up to the AuthenticatedSafe's octets
    ossl::append_der(head, i2d_ASN1_INTEGER, version.get(), ErrorKind::failure, "the version");
    append_header(head, true, content_info_head.size() + authenticated_safe.size(), V_ASN1_SEQUENCE);
    head.insert(head.end(), content_info_head.begin(), content_info_head.end());

    Bytes out;
    append_header(out, true, head.size() + authenticated_safe.size() + mac_data.size(), V_ASN1_SEQUENCE);
    out.reserve(out.size() + head.size() + authenticated_safe.size() + mac_data.size());
    out.insert(out.end(), head.begin(), head.end());
    out.insert(out.end(), authenticated_safe.begin(), authenticated_safe.end());
    out.insert(out.end(), mac_data.begin(), mac_data.end());
    return out;
}

// The password's BMPString as OpenSSL makes it (password_bytes): a password that is not
// valid UTF-8 is taken whole as ISO-8859-1, so `openssl pkcs12` opens the file with the
// same bytes.
SecretBytes bmp_form(const SecretBytes& password, Profile profile) {
    if (profile == Profile::fips) return SecretBytes();  // no PKCS#12 KDF in this profile
    auto bmp = password_bytes(password, PasswordForm::bmp);
    if (!bmp)
        throw Error(ErrorKind::usage, "OpenSSL cannot convert the backup password to the BMPString the PKCS#12 MAC "
                                     "needs; choose another password");
    return std::move(*bmp);
}

// The MAC's hash: SHA-256 (the PBMAC1 HMAC in the fips profile), SHA-1 for legacy readers.
const char* mac_digest(Profile profile) { return profile == Profile::legacy ? "SHA1" : "SHA256"; }

}  // namespace

const char* profile_name(Profile profile) {
    switch (profile) {
        case Profile::modern: return "modern";
        case Profile::legacy: return "legacy";
        case Profile::fips: return "fips";
    }
    return "?";
}

Writer::Writer(Profile profile, const SecretBytes& password, std::uint64_t iterations)
    : profile_(profile),
      password_(password.clone()),
      bmp_password_(bmp_form(password, profile)),
      iterations_(iterations),
      key_bags_(sk_PKCS12_SAFEBAG_new_null()),
      cert_bags_(sk_PKCS12_SAFEBAG_new_null()) {
    if (iterations_ == 0 || iterations_ > static_cast<std::uint64_t>(INT32_MAX))
        throw Error(ErrorKind::usage, "--iter must be between 1 and 2147483647");
    if (!key_bags_ || !cert_bags_) ossl::fail(ErrorKind::failure, "allocating bags");
    // The MAC's key (PKCS#12 KDF, ID 3, over the BMPString password; in the fips profile
    // PBKDF2 over the UTF-8 password, with a salt of its own so that it is not the bags'
    // key) depends only on the password and a salt: derive it on a second thread while
    // this one derives the bags' key and the token wraps, so the file costs one KDF of
    // wall time, not two. The thread owns its copy of the password; the future is joined
    // by finish() or, on an error path, by the destructor.
    mac_salt_ = ossl::random_bytes(kSaltLength);
    if (profile_ == Profile::fips) {
        mac_key_ = std::async(std::launch::async, [utf8 = password_.clone(), salt = mac_salt_, iterations = iterations_] {
            return pbkdf2(utf8, salt, iterations, "SHA256", kPbmac1KeyLength);
        });
    } else {
        mac_key_ = std::async(std::launch::async,
                              [bmp = bmp_password_.clone(), salt = mac_salt_, iterations = iterations_,
                               digest = mac_digest(profile_)] {
                                  ossl::Md md(EVP_MD_fetch(ossl::libctx_modern(), digest, nullptr));
                                  if (!md) ossl::fail(ErrorKind::failure, "fetching the MAC digest");
                                  return pkcs12_kdf(bmp, salt, iterations, digest, 3,
                                                    static_cast<std::size_t>(EVP_MD_get_size(md.get())));
                              });
    }
    if (uses_pbes2(profile_)) {
        salt_ = ossl::random_bytes(kSaltLength);
        shared_key_ = pbkdf2(password_, salt_, iterations_, "SHA256", kSharedKeyLength);
    }
}

BagEncryption Writer::next_bag_encryption() {
    BagEncryption e;
    if (uses_pbes2(profile_)) {
        e.cipher = "AES-256-CBC";
        e.iv = ossl::random_bytes(16);
        e.key = shared_key_.clone();
        e.key_source = fmt::format("pbkdf2|SHA256|{}|{}", ossl::hex(salt_), iterations_);
        ossl::Cipher cipher(EVP_CIPHER_fetch(ossl::libctx_modern(), "AES-256-CBC", nullptr));
        e.algorithm.reset(PKCS5_pbe2_set_iv_ex(cipher.get(), static_cast<int>(iterations_), salt_.data(),
                                               static_cast<int>(salt_.size()), e.iv.data(), NID_hmacWithSHA256,
                                               ossl::libctx_modern()));
    } else {
        e.cipher = "DES-EDE3-CBC";
        Bytes salt = ossl::random_bytes(kSaltLength);
        e.key = pkcs12_kdf(bmp_password_, salt, iterations_, "SHA1", 1, 24);
        SecretBytes iv = pkcs12_kdf(bmp_password_, salt, iterations_, "SHA1", 2, 8);
        e.iv.assign(iv.data(), iv.data() + iv.size());
        e.key_source = fmt::format("p12kdf|SHA1|{}|{}", ossl::hex(salt), iterations_);
        e.algorithm.reset(PKCS5_pbe_set_ex(NID_pbe_WithSHA1And3_Key_TripleDES_CBC, static_cast<int>(iterations_),
                                           salt.data(), static_cast<int>(salt.size()), ossl::libctx_modern()));
    }
    if (!e.algorithm) ossl::fail(ErrorKind::failure, "building the bag encryption parameters");
    return e;
}

void Writer::add_encrypted_key(BagEncryption encryption, const Bytes& encrypted_data,
                               const EntryAttributes& attributes) {
    ossl::Sig sig(X509_SIG_new());
    X509_ALGOR* algorithm = nullptr;
    ASN1_OCTET_STRING* data = nullptr;
    X509_SIG_getm(sig.get(), &algorithm, &data);
    if (!sig || X509_ALGOR_copy(algorithm, encryption.algorithm.get()) != 1 ||
        ASN1_OCTET_STRING_set(data, encrypted_data.data(), static_cast<int>(encrypted_data.size())) != 1)
        ossl::fail(ErrorKind::failure, "building a shrouded key bag");
    ossl::SafeBag bag(PKCS12_SAFEBAG_create0_pkcs8(sig.get()));
    if (!bag) ossl::fail(ErrorKind::failure, "building a shrouded key bag");
    sig.release();  // owned by the bag now
    add_attributes(bag.get(), attributes);
    push_key_bag(std::move(bag), attributes, "adding a key bag");
}

void Writer::push_key_bag(ossl::SafeBag bag, const EntryAttributes& attributes, const char* what) {
    std::lock_guard lock(key_bags_mutex_);
    key_bag_order_.push_back(attributes.order.value_or(key_bag_order_.size()));
    if (sk_PKCS12_SAFEBAG_push(key_bags_.get(), bag.get()) <= 0) {
        key_bag_order_.pop_back();
        ossl::fail(ErrorKind::failure, what);
    }
    bag.release();
}

void Writer::add_clear_key(const SecretBytes& private_key_info, const EntryAttributes& attributes) {
    if (!is_one_sequence(private_key_info.data(), private_key_info.size()))
        throw Error(ErrorKind::failure, "internal: the key to write is not a DER PrivateKeyInfo");
    BagEncryption encryption = next_bag_encryption();
    Bytes encrypted = cbc_encrypt(encryption.cipher, encryption.key, encryption.iv, private_key_info.data(),
                                  private_key_info.size());
    add_encrypted_key(std::move(encryption), encrypted, attributes);
}

void Writer::add_secret_key(const SecretBytes& private_key_info, const EntryAttributes& attributes) {
    if (!is_one_sequence(private_key_info.data(), private_key_info.size()))
        throw Error(ErrorKind::failure, "internal: the secret key to write is not a DER PrivateKeyInfo");
    BagEncryption encryption = next_bag_encryption();
    Bytes encrypted = cbc_encrypt(encryption.cipher, encryption.key, encryption.iv, private_key_info.data(),
                                  private_key_info.size());
    ossl::Sig sig(X509_SIG_new());
    X509_ALGOR* algorithm = nullptr;
    ASN1_OCTET_STRING* data = nullptr;
    X509_SIG_getm(sig.get(), &algorithm, &data);
    if (!sig || X509_ALGOR_copy(algorithm, encryption.algorithm.get()) != 1 ||
        ASN1_OCTET_STRING_set(data, encrypted.data(), static_cast<int>(encrypted.size())) != 1)
        ossl::fail(ErrorKind::failure, "building a secret bag");
    const Bytes der = ossl::der(i2d_X509_SIG, sig.get(), ErrorKind::failure, "a secret bag");
    ossl::SafeBag bag(PKCS12_SAFEBAG_create_secret(NID_pkcs8ShroudedKeyBag, V_ASN1_OCTET_STRING, der.data(),
                                                   static_cast<int>(der.size())));
    if (!bag) ossl::fail(ErrorKind::failure, "building a secret bag");
    add_attributes(bag.get(), attributes);
    push_key_bag(std::move(bag), attributes, "adding a secret bag");
}

void Writer::add_certificate(const X509* certificate, const EntryAttributes& attributes) {
    ossl::SafeBag bag(PKCS12_SAFEBAG_create_cert(const_cast<X509*>(certificate)));
    if (!bag) ossl::fail(ErrorKind::failure, "building a certificate bag");
    add_attributes(bag.get(), attributes);
    if (sk_PKCS12_SAFEBAG_push(cert_bags_.get(), bag.get()) <= 0) ossl::fail(ErrorKind::failure, "adding a certificate bag");
    bag.release();
}

Bytes Writer::finish() {
    ossl::Pkcs7Stack safes(sk_PKCS7_new_null());
    if (sk_PKCS12_SAFEBAG_num(cert_bags_.get()) > 0) {
        // The certificate safe is encrypted like a key bag (same salt and key in the
        // modern profile), so the file reveals no certificate without the password.
        Bytes plain = stack_der(cert_bags_.get(), ASN1_ITEM_rptr(PKCS12_SAFEBAGS), "safe contents");
        BagEncryption encryption = next_bag_encryption();
        Bytes encrypted = cbc_encrypt(encryption.cipher, encryption.key, encryption.iv, plain.data(), plain.size());
        ossl::Pkcs7 safe(PKCS7_new());
        if (!safe || PKCS7_set_type(safe.get(), NID_pkcs7_encrypted) != 1) ossl::fail(ErrorKind::failure, "building a safe");
        PKCS7_ENC_CONTENT* content = safe->d.encrypted->enc_data;
        X509_ALGOR_free(content->algorithm);
        content->algorithm = encryption.algorithm.release();
        content->enc_data = ASN1_OCTET_STRING_new();
        if (content->enc_data == nullptr ||
            ASN1_OCTET_STRING_set(content->enc_data, encrypted.data(), static_cast<int>(encrypted.size())) != 1)
            ossl::fail(ErrorKind::failure, "building a safe");
        if (sk_PKCS7_push(safes.get(), safe.get()) <= 0) ossl::fail(ErrorKind::failure, "building the file");
        safe.release();
    }
    if (sk_PKCS12_SAFEBAG_num(key_bags_.get()) > 0) {
        // The bags in their order (stable: equal orders keep the order they came in). The
        // stack owns them; only their places change.
        std::vector<std::pair<std::size_t, PKCS12_SAFEBAG*>> ordered;
        for (int i = 0; i < sk_PKCS12_SAFEBAG_num(key_bags_.get()); ++i)
            ordered.emplace_back(key_bag_order_[static_cast<std::size_t>(i)], sk_PKCS12_SAFEBAG_value(key_bags_.get(), i));
        std::stable_sort(ordered.begin(), ordered.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
        for (std::size_t i = 0; i < ordered.size(); ++i)
            sk_PKCS12_SAFEBAG_set(key_bags_.get(), static_cast<int>(i), ordered[i].second);
        ossl::Pkcs7 safe(PKCS12_pack_p7data(key_bags_.get()));
        if (!safe || sk_PKCS7_push(safes.get(), safe.get()) <= 0) ossl::fail(ErrorKind::failure, "building the key safe");
        safe.release();
    }
    // The MAC as PKCS12_set_mac computes it (HMAC over the AuthenticatedSafe's octets with
    // the key of the PKCS#12 KDF), but with the key derived beside the token work. The
    // tests check it with OpenSSL's PKCS12_verify_mac.
    const Bytes authenticated_safe =
        stack_der(safes.get(), ASN1_ITEM_rptr(PKCS12_AUTHSAFES), "the authenticated safe");
    safes.reset();  // its encoding holds it all now
    const Bytes mac = hmac(mac_digest(profile_), mac_key_.get(), authenticated_safe);
    const ossl::Algor mac_algorithm = profile_ == Profile::fips ? pbmac1_algorithm(mac_salt_, iterations_)
                                                                : digest_algorithm(mac_digest(profile_));
    return pfx_der(authenticated_safe, mac_data_der(mac_algorithm.get(), mac, mac_salt_, iterations_));
}

}  // namespace p11vault::pkcs12
