// SPDX-License-Identifier: Apache-2.0
// The backup paths of extraction.md, in order of preference, for one key at a time.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pkcs11/session.hpp"
#include "src/extraction_path.hpp"
#include "src/inventory.hpp"
#include "src/pkcs12/writer.hpp"
#include "src/quirks.hpp"

namespace p11vault {

class KeyExporter {
public:
    KeyExporter(pkcs11::Session& session, const TokenQuirks& quirks, pkcs12::Writer& writer, bool token_wrap_only);

    // Adds `key` to the writer by the best path the token and the key allow. Returns the
    // path, or nothing when no path is allowed; then notes.back() says why, in words an
    // operator can act on. Every path not taken leaves a note. PKCS#11 failures other
    // than "cannot do this" propagate.
    std::optional<ExtractionPath> export_key(const TokenObject& key, const EVP_PKEY* public_key,
                                             const pkcs12::EntryAttributes& attributes, std::vector<std::string>& notes);

    // A secret key (AES, DES3, HMAC) as a secretBag in Java's form, by the host paths
    // only: the bag encrypts a PrivateKeyInfo around the key, which no token wraps into.
    std::optional<ExtractionPath> export_secret_key(const TokenObject& key, const pkcs12::EntryAttributes& attributes,
                                                    std::vector<std::string>& notes);

private:
    // The clear bytes C_WrapKey gives under an ephemeral AES session key (CBC_PAD, else
    // RFC 5649), unwrapped on the host.
    SecretBytes wrap_out_to_host(CK_OBJECT_HANDLE key);
    void token_wrap(const TokenObject& key, CK_MECHANISM_TYPE mechanism, CK_KEY_TYPE wrapping_key_type,
                    const pkcs12::EntryAttributes& attributes, std::vector<std::string>& notes);
    void host_reencrypt(const TokenObject& key, const pkcs12::EntryAttributes& attributes);
    void attribute_read(const TokenObject& key, const EVP_PKEY* public_key, const pkcs12::EntryAttributes& attributes);

    pkcs11::Session& session_;
    const TokenQuirks& quirks_;
    pkcs12::Writer& writer_;
    bool token_wrap_only_;
    // The file key derived by the token (CKM_PKCS5_PBKD2) when it refuses clear keys:
    // one derivation per file, as the key is the same for every bag.
    std::unique_ptr<pkcs11::ScopedObject> derived_wrapping_key_;
    // The last bag key imported into the token as a session object, kept for the next bag.
    std::unique_ptr<pkcs11::ScopedObject> imported_wrapping_key_;
    std::string imported_key_source_;  // BagEncryption::key_source of the imported key
    CK_KEY_TYPE imported_key_type_ = CKK_VENDOR_DEFINED;
};

}  // namespace p11vault
