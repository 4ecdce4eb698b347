// SPDX-License-Identifier: Apache-2.0
// Password-based encryption of PKCS#12: PBES2 (PBKDF2 + AES/Camellia/ARIA/3DES-CBC) and the PKCS#12
// PBE schemes (3DES, RC2, RC4 with the PKCS#12 KDF), with one derived-key cache per
// file so that a file whose bags share salt and iteration count costs one KDF.
#pragma once

#include <openssl/x509.h>

#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "p11vault/secret.hpp"
#include "src/pkcs12/password.hpp"

namespace p11vault::pkcs12 {

using Bytes = std::vector<std::uint8_t>;

// Limits on what a hostile file can make us spend.
struct Limits {
    std::uint64_t max_iterations = 10'000'000;  // --max-iterations
    std::size_t max_file_size = 64u << 20;      // --max-file-size
    std::size_t max_bags = 100'000;
    // What restore would put on a token: keys plus certificates (--max-objects), and the
    // UTF-8 bytes of a friendlyName, which becomes a CKA_LABEL (--max-label-length).
    std::size_t max_objects = 1'000;
    std::size_t max_label_length = 256;
    int max_nesting = 8;                        // safeContentsBag inside safeContentsBag
};

// A parsed PBES2 AlgorithmIdentifier (PBKDF2 + a CBC cipher).
struct Pbes2Params {
    Bytes salt;
    std::uint64_t iterations = 0;
    std::optional<std::size_t> key_length;  // PBKDF2 keyLength, when present
    std::string prf_digest;                 // "SHA256", ...
    std::string cipher;                     // "AES-256-CBC", "DES-EDE3-CBC"
    std::size_t cipher_key_length = 0;
    Bytes iv;
    std::string describe() const;           // "PBES2 PBKDF2-HMAC-SHA256 600000 it, AES-256-CBC"
};

// The OpenSSL digest name ("SHA256", "SHA512-224") of an OID; nullptr when unsupported.
// mac_digest_name: the hash OIDs of MacData's DigestInfo (MD5, SHA-1, SHA-2 including
// SHA-512/224 and SHA-512/256, SHA-3); hmac_digest_name: the HMAC OIDs of PBKDF2's PRF
// and PBMAC1's messageAuthScheme. digest_name (MacData) takes either, as the reader
// always has; hmac_or_sha_digest_name (PRFs, PBMAC1) takes the HMAC OIDs and, as the
// reader always has, the bare SHA-1/SHA-2/SHA-3 OIDs, but not MD5.
const char* mac_digest_name(int nid);
const char* hmac_digest_name(int nid);
const char* digest_name(int nid);
const char* hmac_or_sha_digest_name(int nid);
// "MD5, SHA1, SHA224, ...": exactly what the functions above accept, for error messages.
std::string supported_mac_digests();
std::string supported_hmacs();
// MD5 and SHA-1: read with a warning, never written.
bool is_weak_mac_digest(const std::string& digest);

// The quirk name under which a file whose PKCS#12 KDF took the password as
// PasswordForm::bmp_bytewise is reported.
inline constexpr const char* kBytewiseBmpQuirk =
    "bmpstring-password-bytewise (earlier p11vault builds, a password that is not valid UTF-8)";

// Absent when `algorithm` is not PBES2 with PBKDF2; Error(bad_input) when it is but
// malformed or over the limits.
std::optional<Pbes2Params> parse_pbes2(const X509_ALGOR* algorithm, const Limits& limits);

// "PBES2 PBKDF2-HMAC-SHA256 600000 it, AES-256-CBC", "pbeWithSHAAnd3-KeyTripleDES-CBC 2000 it", ...
std::string describe_algorithm(const X509_ALGOR* algorithm);
// True for schemes a careful reader should warn about, judged on a describe_algorithm()
// text: RC2, RC4, 2-key 3DES, fewer than 10,000 iterations.
bool is_weak_description(const std::string& description);

// HMAC (the PKCS#12 MAC and PBMAC1), PBKDF2 and the PKCS#12 KDF over the private library
// context.
Bytes hmac(const std::string& digest, const SecretBytes& key, std::span<const std::uint8_t> data);
SecretBytes pbkdf2(const SecretBytes& password, const Bytes& salt, std::uint64_t iterations,
                   const std::string& digest, std::size_t length);
SecretBytes pkcs12_kdf(const SecretBytes& bmp_password, const Bytes& salt, std::uint64_t iterations,
                       const std::string& digest, int id, std::size_t length);

// CBC with PKCS#7 padding. decrypt returns nothing when the padding is wrong.
Bytes cbc_encrypt(const std::string& cipher, const SecretBytes& key, const Bytes& iv,
                  const std::uint8_t* data, std::size_t size);
std::optional<SecretBytes> cbc_decrypt(const std::string& cipher, const SecretBytes& key, const Bytes& iv,
                                       const std::uint8_t* data, std::size_t size);

// Decrypts the encrypted bags of one file with one password, trying the standard password
// form first and the known producer quirks (quirks table in pbe.cpp) only after it fails.
// Derived keys are cached for the lifetime of the object and wiped with it.
class Decryptor {
public:
    Decryptor(const SecretBytes& password, PasswordForm pkcs12_form, Limits limits);

    // `what` names the bag for messages ("key bag 1"). The plaintext must be one DER
    // SEQUENCE (as every PKCS#12 payload is), which also tells a wrong key from a right one.
    // Throws Error(bad_password) when no form decrypts, Error(bad_input) for unsupported
    // or malformed algorithms.
    SecretBytes decrypt(const X509_ALGOR* algorithm, const std::uint8_t* data, std::size_t size,
                        const std::string& what);

    // The PBKDF2 key of the standard form (for token-side unwrapping), cached.
    const SecretBytes& pbes2_key(const Pbes2Params& params);

    // Starts deriving the standard-form PBKDF2 key of `algorithm` (PBES2 of at most
    // `max_iterations`; anything else, or parameters over the limits, is ignored) on
    // another thread, so that it runs while the caller verifies the MAC: a file then costs
    // the time of one KDF, not two. The key joins the cache at the next use of the
    // Decryptor. One prefetch at a time.
    void prefetch(const X509_ALGOR* algorithm, std::uint64_t max_iterations);

    // Key and IV of a pbeWithSHAAnd3-KeyTripleDES-CBC bag in the form the MAC verified
    // with (for token-side unwrapping with CKM_DES3_CBC_PAD); nothing for other schemes.
    std::optional<std::pair<SecretBytes, Bytes>> des3_key_iv(const X509_ALGOR* algorithm);

    // Quirks that were needed, by name, for verify's report.
    const std::vector<std::string>& quirks_used() const { return quirks_used_; }
    void note_quirk(const std::string& name);
    const Limits& limits() const { return limits_; }
    // The PKCS#12-KDF form of an empty password that the MAC verified with.
    void set_pkcs12_form(PasswordForm form) { pkcs12_form_ = form; }

private:
    std::optional<SecretBytes> try_pbes2(const Pbes2Params& params, const std::uint8_t* data, std::size_t size);
    std::optional<SecretBytes> try_pkcs12_pbe(const X509_ALGOR* algorithm, const std::uint8_t* data, std::size_t size);
    const SecretBytes& cached(const std::string& key, const std::function<SecretBytes()>& derive);
    void adopt_prefetched();

    const SecretBytes& password_;
    PasswordForm pkcs12_form_;
    Limits limits_;
    std::mutex cache_mutex_;   // cache_ and the prefetch: decrypt() may run on several threads
    std::map<std::string, SecretBytes> cache_;
    // The prefetch in flight: its cache key and the derivation (joined by adopt_prefetched
    // or, at the latest, by the future's destructor).
    std::string prefetch_key_;
    std::future<SecretBytes> prefetched_;
    std::mutex quirks_mutex_;
    std::vector<std::string> quirks_used_;
};

// True when `data` is exactly one DER/BER SEQUENCE (what every decrypted PKCS#12 payload
// is). Used to tell a wrong key from a right one after a lucky padding check.
bool is_one_sequence(const std::uint8_t* data, std::size_t size);

}  // namespace p11vault::pkcs12
