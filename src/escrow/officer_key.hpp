// SPDX-License-Identifier: Apache-2.0
// A recovery officer's private key on the officer's own token, opening escrow envelopes
// without leaving it: RSA recipients by C_Decrypt with CKM_RSA_PKCS_OAEP (SHA-256,
// MGF1-SHA-256), or, on a token that does OAEP only with SHA-1 (SoftHSM 2.6), by C_Decrypt
// with CKM_RSA_X_509 and the OAEP padding checked on the host; EC recipients by C_DeriveKey with CKM_ECDH1_DERIVE (CKD_NULL) into a
// session secret whose value, the shared secret Z, is read into locked memory for the
// KDF and the AES key unwrap on the host (envelope.hpp). Nothing else is asked of the
// key: no attribute but its class, type, id and label, no C_WrapKey.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "p11vault/secret.hpp"
#include "src/escrow/envelope.hpp"
#include "src/ossl.hpp"
#include "src/token.hpp"

namespace p11vault::escrow {

// --recipient-key URI, with --recipient-module and --recipient-pin applying where the URI
// names no module-path/module-name or pin-source of its own.
struct OfficerKeySpec {
    std::string uri;
    std::optional<std::string> module;
    std::optional<std::string> pin_source;
};

class OfficerKey {
public:
    // Opens the officer's token (logging in), and finds exactly one private key the URI
    // names (object=, id=), and the certificate with its CKA_ID if the token holds one.
    // Error(usage) for a URI that names no key or several; Error(token) for the token.
    explicit OfficerKey(const OfficerKeySpec& spec);
    ~OfficerKey();
    OfficerKey(const OfficerKey&) = delete;
    OfficerKey& operator=(const OfficerKey&) = delete;

    // "officer key \"officer1\" on token \"KRA\" (certificate CN=Officer 1)"
    const std::string& name() const { return name_; }
    // The certificate on the officer's token next to the key, if any.
    const X509* certificate() const { return certificate_.get(); }

    struct Opened {
        SecretBytes content;
        std::size_t recipient = 0;  // index into envelope.recipients
    };
    // Tries the recipients this key can be (the one its certificate names, or without a
    // certificate every recipient of its key type) and returns the content of the first
    // that opens. Nothing when none does. Error(bad_input) when a recipient that names
    // this key's certificate yields a CEK under which the content does not authenticate
    // (an altered file).
    std::optional<Opened> open(const Envelope& envelope, const std::string& what);

    // Logs out and closes the officer's token (the destructor does so too, quietly).
    void close();

    // Set when the token refused OAEP with SHA-256 and the raw RSA operation
    // (CKM_RSA_X_509) was used instead, the padding checked on the host.
    bool used_raw_rsa() const { return used_raw_rsa_; }

private:
    std::optional<SecretBytes> recover_cek(const RecipientEntry& recipient);

    OpenToken token_;
    CK_OBJECT_HANDLE key_ = CK_INVALID_HANDLE;
    CK_KEY_TYPE key_type_ = CKK_RSA;
    ossl::Cert certificate_;
    std::string name_;
    bool used_raw_rsa_ = false;
};

}  // namespace p11vault::escrow
