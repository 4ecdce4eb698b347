// SPDX-License-Identifier: Apache-2.0
// Reading a PKCS#12 file: the outer PFX, the MAC (HMAC with the PKCS#12 KDF, or PBMAC1
// per RFC 9579), every safe (plain or password-encrypted) and every bag with its
// attributes. Unlike PKCS12_parse, nothing is dropped: every key, every certificate,
// every localKeyID and friendlyName.
//
// Key bags stay encrypted until a caller asks: restore may hand the encrypted bytes to
// the token (token-unwrap) so the clear key never reaches the host.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "p11vault/secret.hpp"
#include "src/ossl.hpp"
#include "src/pkcs12/key_decoder.hpp"
#include "src/pkcs12/pbe.hpp"

namespace p11vault::pkcs12 {

struct BagAttributes {
    std::vector<Bytes> local_key_ids;          // usually one; some producers write two
    std::optional<std::string> friendly_name;  // UTF-8
};

// A private key bag, or a secret key as Java writes it: a secretBag whose secretValue
// is a pkcs8ShroudedKeyBag (or keyBag) around a PrivateKeyInfo with the secret key's
// algorithm OID (AES, HmacSHA256, DESede) and its bytes as privateKey.
struct KeyBag {
    std::string where;         // "key bag 2" or "secret bag 1" for messages
    BagAttributes attributes;
    ossl::Sig shrouded;        // pkcs8ShroudedKeyBag: EncryptedPrivateKeyInfo
    ossl::P8Info plain;        // keyBag: the clear PrivateKeyInfo (no encryption in the file)
    std::string protection;    // "PBES2 PBKDF2-HMAC-SHA256 600000 it, AES-256-CBC", or "none"
};

struct CertBag {
    std::string where;
    BagAttributes attributes;
    ossl::Cert certificate;
};

struct MacInfo {
    bool present = false;
    std::string algorithm;          // "HMAC-SHA256 (PKCS#12 KDF)", "PBMAC1 ..."
    std::uint64_t iterations = 0;
    PasswordForm password_form = PasswordForm::bmp;  // the form it verified with
    std::string weak_digest;        // "MD5" or "SHA1" when the MAC uses one (a warning), else ""
};

struct Contents {
    std::vector<KeyBag> keys;
    std::vector<KeyBag> secrets;               // secret keys (secretBags in Java's form)
    std::vector<CertBag> certificates;
    MacInfo mac;
    std::vector<std::string> safe_protection;  // one entry per encrypted safe
    std::vector<std::string> warnings;         // no MAC etc.
    // Bags p11vault cannot put on a token ("certificate bag 2 (not an X.509 certificate:
    // sdsiCertificate)"):
    // restore refuses the file unless --skip-unsupported, verify warns. Never ignored.
    std::vector<std::string> unsupported;
};

struct ParsedSafe;  // one ContentInfo of the AuthenticatedSafe (reader.cpp)

class Reader {
public:
    // Parses and authenticates `der` with `password`. Throws Error(bad_password) for a
    // wrong password / MAC mismatch, Error(bad_input) for anything malformed, unsupported
    // or over `limits`. The file's bytes are taken (pass them with std::move) and
    // released once parsed, as is each safe once read: peak memory holds about one copy
    // of the file's content rather than four.
    Reader(Bytes der, const SecretBytes& password, Limits limits = {});
    Reader(const Reader&) = delete;  // the decryptor refers to password_
    Reader& operator=(const Reader&) = delete;

    Contents& contents() { return contents_; }
    const Contents& contents() const { return contents_; }
    Decryptor& decryptor() { return decryptor_; }
    // For a token that refuses clear keys but can derive a PBES2 bag's key itself
    // (CKM_PKCS5_PBKD2): returns derive(password, salt, iterations, prf, key_length) with
    // the password as given (the standard UTF-8 form) and the bag's PBKDF2 parameters.
    // The password is lent to that one KDF call; everything else gets derived keys
    // (decryptor().pbes2_key), and the reader has no accessor that hands the password out.
    template <typename Derive>
    auto derive_bag_key_with(const Pbes2Params& params, Derive&& derive) const {
        return std::forward<Derive>(derive)(password_, params.salt, params.iterations, params.prf_digest,
                                            params.cipher_key_length);
    }

    // Host path: the clear PrivateKeyInfo of a key bag (decrypting when shrouded).
    ossl::P8Info decrypt_key(const KeyBag& bag);
    // The key as OpenSSL sees it. Error(bad_input) naming the algorithm OID when
    // OpenSSL cannot parse that key type.
    ossl::Pkey private_key(const KeyBag& bag);
    // A decrypted key as OpenSSL sees it; null when OpenSSL cannot read it (see
    // KeyDecoder for why not EVP_PKCS82PKEY_ex).
    ossl::Pkey key_from_info(const PKCS8_PRIV_KEY_INFO* info) { return key_decoder_.decode(info); }

private:
    // Reads every safe's bags in order, releasing each safe's bytes once read.
    void read_safes(std::vector<ParsedSafe>& safes);
    void read_bags(const STACK_OF(PKCS12_SAFEBAG) * bags, int depth);
    void read_secret_bag(const PKCS12_SAFEBAG* bag);
    // Error(bad_input) naming the bag about to be added when it is one object more than
    // limits_.max_objects, or its friendlyName is longer than limits_.max_label_length.
    void check_object_limits(const std::string& where, const BagAttributes& attributes) const;

    SecretBytes password_;
    Limits limits_;
    Contents contents_;
    Decryptor decryptor_;
    KeyDecoder key_decoder_;
    std::size_t bag_count_ = 0;
};

// The algorithm OID of a PrivateKeyInfo as text ("1.2.840.113549.1.1.1") and its name
// where OpenSSL knows it.
std::string key_algorithm_name(const PKCS8_PRIV_KEY_INFO* info);

// Reads a whole file, refusing anything above `max_size` (exit 4) before allocating it.
Bytes read_file(const std::string& path, std::size_t max_size);

}  // namespace p11vault::pkcs12
