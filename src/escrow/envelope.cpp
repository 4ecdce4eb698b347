// SPDX-License-Identifier: Apache-2.0
#include "src/escrow/envelope.hpp"

#include <openssl/cms.h>
#include <openssl/core_names.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <cstring>

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "src/ossl.hpp"

namespace p11vault::escrow {

namespace {

using Cms = ossl::Owned<CMS_ContentInfo, CMS_ContentInfo_free>;

constexpr const char* kAuthEnvelopedData = "1.2.840.113549.1.9.16.1.23";
constexpr const char* kRsaesOaep = "1.2.840.113549.1.1.7";
constexpr const char* kRsaEncryption = "1.2.840.113549.1.1.1";
constexpr const char* kMgf1 = "1.2.840.113549.1.1.8";
constexpr const char* kSha256 = "2.16.840.1.101.3.4.2.1";

struct NamedOid {
    const char* oid;
    const char* name;
    std::size_t size;
};
// dhSinglePass-stdDH-shaXkdf-scheme (RFC 5753): the digest of the X9.63 KDF.
constexpr NamedOid kAgreementSchemes[] = {
    {"1.3.132.1.11.1", "SHA256", 0}, {"1.3.132.1.11.2", "SHA384", 0}, {"1.3.132.1.11.3", "SHA512", 0}};
constexpr NamedOid kWrapAlgorithms[] = {
    {"2.16.840.1.101.3.4.1.5", "AES-128-WRAP", 16},
    {"2.16.840.1.101.3.4.1.25", "AES-192-WRAP", 24},
    {"2.16.840.1.101.3.4.1.45", "AES-256-WRAP", 32}};
constexpr NamedOid kContentAlgorithms[] = {
    {"2.16.840.1.101.3.4.1.6", "AES-128-GCM", 16},
    {"2.16.840.1.101.3.4.1.26", "AES-192-GCM", 24},
    {"2.16.840.1.101.3.4.1.46", "AES-256-GCM", 32}};

template <std::size_t N>
const NamedOid* find_oid(const NamedOid (&table)[N], const std::string& oid) {
    for (const auto& entry : table)
        if (oid == entry.oid) return &entry;
    return nullptr;
}

void set_parameter(EVP_PKEY_CTX* context, const char* name, const char* value) {
    if (context == nullptr || EVP_PKEY_CTX_ctrl_str(context, name, value) <= 0)
        ossl::fail(static_cast<int>(ErrorKind::failure), fmt::format("setting {} to {} for a recipient", name, value));
}

Bytes bytes_of(std::span<const std::uint8_t> span) { return Bytes(span.begin(), span.end()); }

// AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }
struct Algorithm {
    std::string oid;
    std::optional<der::Element> parameters;
};
Algorithm read_algorithm(const der::Element& element, const std::string& what) {
    der::Reader reader(element.content, what);
    Algorithm out;
    out.oid = der::oid_text(reader.next(der::kOid));
    if (!reader.empty()) out.parameters = reader.next_any();
    reader.expect_end();
    return out;
}

bool is_sha256(const der::Element& element, const std::string& what) {
    Algorithm digest = read_algorithm(element, what);
    return digest.oid == kSha256 && (!digest.parameters || digest.parameters->tag == der::kNull);
}

// RSAES-OAEP-params with SHA-256, MGF1-SHA-256 and an empty label; anything else is
// refused (the token is asked for exactly this mechanism).
void check_oaep_parameters(const std::optional<der::Element>& parameters, const std::string& what) {
    const std::string problem = what + " uses RSAES-OAEP with other parameters than SHA-256 and MGF1-SHA-256";
    if (!parameters || parameters->tag != der::kSequence) throw Error(ErrorKind::bad_input, problem);
    der::Reader reader(parameters->content, what);
    der::Element hash, mask, label;
    if (!reader.next_if(der::context(0, true), hash) || !reader.next_if(der::context(1, true), mask))
        throw Error(ErrorKind::bad_input, problem);
    if (reader.next_if(der::context(2, true), label)) throw Error(ErrorKind::bad_input, what + " uses an OAEP label");
    reader.expect_end();
    der::Reader hash_reader(hash.content, what);
    if (!is_sha256(hash_reader.next(der::kSequence), what)) throw Error(ErrorKind::bad_input, problem);
    der::Reader mask_reader(mask.content, what);
    Algorithm mgf = read_algorithm(mask_reader.next(der::kSequence), what);
    if (mgf.oid != kMgf1 || !mgf.parameters || !is_sha256(*mgf.parameters, what))
        throw Error(ErrorKind::bad_input, problem);
}

// rid: IssuerAndSerialNumber, or [0] SubjectKeyIdentifier.
RecipientId read_recipient_id(der::Reader& reader) {
    RecipientId id;
    der::Element element;
    if (reader.next_if(der::context(0, false), element)) {
        id.subject_key_id = bytes_of(element.content);
        return id;
    }
    der::Element issuer_and_serial = reader.next(der::kSequence);
    der::Reader inner(issuer_and_serial.content, reader.what());
    id.issuer = bytes_of(inner.next(der::kSequence).encoding);
    id.serial = bytes_of(inner.next(der::kInteger).content);
    inner.expect_end();
    return id;
}

RecipientEntry read_key_transport(const der::Element& element, const std::string& what) {
    der::Reader reader(element.content, what);
    reader.next(der::kInteger);  // version 0 or 2
    RecipientEntry entry;
    entry.kind = RecipientKind::key_transport;
    entry.id = read_recipient_id(reader);
    Algorithm algorithm = read_algorithm(reader.next(der::kSequence), what);
    if (algorithm.oid == kRsaEncryption)
        throw Error(ErrorKind::bad_input, what + " uses RSA PKCS#1 v1.5 key transport, which p11vault does not accept "
                                                "(RSAES-OAEP only)");
    if (algorithm.oid != kRsaesOaep)
        throw Error(ErrorKind::bad_input, fmt::format("{} uses key transport algorithm {}, which p11vault does not "
                                                     "support",
                                                     what, algorithm.oid));
    check_oaep_parameters(algorithm.parameters, what);
    entry.algorithm = "RSAES-OAEP-SHA256";
    entry.encrypted_key = bytes_of(reader.next(der::kOctetString).content);
    reader.expect_end();
    return entry;
}

// KeyAgreeRecipientInfo; one entry per RecipientEncryptedKey.
void read_key_agreement(const der::Element& element, const std::string& what, std::vector<RecipientEntry>& out) {
    der::Reader reader(element.content, what);
    reader.next(der::kInteger);  // version 3
    RecipientEntry common;
    common.kind = RecipientKind::key_agreement;
    der::Reader originator(reader.next(der::context(0, true)).content, what);
    der::Element key;
    if (!originator.next_if(der::context(1, true), key))
        throw Error(ErrorKind::bad_input, what + ": the originator is not an ephemeral public key");
    der::Reader key_reader(key.content, what);
    key_reader.next(der::kSequence);  // id-ecPublicKey; the curve is the officer's
    der::Element point = key_reader.next(der::kBitString);
    if (point.content.size() < 2 || point.content[0] != 0)
        throw Error(ErrorKind::bad_input, what + ": the originator's public key is malformed");
    common.originator_point = bytes_of(point.content.subspan(1));
    der::Element ukm;
    if (reader.next_if(der::context(1, true), ukm)) {
        der::Reader ukm_reader(ukm.content, what);
        common.ukm = bytes_of(ukm_reader.next(der::kOctetString).content);
    }
    Algorithm scheme = read_algorithm(reader.next(der::kSequence), what);
    const NamedOid* kdf = find_oid(kAgreementSchemes, scheme.oid);
    if (kdf == nullptr)
        throw Error(ErrorKind::bad_input, fmt::format("{} uses key agreement scheme {}; p11vault reads "
                                                     "dhSinglePass-stdDH-sha256/384/512kdf-scheme",
                                                     what, scheme.oid));
    common.kdf_digest = kdf->name;
    common.algorithm = fmt::format("ECDH-stdDH-{}-KDF", kdf->name);
    if (!scheme.parameters || scheme.parameters->tag != der::kSequence)
        throw Error(ErrorKind::bad_input, what + ": the key agreement names no key-wrap algorithm");
    Algorithm wrap = read_algorithm(*scheme.parameters, what);
    const NamedOid* wrap_entry = find_oid(kWrapAlgorithms, wrap.oid);
    if (wrap_entry == nullptr)
        throw Error(ErrorKind::bad_input, fmt::format("{} uses key-wrap algorithm {}; p11vault reads AES key wrap",
                                                     what, wrap.oid));
    common.wrap_algorithm = bytes_of(scheme.parameters->encoding);
    common.wrap_key_length = wrap_entry->size;
    der::Reader keys(reader.next(der::kSequence).content, what);
    reader.expect_end();
    while (!keys.empty()) {
        der::Reader key_entry(keys.next(der::kSequence).content, what);
        RecipientEntry entry;
        entry.kind = common.kind;
        entry.algorithm = common.algorithm;
        entry.originator_point = common.originator_point;
        entry.ukm = common.ukm;
        entry.wrap_algorithm = common.wrap_algorithm;
        entry.wrap_key_length = common.wrap_key_length;
        entry.kdf_digest = common.kdf_digest;
        der::Element rkey_id;
        if (key_entry.next_if(der::context(0, true), rkey_id)) {  // RecipientKeyIdentifier
            der::Reader rkey(rkey_id.content, what);
            entry.id.subject_key_id = bytes_of(rkey.next(der::kOctetString).content);
        } else {
            entry.id = read_recipient_id(key_entry);
        }
        entry.encrypted_key = bytes_of(key_entry.next(der::kOctetString).content);
        key_entry.expect_end();
        out.push_back(std::move(entry));
    }
}

Bytes name_der(const X509_NAME* name) {
    unsigned char* der = nullptr;
    const int length = i2d_X509_NAME(name, &der);
    if (length <= 0) return {};
    Bytes out(der, der + length);
    OPENSSL_free(der);
    return out;
}

}  // namespace

Bytes seal(std::span<const std::uint8_t> content, const std::vector<X509*>& officers) {
    ossl::Cipher cipher(EVP_CIPHER_fetch(ossl::libctx_modern(), "AES-256-GCM", nullptr));
    if (!cipher) ossl::fail(static_cast<int>(ErrorKind::failure), "AES-256-GCM");
    Cms cms(CMS_AuthEnvelopedData_create_ex(cipher.get(), ossl::libctx_modern(), nullptr));
    if (!cms) ossl::fail(static_cast<int>(ErrorKind::failure), "creating the CMS AuthEnvelopedData");
    // The content goes in the file (CMS_encrypt does the same; a new structure is detached).
    if (CMS_set_detached(cms.get(), 0) != 1) ossl::fail(static_cast<int>(ErrorKind::failure), "CMS_set_detached");
    for (X509* officer : officers) {
        // CMS_KEY_PARAM: the recipient's key context is made now, so that the scheme's
        // parameters can be set before CMS_final encrypts the CEK to it.
        CMS_RecipientInfo* recipient = CMS_add1_recipient_cert(cms.get(), officer, CMS_KEY_PARAM);
        if (recipient == nullptr)
            ossl::fail(static_cast<int>(ErrorKind::bad_input),
                       "adding recipient " + ossl::name_text(X509_get_subject_name(officer)));
        EVP_PKEY_CTX* context = CMS_RecipientInfo_get0_pkey_ctx(recipient);
        if (CMS_RecipientInfo_type(recipient) == CMS_RECIPINFO_TRANS) {
            set_parameter(context, "rsa_padding_mode", "oaep");
            set_parameter(context, "rsa_oaep_md", "sha256");
            set_parameter(context, "rsa_mgf1_md", "sha256");
        } else if (CMS_RecipientInfo_type(recipient) == CMS_RECIPINFO_AGREE) {
            // OpenSSL's default KDF digest for ECDH in CMS is SHA-1.
            set_parameter(context, "ecdh_kdf_md", "sha256");
        } else {
            throw Error(ErrorKind::bad_input, "recipient " + ossl::name_text(X509_get_subject_name(officer)) +
                                                 " has a key that is neither RSA nor EC");
        }
    }
    ossl::Bio in(BIO_new_mem_buf(content.data(), static_cast<int>(content.size())));
    if (!in || CMS_final(cms.get(), in.get(), nullptr, CMS_BINARY) != 1)
        ossl::fail(static_cast<int>(ErrorKind::failure), "encrypting the escrow envelope");
    unsigned char* der = nullptr;
    const int length = i2d_CMS_ContentInfo(cms.get(), &der);
    if (length <= 0) ossl::fail(static_cast<int>(ErrorKind::failure), "encoding the escrow envelope");
    Bytes out(der, der + length);
    OPENSSL_free(der);
    return out;
}

bool RecipientId::matches(const X509* cert) const {
    if (!subject_key_id.empty()) {
        const ASN1_OCTET_STRING* key_id = X509_get0_subject_key_id(const_cast<X509*>(cert));
        return key_id != nullptr && ossl::octets(key_id) == subject_key_id;
    }
    const ASN1_INTEGER* cert_serial = X509_get0_serialNumber(cert);
    return name_der(X509_get_issuer_name(cert)) == issuer && ossl::octets(cert_serial) == serial;
}

std::string RecipientId::issuer_text() const {
    const unsigned char* p = issuer.data();
    ossl::Name name(d2i_X509_NAME(nullptr, &p, static_cast<long>(issuer.size())));
    return name ? ossl::name_text(name.get()) : std::string("(unreadable)");
}

std::string RecipientId::serial_hex() const { return ossl::hex(serial); }

std::string RecipientId::text() const {
    if (!subject_key_id.empty()) return "subject key identifier " + ossl::fingerprint(subject_key_id);
    return fmt::format("issuer {}, serial 0x{}", issuer_text(), serial_hex());
}

bool looks_like_envelope(std::span<const std::uint8_t> data) {
    try {
        der::Reader outer(data, "the file");
        der::Reader content_info(outer.next(der::kSequence).content, "the file");
        return der::oid_text(content_info.next(der::kOid)) == kAuthEnvelopedData;
    } catch (const Error&) {
        return false;
    }
}

Envelope parse_envelope(std::span<const std::uint8_t> data, const std::string& what) {
    der::Reader outer(data, what);
    der::Reader content_info(outer.next(der::kSequence).content, what);
    outer.expect_end();
    if (der::oid_text(content_info.next(der::kOid)) != kAuthEnvelopedData)
        throw Error(ErrorKind::bad_input, what + " is not a CMS AuthEnvelopedData");
    der::Reader explicit_content(content_info.next(der::context(0, true)).content, what);
    content_info.expect_end();
    der::Reader body(explicit_content.next(der::kSequence).content, what);
    explicit_content.expect_end();

    Envelope envelope;
    if (der::small_integer(body.next(der::kInteger), what) != 0)
        throw Error(ErrorKind::bad_input, what + ": AuthEnvelopedData version is not 0");
    der::Element ignored;
    body.next_if(der::context(0, true), ignored);  // originatorInfo: certificates p11vault does not need
    der::Reader infos(body.next(der::kSet).content, what);
    std::size_t index = 0;
    while (!infos.empty()) {
        ++index;
        const std::string where = fmt::format("{}, recipient {}", what, index);
        der::Element info = infos.next_any();
        if (info.tag == der::kSequence) envelope.recipients.push_back(read_key_transport(info, where));
        else if (info.tag == der::context(1, true)) read_key_agreement(info, where, envelope.recipients);
        else
            throw Error(ErrorKind::bad_input, where + " is neither key transport nor key agreement (a password or "
                                                     "KEK recipient, which p11vault does not open)");
    }
    if (envelope.recipients.empty()) throw Error(ErrorKind::bad_input, what + " has no recipient");

    der::Reader encrypted(body.next(der::kSequence).content, what);
    encrypted.next(der::kOid);  // the content type: the PKCS#12 or share inside is checked when read
    Algorithm cipher = read_algorithm(encrypted.next(der::kSequence), what);
    const NamedOid* content_algorithm = find_oid(kContentAlgorithms, cipher.oid);
    if (content_algorithm == nullptr)
        throw Error(ErrorKind::bad_input,
                    fmt::format("{}: content encryption {} is not AES-GCM", what, cipher.oid));
    envelope.content_algorithm = content_algorithm->name;
    envelope.key_length = content_algorithm->size;
    if (!cipher.parameters || cipher.parameters->tag != der::kSequence)
        throw Error(ErrorKind::bad_input, what + ": AES-GCM without its parameters");
    der::Reader gcm(cipher.parameters->content, what);
    envelope.nonce = bytes_of(gcm.next(der::kOctetString).content);
    std::size_t tag_length = 12;
    if (!gcm.empty()) tag_length = der::small_integer(gcm.next(der::kInteger), what);
    gcm.expect_end();
    if (envelope.nonce.empty() || envelope.nonce.size() > 64 || tag_length < 12 || tag_length > 16)
        throw Error(ErrorKind::bad_input, what + ": AES-GCM parameters out of range");
    der::Element content;
    if (encrypted.next_if(der::context(0, false), content)) {
        envelope.ciphertext = bytes_of(content.content);
    } else if (encrypted.next_if(der::context(0, true), content)) {  // constructed: OCTET STRING pieces
        der::Reader pieces(content.content, what);
        while (!pieces.empty()) {
            auto piece = pieces.next(der::kOctetString).content;
            envelope.ciphertext.insert(envelope.ciphertext.end(), piece.begin(), piece.end());
        }
    } else {
        throw Error(ErrorKind::bad_input, what + " holds no encrypted content (detached content is not supported)");
    }
    encrypted.expect_end();
    der::Element attributes;
    if (body.next_if(der::context(1, true), attributes)) {
        // RFC 5083: the MAC covers the DER of authAttrs with its EXPLICIT SET OF tag.
        envelope.aad = der::encode(der::kSet, attributes.content);
    }
    envelope.tag = bytes_of(body.next(der::kOctetString).content);
    body.next_if(der::context(2, true), ignored);
    body.expect_end();
    if (envelope.tag.size() != tag_length)
        throw Error(ErrorKind::bad_input, what + ": the authentication tag has the wrong length");
    return envelope;
}

std::optional<SecretBytes> open_content(const Envelope& envelope, const SecretBytes& cek) {
    if (cek.size() != envelope.key_length) return std::nullopt;
    ossl::Cipher cipher(EVP_CIPHER_fetch(ossl::libctx_modern(), envelope.content_algorithm.c_str(), nullptr));
    ossl::CipherCtx context(EVP_CIPHER_CTX_new());
    if (!cipher || !context) ossl::fail(static_cast<int>(ErrorKind::failure), envelope.content_algorithm);
    int nonce_length = static_cast<int>(envelope.nonce.size());
    if (EVP_DecryptInit_ex2(context.get(), cipher.get(), nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_SET_IVLEN, nonce_length, nullptr) != 1 ||
        EVP_DecryptInit_ex2(context.get(), nullptr, cek.data(), envelope.nonce.data(), nullptr) != 1)
        ossl::fail(static_cast<int>(ErrorKind::failure), "starting " + envelope.content_algorithm);
    int length = 0;
    if (!envelope.aad.empty() &&
        EVP_DecryptUpdate(context.get(), nullptr, &length, envelope.aad.data(), static_cast<int>(envelope.aad.size())) != 1)
        ossl::fail(static_cast<int>(ErrorKind::failure), "authenticating the attributes");
    SecretBytes plain(envelope.ciphertext.size() + 16);
    int written = 0;
    if (EVP_DecryptUpdate(context.get(), plain.data(), &written, envelope.ciphertext.data(),
                          static_cast<int>(envelope.ciphertext.size())) != 1)
        ossl::fail(static_cast<int>(ErrorKind::failure), "decrypting the content");
    Bytes tag = envelope.tag;
    if (EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag.size()), tag.data()) != 1)
        ossl::fail(static_cast<int>(ErrorKind::failure), "setting the GCM tag");
    int final_length = 0;
    if (EVP_DecryptFinal_ex(context.get(), plain.data() + written, &final_length) != 1) {
        ossl::last_error();
        return std::nullopt;
    }
    plain.resize(static_cast<std::size_t>(written + final_length));
    return plain;
}

std::optional<SecretBytes> unwrap_agreed_key(const RecipientEntry& recipient, const SecretBytes& shared_secret) {
    // ECC-CMS-SharedInfo ::= SEQUENCE { keyInfo AlgorithmIdentifier, entityUInfo [0]
    // EXPLICIT OCTET STRING OPTIONAL, suppPubInfo [2] EXPLICIT OCTET STRING } (RFC 5753 7.2),
    // suppPubInfo the KEK's length in bits, 32-bit big-endian.
    const std::uint32_t bits = static_cast<std::uint32_t>(recipient.wrap_key_length * 8);
    const std::uint8_t bits_be[4] = {static_cast<std::uint8_t>(bits >> 24), static_cast<std::uint8_t>(bits >> 16),
                                     static_cast<std::uint8_t>(bits >> 8), static_cast<std::uint8_t>(bits)};
    Bytes inner = recipient.wrap_algorithm;
    if (recipient.ukm) {
        Bytes ukm = der::encode(der::kOctetString, *recipient.ukm);
        Bytes tagged = der::encode(der::context(0, true), ukm);
        inner.insert(inner.end(), tagged.begin(), tagged.end());
    }
    Bytes supp = der::encode(der::context(2, true), der::encode(der::kOctetString, bits_be));
    inner.insert(inner.end(), supp.begin(), supp.end());
    Bytes shared_info = der::encode(der::kSequence, inner);

    ossl::Kdf kdf(EVP_KDF_fetch(ossl::libctx_modern(), "X963KDF", nullptr));
    ossl::KdfCtx kdf_context(kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr);
    if (!kdf_context) ossl::fail(static_cast<int>(ErrorKind::failure), "X9.63 KDF");
    std::string digest = recipient.kdf_digest;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest.data(), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<std::uint8_t*>(shared_secret.data()),
                                          shared_secret.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, shared_info.data(), shared_info.size()),
        OSSL_PARAM_construct_end()};
    SecretBytes kek(recipient.wrap_key_length);
    if (EVP_KDF_derive(kdf_context.get(), kek.data(), kek.size(), params) != 1)
        ossl::fail(static_cast<int>(ErrorKind::failure), "X9.63 KDF");

    const char* wrap_name = kek.size() == 16 ? "AES-128-WRAP" : kek.size() == 24 ? "AES-192-WRAP" : "AES-256-WRAP";
    ossl::Cipher wrap(EVP_CIPHER_fetch(ossl::libctx_modern(), wrap_name, nullptr));
    ossl::CipherCtx context(EVP_CIPHER_CTX_new());
    if (!wrap || !context || recipient.encrypted_key.size() < 24 || recipient.encrypted_key.size() > 1024)
        return std::nullopt;
    if (EVP_DecryptInit_ex2(context.get(), wrap.get(), kek.data(), nullptr, nullptr) != 1)
        ossl::fail(static_cast<int>(ErrorKind::failure), wrap_name);
    SecretBytes cek(recipient.encrypted_key.size());
    int written = 0, final_length = 0;
    if (EVP_DecryptUpdate(context.get(), cek.data(), &written, recipient.encrypted_key.data(),
                          static_cast<int>(recipient.encrypted_key.size())) != 1 ||
        EVP_DecryptFinal_ex(context.get(), cek.data() + written, &final_length) != 1) {
        ossl::last_error();
        return std::nullopt;
    }
    cek.resize(static_cast<std::size_t>(written + final_length));
    return cek;
}

std::optional<SecretBytes> oaep_sha256_decode(const SecretBytes& encoded, std::size_t modulus_bytes) {
    if (encoded.size() > modulus_bytes || modulus_bytes < 2 * 32 + 2 || modulus_bytes > 2048) return std::nullopt;
    // The raw result as the modulus's length, leading zeros included (a token may drop them).
    SecretBytes padded(modulus_bytes);
    std::memcpy(padded.data() + (modulus_bytes - encoded.size()), encoded.data(), encoded.size());
    ossl::Md sha256(EVP_MD_fetch(ossl::libctx_modern(), "SHA256", nullptr));
    if (!sha256) ossl::fail(static_cast<int>(ErrorKind::failure), "SHA-256");
    SecretBytes out(modulus_bytes);
    // OpenSSL 3.0 has no provider-based OAEP decoding without the private key; this
    // function (deprecated, not removed) is the one its own RSA decryption uses, in
    // constant time.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    const int length = RSA_padding_check_PKCS1_OAEP_mgf1(out.data(), static_cast<int>(out.size()), padded.data(),
                                                         static_cast<int>(padded.size()), static_cast<int>(modulus_bytes),
                                                         nullptr, 0, sha256.get(), sha256.get());
#pragma GCC diagnostic pop
    if (length < 0) {
        ossl::last_error();
        return std::nullopt;
    }
    out.resize(static_cast<std::size_t>(length));
    return out;
}

}  // namespace p11vault::escrow
