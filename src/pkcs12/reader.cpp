// SPDX-License-Identifier: Apache-2.0
#include "src/pkcs12/reader.hpp"

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pkcs12.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "p11vault/error.hpp"
#include "src/pkcs12/asn1_reading.hpp"
#include "src/pkcs12/mac.hpp"

namespace p11vault::pkcs12 {

std::string key_algorithm_name(const PKCS8_PRIV_KEY_INFO* info) {
    const ASN1_OBJECT* object = nullptr;
    if (PKCS8_pkey_get0(&object, nullptr, nullptr, nullptr, info) != 1 || object == nullptr) return "unknown";
    int nid = OBJ_obj2nid(object);
    std::string oid = ossl::oid_text(object);
    if (nid == NID_undef) {
        char numeric[128];
        OBJ_obj2txt(numeric, sizeof numeric, object, 1);
        return numeric;
    }
    return fmt::format("{} ({})", OBJ_nid2sn(nid), [&] {
        char numeric[128];
        OBJ_obj2txt(numeric, sizeof numeric, object, 1);
        return std::string(numeric);
    }());
}

Bytes read_file(const std::string& path, std::size_t max_size) {
    std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!file) throw Error(ErrorKind::bad_input, "cannot open " + path + ": " + std::strerror(errno));
    Bytes data;
    unsigned char buffer[65536];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) {
        if (data.size() + n > max_size)
            throw Error(ErrorKind::bad_input, fmt::format("{} is larger than {} bytes; if it is genuine, raise the "
                                                         "limit with --max-file-size",
                                                         path, max_size));
        data.insert(data.end(), buffer, buffer + n);
    }
    if (std::ferror(file.get())) throw Error(ErrorKind::bad_input, "cannot read " + path);
    return data;
}

// One ContentInfo of the AuthenticatedSafe, reduced to what read_safes needs so that its
// bytes are released as soon as they are no longer needed: a data safe becomes its parsed
// bags at once; an encrypted safe keeps its ContentInfo until it is decrypted.
struct ParsedSafe {
    int type = NID_undef;
    bool has_content = false;  // d.data, or d.encrypted with algorithm and enc_data
    ossl::BagStack bags;       // data safe: its SafeContents; null when it does not parse
    ossl::Pkcs7 encrypted;     // encrypted safe: the ContentInfo, until decrypted
};

namespace {

// The AuthenticatedSafe (a SEQUENCE of ContentInfo); nullopt when it does not parse.
// Parsed before the MAC is checked only to start deriving the first bag key on another
// thread while the MAC's KDF runs; nothing in it is used unless the MAC verifies, and a
// malformed one is reported after the MAC.
std::optional<std::vector<ParsedSafe>> parse_authenticated_safe(std::span<const std::uint8_t> der) {
    const unsigned char* p = der.data();
    ossl::Pkcs7Stack stack(static_cast<STACK_OF(PKCS7)*>(static_cast<void*>(
        ASN1_item_d2i(nullptr, &p, static_cast<long>(der.size()), ASN1_ITEM_rptr(PKCS12_AUTHSAFES)))));
    if (!stack) {
        ERR_clear_error();
        return std::nullopt;
    }
    std::vector<ParsedSafe> safes(static_cast<std::size_t>(sk_PKCS7_num(stack.get())));
    for (ParsedSafe& safe : safes) {
        ossl::Pkcs7 info(sk_PKCS7_shift(stack.get()));  // owned here: a data safe's bytes go below
        safe.type = OBJ_obj2nid(info->type);
        if (safe.type == NID_pkcs7_data) {
            safe.has_content = info->d.data != nullptr;
            if (!safe.has_content) continue;
            const unsigned char* q = ASN1_STRING_get0_data(info->d.data);
            safe.bags.reset(static_cast<STACK_OF(PKCS12_SAFEBAG)*>(static_cast<void*>(
                ASN1_item_d2i(nullptr, &q, ASN1_STRING_length(info->d.data), ASN1_ITEM_rptr(PKCS12_SAFEBAGS)))));
            if (!safe.bags) ERR_clear_error();
        } else if (safe.type == NID_pkcs7_encrypted) {
            const PKCS7_ENC_CONTENT* content = info->d.encrypted ? info->d.encrypted->enc_data : nullptr;
            safe.has_content = content != nullptr && content->algorithm != nullptr && content->enc_data != nullptr;
            safe.encrypted = std::move(info);
        }
    }
    return safes;
}

// Starts deriving the key of the first encrypted safe, else of the first shrouded key bag
// of a data safe (Decryptor::prefetch), when it costs no more iterations than the MAC's
// KDF it runs beside: a changed file then never costs more time than before, as the bag
// key of a file whose MAC fails is not waited for longer than the MAC took. In the files
// p11vault writes the safe and the key bags share one key.
void prefetch_first_bag_key(Decryptor& decryptor, const std::vector<ParsedSafe>& safes,
                            std::uint64_t mac_iterations) {
    for (const ParsedSafe& safe : safes) {
        if (safe.type == NID_pkcs7_encrypted && safe.has_content)
            return decryptor.prefetch(safe.encrypted->d.encrypted->enc_data->algorithm, mac_iterations);
    }
    for (const ParsedSafe& safe : safes) {
        for (int j = 0; safe.bags && j < sk_PKCS12_SAFEBAG_num(safe.bags.get()); ++j) {
            const PKCS12_SAFEBAG* bag = sk_PKCS12_SAFEBAG_value(safe.bags.get(), j);
            if (PKCS12_SAFEBAG_get_nid(bag) != NID_pkcs8ShroudedKeyBag) continue;
            const X509_ALGOR* algorithm = nullptr;
            X509_SIG_get0(PKCS12_SAFEBAG_get0_pkcs8(bag), &algorithm, nullptr);
            if (algorithm != nullptr) decryptor.prefetch(algorithm, mac_iterations);
            return;
        }
    }
}

}  // namespace

Reader::Reader(Bytes der, const SecretBytes& password, Limits limits)
    : password_(password.clone()), limits_(limits), decryptor_(password_, PasswordForm::bmp, limits) {
    if (der.size() > limits.max_file_size)
        throw Error(ErrorKind::bad_input, "file larger than the limit (--max-file-size)");
    // PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, macData MacData OPTIONAL }
    const unsigned char* p = der.data();
    const unsigned char* end = p + der.size();
    Header pfx = read_header(p, end, "outer structure");
    if (pfx.tag != V_ASN1_SEQUENCE || !pfx.constructed) malformed("it does not start with a SEQUENCE (wrong format?)");
    // Nothing may follow the PFX. Bytes after it are how a MacData is cut off without
    // touching the authenticated content (shorten the outer length, or make it indefinite
    // with end-of-contents before the MacData); read on, such a file would pass as one
    // that merely has no MAC.
    if (!pfx.indefinite) {
        if (pfx.length > end - p) malformed("truncated");
        if (pfx.length < end - p)
            malformed(fmt::format("{} bytes after the end of the PFX structure", end - p - pfx.length));
    }
    ossl::Integer version(d2i_ASN1_INTEGER(nullptr, &p, end - p));
    if (!version || ASN1_INTEGER_get(version.get()) != 3) malformed("version is not 3");
    ossl::Pkcs7 auth_safe(d2i_PKCS7(nullptr, &p, end - p));
    if (!auth_safe) malformed("authSafe ContentInfo");
    int auth_type = OBJ_obj2nid(auth_safe->type);
    if (auth_type == NID_pkcs7_signed)
        throw Error(ErrorKind::bad_input, "public-key integrity mode (signedData) is not supported");
    if (auth_type != NID_pkcs7_data || auth_safe->d.data == nullptr) malformed("authSafe has no data content");

    // MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 }
    ossl::Sig digest_info;
    ossl::OctetString salt;
    ossl::Integer iterations;
    const bool has_mac = p < end && !(end - p >= 2 && p[0] == 0 && p[1] == 0);
    if (has_mac) {
        Header mac_header = read_header(p, end, "MacData");
        const unsigned char* mac_end = mac_header.indefinite ? end : p + mac_header.length;
        if (mac_header.tag != V_ASN1_SEQUENCE || mac_end > end) malformed("MacData");
        if (!mac_header.indefinite && !pfx.indefinite && mac_end != end) malformed("data after the MacData");
        digest_info.reset(d2i_X509_SIG(nullptr, &p, mac_end - p));
        salt.reset(d2i_ASN1_OCTET_STRING(nullptr, &p, mac_end - p));
        if (p < mac_end && *p == V_ASN1_INTEGER) iterations.reset(d2i_ASN1_INTEGER(nullptr, &p, mac_end - p));
        if (!digest_info || !salt) malformed("MacData");
        if (mac_header.indefinite) {
            if (mac_end - p < 2 || p[0] != 0 || p[1] != 0) malformed("MacData has no end-of-contents");
            p += 2;
        }
        if (pfx.indefinite) {
            if (end - p < 2 || p[0] != 0 || p[1] != 0) malformed("data after the MacData");
            if (end - p > 2) malformed(fmt::format("{} bytes after the end of the PFX structure", end - p - 2));
        }
    } else {
        if (pfx.indefinite && end - p < 2) malformed("the PFX has no end-of-contents");
        if (pfx.indefinite && end - p > 2)
            malformed(fmt::format("{} bytes after the end of the PFX structure", end - p - 2));
    }
    // All that is left to read is in the parsed ContentInfo and MacData: the file's bytes
    // go now, before the safes are parsed, so that peak memory holds one copy of the
    // content, not two.
    Bytes().swap(der);

    // The AuthenticatedSafe's octets where the parsed ContentInfo holds them, not a copy.
    const std::span<const std::uint8_t> safe_bytes(ASN1_STRING_get0_data(auth_safe->d.data),
                                                   static_cast<std::size_t>(ASN1_STRING_length(auth_safe->d.data)));
    std::optional<std::vector<ParsedSafe>> safes = parse_authenticated_safe(safe_bytes);
    if (has_mac) {
        // Before the PKCS#12 KDF's iterations, the first bag's key is started beside them.
        auto before_kdf = [&](std::uint64_t count) {
            if (safes) prefetch_first_bag_key(decryptor_, *safes, count);
        };
        verify_mac(digest_info.get(), salt.get(), iterations.get(), safe_bytes, password_, limits_, contents_.mac,
                   before_kdf);
        if (contents_.mac.password_form == PasswordForm::bmp_bytewise) decryptor_.note_quirk(kBytewiseBmpQuirk);
    } else {
        contents_.warnings.push_back("the file has no MAC: its integrity is not protected");
    }
    auth_safe.reset();  // the parsed safes hold all that is left to read (safe_bytes goes with it)
    decryptor_.set_pkcs12_form(contents_.mac.password_form);
    if (!safes) malformed("AuthenticatedSafe");
    read_safes(*safes);
}

void Reader::read_safes(std::vector<ParsedSafe>& safes) {
    for (std::size_t i = 0; i < safes.size(); ++i) {
        ParsedSafe& safe = safes[i];
        if (safe.type == NID_pkcs7_data) {
            if (!safe.has_content) malformed(fmt::format("safe {} has no content", i + 1));
            ossl::BagStack bags = std::move(safe.bags);  // freed after reading
            if (!bags) malformed(fmt::format("safe {}", i + 1));
            read_bags(bags.get(), 0);
        } else if (safe.type == NID_pkcs7_encrypted) {
            if (!safe.has_content) malformed(fmt::format("encrypted safe {} has no content", i + 1));
            const PKCS7_ENC_CONTENT* content = safe.encrypted->d.encrypted->enc_data;
            contents_.safe_protection.push_back(describe_algorithm(content->algorithm));
            SecretBytes plain = decryptor_.decrypt(content->algorithm, ASN1_STRING_get0_data(content->enc_data),
                                                   static_cast<std::size_t>(ASN1_STRING_length(content->enc_data)),
                                                   fmt::format("encrypted safe {}", i + 1));
            safe.encrypted.reset();  // the ciphertext is not needed while the bags are read
            const unsigned char* q = plain.data();
            ossl::BagStack bags(static_cast<STACK_OF(PKCS12_SAFEBAG)*>(static_cast<void*>(
                ASN1_item_d2i(nullptr, &q, static_cast<long>(plain.size()), ASN1_ITEM_rptr(PKCS12_SAFEBAGS)))));
            if (!bags) malformed(fmt::format("encrypted safe {}", i + 1));
            plain = SecretBytes();  // wiped; the parsed bags hold it now
            read_bags(bags.get(), 0);
        } else {
            throw Error(ErrorKind::bad_input, fmt::format("safe {} is {} (public-key encrypted safes are not supported)",
                                                         i + 1, OBJ_nid2ln(safe.type)));
        }
    }
}

namespace {

// BMPString (UTF-16BE, some producers add a terminating 00 00) to UTF-8. Written here
// because OPENSSL_uni2utf8 in OpenSSL 3.0 returns NULL for characters such as U+263A.
// Unpaired surrogates become U+FFFD.
std::optional<std::string> bmp_to_utf8(const unsigned char* data, std::size_t size) {
    if (size % 2 != 0) return std::nullopt;
    std::string out;
    auto put = [&out](std::uint32_t cp) {
        if (cp < 0x80) {
            out.push_back(static_cast<char>(cp));
        } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
            out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        } else {
            out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
        }
    };
    for (std::size_t i = 0; i < size; i += 2) {
        std::uint32_t unit = (static_cast<std::uint32_t>(data[i]) << 8) | data[i + 1];
        if (unit == 0 && i + 2 == size) break;  // terminating NUL
        if (unit >= 0xD800 && unit < 0xDC00 && i + 3 < size) {
            std::uint32_t low = (static_cast<std::uint32_t>(data[i + 2]) << 8) | data[i + 3];
            if (low >= 0xDC00 && low < 0xE000) {
                put(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00));
                i += 2;
                continue;
            }
        }
        put(unit >= 0xD800 && unit < 0xE000 ? 0xFFFD : unit);
    }
    return out;
}

BagAttributes read_attributes(const PKCS12_SAFEBAG* bag) {
    BagAttributes out;
    const STACK_OF(X509_ATTRIBUTE)* attributes = PKCS12_SAFEBAG_get0_attrs(bag);
    for (int i = 0; i < sk_X509_ATTRIBUTE_num(attributes); ++i) {
        X509_ATTRIBUTE* attribute = sk_X509_ATTRIBUTE_value(attributes, i);
        int nid = OBJ_obj2nid(X509_ATTRIBUTE_get0_object(attribute));
        for (int v = 0; v < X509_ATTRIBUTE_count(attribute); ++v) {
            ASN1_TYPE* value = X509_ATTRIBUTE_get0_type(attribute, v);
            if (nid == NID_localKeyID && value->type == V_ASN1_OCTET_STRING) {
                out.local_key_ids.push_back(ossl::octets(value->value.octet_string));
            } else if (nid == NID_friendlyName && value->type == V_ASN1_BMPSTRING && !out.friendly_name) {
                const ASN1_BMPSTRING* name = value->value.bmpstring;
                out.friendly_name = bmp_to_utf8(ASN1_STRING_get0_data(name),
                                                static_cast<std::size_t>(ASN1_STRING_length(name)));
            }
        }
    }
    return out;
}

}  // namespace

void Reader::check_object_limits(const std::string& where, const BagAttributes& attributes) const {
    if (contents_.keys.size() + contents_.secrets.size() + contents_.certificates.size() >= limits_.max_objects)
        throw Error(ErrorKind::bad_input,
                    fmt::format("{}: the file holds more than {} keys and certificates, the limit of what is put on "
                                "a token from one file; refusing it (raise the limit with --max-objects)",
                                where, limits_.max_objects));
    if (attributes.friendly_name && attributes.friendly_name->size() > limits_.max_label_length)
        throw Error(ErrorKind::bad_input,
                    fmt::format("{}: friendlyName is {} bytes (UTF-8), longer than the label limit of {}; refusing "
                                "the file (raise the limit with --max-label-length)",
                                where, attributes.friendly_name->size(), limits_.max_label_length));
}

void Reader::read_bags(const STACK_OF(PKCS12_SAFEBAG) * bags, int depth) {
    if (depth > limits_.max_nesting) throw Error(ErrorKind::bad_input, "safe contents nested too deeply");
    for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags); ++i) {
        if (++bag_count_ > limits_.max_bags)
            throw Error(ErrorKind::bad_input, fmt::format("more than {} bags; refusing the file", limits_.max_bags));
        const PKCS12_SAFEBAG* bag = sk_PKCS12_SAFEBAG_value(bags, i);
        switch (PKCS12_SAFEBAG_get_nid(bag)) {
            case NID_pkcs8ShroudedKeyBag: {
                KeyBag key;
                key.where = fmt::format("key bag {}", contents_.keys.size() + 1);
                key.attributes = read_attributes(bag);
                check_object_limits(key.where, key.attributes);
                const X509_SIG* sig = PKCS12_SAFEBAG_get0_pkcs8(bag);
                if (sig == nullptr) malformed(key.where);
                key.shrouded.reset(ossl::dup_sig(sig));
                const X509_ALGOR* algorithm = nullptr;
                X509_SIG_get0(sig, &algorithm, nullptr);
                key.protection = describe_algorithm(algorithm);
                contents_.keys.push_back(std::move(key));
                break;
            }
            case NID_keyBag: {
                KeyBag key;
                key.where = fmt::format("key bag {}", contents_.keys.size() + 1);
                key.attributes = read_attributes(bag);
                check_object_limits(key.where, key.attributes);
                const PKCS8_PRIV_KEY_INFO* info = PKCS12_SAFEBAG_get0_p8inf(bag);
                if (info == nullptr) malformed(key.where);
                key.plain.reset(ossl::dup_p8info(info));
                key.protection = "none (unencrypted keyBag)";
                contents_.keys.push_back(std::move(key));
                break;
            }
            case NID_certBag: {
                CertBag cert;
                cert.where = fmt::format("certificate bag {}", contents_.certificates.size() + 1);
                if (PKCS12_SAFEBAG_get_bag_nid(bag) != NID_x509Certificate) {
                    contents_.unsupported.push_back(
                        fmt::format("{} (not an X.509 certificate: {})", cert.where,
                                    ossl::oid_text(PKCS12_SAFEBAG_get0_bag_type(bag))));
                    break;
                }
                cert.attributes = read_attributes(bag);
                check_object_limits(cert.where, cert.attributes);
                cert.certificate.reset(PKCS12_SAFEBAG_get1_cert(bag));
                if (!cert.certificate) malformed(cert.where + ": the certificate does not parse");
                contents_.certificates.push_back(std::move(cert));
                break;
            }
            case NID_secretBag:
                read_secret_bag(bag);
                break;
            case NID_safeContentsBag:
                read_bags(PKCS12_SAFEBAG_get0_safes(bag), depth + 1);
                break;
            default:
                contents_.unsupported.push_back(fmt::format("bag {} (a {} bag, which p11vault cannot restore)",
                                                            bag_count_, OBJ_nid2ln(PKCS12_SAFEBAG_get_nid(bag))));
        }
    }
}

void Reader::read_secret_bag(const PKCS12_SAFEBAG* bag) {
    // SecretBag ::= SEQUENCE { secretTypeId OID, secretValue [0] EXPLICIT ANY }. Java
    // (PKCS12KeyStore) writes secretTypeId pkcs8ShroudedKeyBag and an OCTET STRING holding
    // the EncryptedPrivateKeyInfo of a PrivateKeyInfo whose algorithm is the secret key's.
    KeyBag secret;
    secret.where = fmt::format("secret bag {}", contents_.secrets.size() + 1);
    const int type = PKCS12_SAFEBAG_get_bag_nid(bag);
    const ASN1_TYPE* value = PKCS12_SAFEBAG_get0_bag_obj(bag);
    if (type != NID_pkcs8ShroudedKeyBag && type != NID_keyBag) {
        contents_.unsupported.push_back(fmt::format("bag {} (a secretBag of type {}, not a PKCS#8 key as Java writes it)",
                                                    bag_count_, ossl::oid_text(PKCS12_SAFEBAG_get0_bag_type(bag))));
        return;
    }
    if (value == nullptr || value->type != V_ASN1_OCTET_STRING) malformed(secret.where + ": secretValue");
    secret.attributes = read_attributes(bag);
    check_object_limits(secret.where, secret.attributes);
    const unsigned char* p = ASN1_STRING_get0_data(value->value.octet_string);
    const long length = ASN1_STRING_length(value->value.octet_string);
    if (type == NID_pkcs8ShroudedKeyBag) {
        secret.shrouded.reset(d2i_X509_SIG(nullptr, &p, length));
        if (!secret.shrouded) malformed(secret.where + ": not an EncryptedPrivateKeyInfo");
        const X509_ALGOR* algorithm = nullptr;
        X509_SIG_get0(secret.shrouded.get(), &algorithm, nullptr);
        secret.protection = describe_algorithm(algorithm);
    } else {
        secret.plain.reset(d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, length));
        if (!secret.plain) malformed(secret.where + ": not a PrivateKeyInfo");
        secret.protection = "none (unencrypted keyBag)";
    }
    contents_.secrets.push_back(std::move(secret));
}

ossl::P8Info Reader::decrypt_key(const KeyBag& bag) {
    if (bag.plain) return ossl::P8Info(ossl::dup_p8info(bag.plain.get()));
    const X509_ALGOR* algorithm = nullptr;
    const ASN1_OCTET_STRING* data = nullptr;
    X509_SIG_get0(bag.shrouded.get(), &algorithm, &data);
    SecretBytes der = decryptor_.decrypt(algorithm, ASN1_STRING_get0_data(data),
                                         static_cast<std::size_t>(ASN1_STRING_length(data)), bag.where);
    const unsigned char* p = der.data();
    ossl::P8Info info(d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(der.size())));
    if (!info) malformed(bag.where + ": the decrypted key is not a PrivateKeyInfo");
    return info;
}

ossl::Pkey Reader::private_key(const KeyBag& bag) {
    ossl::P8Info info = decrypt_key(bag);
    ossl::Pkey key = key_from_info(info.get());
    if (!key) {
        ossl::last_error();
        throw Error(ErrorKind::bad_input,
                    fmt::format("{}: key algorithm {} is not supported by this OpenSSL", bag.where,
                                key_algorithm_name(info.get())));
    }
    return key;
}

}  // namespace p11vault::pkcs12
