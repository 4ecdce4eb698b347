// SPDX-License-Identifier: Apache-2.0
// Writing a PKCS#12 file.
//
// modern profile: PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) for every key bag and the
// certificate safe, HMAC-SHA256 MAC. One salt and one iteration count serve every PBES2
// structure of the file, so the expensive PBKDF2 runs once however many keys the file
// holds; every bag gets its own random IV. The MAC uses the same iteration count: a
// cheaper MAC would be a cheaper oracle for guessing the password. Its key is derived on
// a second thread from the moment the Writer exists, so it costs no wall time beside
// the bags' key and the token's work.
// fips profile: the bags as in modern, the MAC PBMAC1 (RFC 9579: PBKDF2-HMAC-SHA256 with a
// 32-byte key, HMAC-SHA256), so that no part of the file needs the PKCS#12 KDF, which
// FIPS 140-3 modules do not offer (OpenSSL 3.4+ writes the same with -pbmac1_pbkdf2;
// readers older than RFC 9579, such as OpenSSL 3.0-3.3, cannot check such a MAC).
// legacy profile: pbeWithSHAAnd3-KeyTripleDES-CBC and a SHA-1 MAC (Windows Server ≤ 2016,
// old Java); the PKCS#12 KDF also derives the IV, so each bag gets its own salt.
#pragma once

#include <cstdint>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "p11vault/secret.hpp"
#include "src/ossl.hpp"
#include "src/pkcs12/pbe.hpp"

namespace p11vault::pkcs12 {

enum class Profile { modern, legacy, fips };

// "modern", "legacy", "fips": the --profile value.
const char* profile_name(Profile profile);
// modern and fips: PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) bags sharing one key.
constexpr bool uses_pbes2(Profile profile) { return profile != Profile::legacy; }

constexpr std::uint64_t kModernIterations = 600'000;
constexpr std::uint64_t kLegacyIterations = 2'000;

struct EntryAttributes {
    std::optional<Bytes> local_key_id;
    std::optional<std::string> friendly_name;
    // Where a key or secret bag goes among the key bags: in `order` order, whatever order
    // they are added in (a parallel backup adds them as its sessions finish). Unset: the
    // count of key bags added before it. Not written to the file.
    std::optional<std::size_t> order = std::nullopt;
};

// How one bag is encrypted: the AlgorithmIdentifier to write and the key and IV it
// implies. Token wrapping uses key/iv with CKM_AES_CBC_PAD (modern) or CKM_DES3_CBC_PAD
// (legacy), which produce exactly the bag's encryptedData.
struct BagEncryption {
    ossl::Algor algorithm;
    std::string cipher;   // "AES-256-CBC" or "DES-EDE3-CBC"
    SecretBytes key;
    Bytes iv;
    // The key named by what made it (KDF, salt, iterations), never by its bytes: bags
    // whose key_source is equal have the same key (the modern and fips profiles' one
    // PBKDF2), so a caller can reuse what it made of the key without comparing secrets.
    std::string key_source;
};

class Writer {
public:
    Writer(Profile profile, const SecretBytes& password, std::uint64_t iterations);
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    Profile profile() const { return profile_; }
    // The modern and fips profiles' one PBKDF2 (HMAC-SHA256, 32-byte key) that every
    // bag's key is. Legacy: no salt.
    const Bytes& shared_salt() const { return salt_; }
    std::uint64_t iterations() const { return iterations_; }
    // For a token that refuses clear keys but can derive the same key itself
    // (CKM_PKCS5_PBKD2): returns derive(password, salt, iterations, prf, key_length) with
    // the shared PBKDF2's parameters. The password is lent to that one KDF call; the
    // writer has no accessor that hands it out.
    template <typename Derive>
    auto derive_shared_key_with(Derive&& derive) const {
        return std::forward<Derive>(derive)(password_, salt_, iterations_, std::string("SHA256"),
                                            std::size_t{kSharedKeyLength});
    }
    static constexpr std::size_t kSharedKeyLength = 32;
    // The encryption of the next key bag (fresh IV; for legacy also a fresh salt).
    BagEncryption next_bag_encryption();

    // A key bag whose encryptedData the token produced (C_WrapKey under `encryption`).
    void add_encrypted_key(BagEncryption encryption, const Bytes& encrypted_data, const EntryAttributes& attributes);
    // A key bag encrypted here from its clear PrivateKeyInfo DER (the host paths).
    void add_clear_key(const SecretBytes& private_key_info, const EntryAttributes& attributes);
    // A secret key as Java writes it: a secretBag (secretTypeId pkcs8ShroudedKeyBag)
    // whose value is the EncryptedPrivateKeyInfo of `private_key_info`, encrypted as a key bag.
    void add_secret_key(const SecretBytes& private_key_info, const EntryAttributes& attributes);
    void add_certificate(const X509* certificate, const EntryAttributes& attributes);

    // The DER of the whole PFX, with MAC.
    Bytes finish();

private:
    Profile profile_;
    SecretBytes password_;
    SecretBytes bmp_password_;   // the PKCS#12 KDF's form: BMPString with its terminator
                                 // (empty in the fips profile, which has no PKCS#12 KDF)
    std::uint64_t iterations_;
    Bytes salt_;                 // modern, fips: shared by every PBES2 structure
    SecretBytes shared_key_;     // modern, fips: PBKDF2(password, salt_, iterations_)
    Bytes mac_salt_;
    std::future<SecretBytes> mac_key_;  // derived on a second thread (see the constructor)
    // Adds a key or secret bag (from any thread) at attributes.order.
    void push_key_bag(ossl::SafeBag bag, const EntryAttributes& attributes, const char* what);

    std::mutex key_bags_mutex_;
    ossl::BagStack key_bags_;
    std::vector<std::size_t> key_bag_order_;  // of each bag of key_bags_, as pushed
    ossl::BagStack cert_bags_;
};

}  // namespace p11vault::pkcs12
