// SPDX-License-Identifier: Apache-2.0
#include "src/escrow/officer_key.hpp"

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "pkcs11/error.hpp"

namespace p11vault::escrow {

namespace {

TokenOptions token_options_for(const OfficerKeySpec& spec) {
    TokenOptions options;
    options.token_uri = spec.uri;
    options.option_prefix = "recipient-";
    const pkcs11::TokenUri uri = pkcs11::parse_token_uri(spec.uri);
    if (!uri.module_path && !uri.module_name) options.module = spec.module;
    if (!uri.pin_source) options.pin_source = spec.pin_source;
    return options;
}

// The token's answers to an OAEP decryption that fails because the ciphertext is not for
// this key (SoftHSM says CKR_ENCRYPTED_DATA_INVALID, others CKR_GENERAL_ERROR or a
// length error).
bool is_not_this_key(CK_RV rv) {
    return rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE || rv == CKR_DATA_INVALID ||
           rv == CKR_DATA_LEN_RANGE || rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED;
}

// The subject of a public certificate the URI's object= / id= name, for the PIN prompt.
std::string certificate_named_by(pkcs11::Session& session, const pkcs11::TokenUri& uri) {
    pkcs11::AttributeTemplate match;
    match.add_class(CKO_CERTIFICATE);
    if (uri.object_id) match.add_bytes(CKA_ID, *uri.object_id);
    if (uri.object_label) match.add_string(CKA_LABEL, *uri.object_label);
    if (!uri.object_id && !uri.object_label) return {};
    for (CK_OBJECT_HANDLE object : session.find(match, 4)) {
        std::optional<pkcs11::Bytes> der = session.get_bytes(object, CKA_VALUE);
        if (!der) continue;
        const unsigned char* p = der->data();
        ossl::Cert cert(d2i_X509(nullptr, &p, static_cast<long>(der->size())));
        if (cert) return ossl::name_text(X509_get_subject_name(cert.get()));
        ossl::last_error();
    }
    return {};
}

}  // namespace

OfficerKey::OfficerKey(const OfficerKeySpec& spec) {
    TokenOptions options = token_options_for(spec);
    token_ = open_token(options, /*read_write=*/false, /*login=*/false);
    pkcs11::Session& session = *token_.session;
    // The prompt names the officer's certificate where the token shows it before login.
    const std::string subject = certificate_named_by(session, token_.uri);
    options.pin_prompt_detail = subject.empty() ? " (recovery officer's key)"
                                                : " (recovery officer, certificate " + subject + ")";
    log_in(token_, options);
    pkcs11::AttributeTemplate match;
    match.add_class(CKO_PRIVATE_KEY);
    if (token_.uri.object_id) match.add_bytes(CKA_ID, *token_.uri.object_id);
    if (token_.uri.object_label) match.add_string(CKA_LABEL, *token_.uri.object_label);
    std::vector<CK_OBJECT_HANDLE> found = session.find(match, 16);
    const std::string token_name = fmt::format("token \"{}\"", token_.info.label);
    if (found.empty())
        throw Error(ErrorKind::usage, fmt::format("--recipient-key {}: no private key on {} matches", spec.uri, token_name));
    if (found.size() > 1)
        throw Error(ErrorKind::usage, fmt::format("--recipient-key {}: {} private keys on {} match; name the officer's "
                                                 "key with object= or id=",
                                                 spec.uri, found.size(), token_name));
    key_ = found.front();
    const CK_ATTRIBUTE_TYPE wanted[] = {CKA_KEY_TYPE, CKA_ID, CKA_LABEL};
    pkcs11::AttributeValues values = session.get_attributes(key_, wanted);
    key_type_ = values.ulong(CKA_KEY_TYPE).value_or(CK_UNAVAILABLE_INFORMATION);
    const std::string label = values.text(CKA_LABEL).value_or("");
    if (key_type_ != CKK_RSA && key_type_ != CKK_EC)
        throw Error(ErrorKind::usage, fmt::format("--recipient-key {}: the key \"{}\" on {} is neither RSA nor EC",
                                                 spec.uri, label, token_name));
    // The certificate with the key's CKA_ID says which recipient the key is.
    if (const pkcs11::Bytes* id = values.bytes(CKA_ID); id != nullptr && !id->empty()) {
        pkcs11::AttributeTemplate cert_match;
        cert_match.add_class(CKO_CERTIFICATE).add_bytes(CKA_ID, *id);
        for (CK_OBJECT_HANDLE cert_object : session.find(cert_match, 16)) {
            std::optional<pkcs11::Bytes> der = session.get_bytes(cert_object, CKA_VALUE);
            if (!der) continue;
            const unsigned char* p = der->data();
            ossl::Cert cert(d2i_X509(nullptr, &p, static_cast<long>(der->size())));
            if (cert) {
                certificate_ = std::move(cert);
                break;
            }
            ossl::last_error();
        }
    }
    name_ = fmt::format("officer key \"{}\" on {}", label, token_name);
    if (certificate_) name_ += " (certificate " + ossl::name_text(X509_get_subject_name(certificate_.get())) + ")";
}

OfficerKey::~OfficerKey() {
    try {
        close();
    } catch (...) {
    }
}

void OfficerKey::close() {
    if (!token_.session) return;
    try {
        if (token_.info.login_required()) token_.session->logout();
    } catch (const Error&) {
        // Another session of this process may have logged out already.
    }
    token_.session.reset();
    token_.module.reset();
}

std::optional<SecretBytes> OfficerKey::recover_cek(const RecipientEntry& recipient) {
    pkcs11::Session& session = *token_.session;
    if (recipient.kind == RecipientKind::key_transport) {
        if (!used_raw_rsa_) {
            CK_RSA_PKCS_OAEP_PARAMS params{CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, nullptr, 0};
            try {
                return session.decrypt(pkcs11::Mechanism::with_struct(CKM_RSA_PKCS_OAEP, params), key_,
                                       recipient.encrypted_key);
            } catch (const pkcs11::Pkcs11Error& e) {
                const bool refuses_sha256 =
                    e.function() == "C_DecryptInit" && (e.rv() == CKR_ARGUMENTS_BAD || e.rv() == CKR_MECHANISM_PARAM_INVALID);
                if (!refuses_sha256) {
                    if (is_not_this_key(e.rv())) return std::nullopt;
                    throw;
                }
                used_raw_rsa_ = true;
            }
        }
        // The token's raw RSA decryption; the OAEP padding (which only reveals the CEK) is
        // checked on the host.
        SecretBytes encoded;
        try {
            encoded = session.decrypt(pkcs11::Mechanism(CKM_RSA_X_509), key_, recipient.encrypted_key);
        } catch (const pkcs11::Pkcs11Error& e) {
            if (is_not_this_key(e.rv())) return std::nullopt;
            throw Error(e.kind(), std::string(e.what()) + "; the officer's token refused RSA-OAEP with SHA-256 "
                                                          "as well, so it cannot open this file");
        }
        return oaep_sha256_decode(encoded, recipient.encrypted_key.size());
    }
    // ECDH: Z into a session secret the host may read, destroyed right after.
    if (recipient.originator_point.size() < 3 || recipient.originator_point[0] != 0x04) return std::nullopt;
    const std::size_t field_bytes = (recipient.originator_point.size() - 1) / 2;
    CK_ECDH1_DERIVE_PARAMS params{CKD_NULL, 0, nullptr, static_cast<CK_ULONG>(recipient.originator_point.size()),
                                  const_cast<CK_BYTE*>(recipient.originator_point.data())};
    pkcs11::AttributeTemplate secret_template;
    secret_template.add_class(CKO_SECRET_KEY)
        .add_key_type(CKK_GENERIC_SECRET)
        .add_bool(CKA_TOKEN, false)
        .add_bool(CKA_SENSITIVE, false)
        .add_bool(CKA_EXTRACTABLE, true)
        .add_ulong(CKA_VALUE_LEN, field_bytes);
    CK_OBJECT_HANDLE derived = CK_INVALID_HANDLE;
    try {
        derived = session.derive_key(pkcs11::Mechanism::with_struct(CKM_ECDH1_DERIVE, params), key_, secret_template);
    } catch (const pkcs11::Pkcs11Error& e) {
        // A point on another curve than the officer's key: not this key.
        if (e.rv() == CKR_MECHANISM_PARAM_INVALID || e.rv() == CKR_DOMAIN_PARAMS_INVALID || is_not_this_key(e.rv()))
            return std::nullopt;
        throw;
    }
    pkcs11::ScopedObject secret(session, derived);
    std::optional<SecretBytes> shared = session.get_secret(secret.get(), CKA_VALUE);
    if (!shared)
        throw Error(ErrorKind::token, "the officer's token agreed a key (C_DeriveKey CKM_ECDH1_DERIVE) but does not "
                                     "show its value to p11vault, which needs it for the CMS key derivation");
    return unwrap_agreed_key(recipient, *shared);
}

std::optional<OfficerKey::Opened> OfficerKey::open(const Envelope& envelope, const std::string& what) {
    const RecipientKind kind = key_type_ == CKK_RSA ? RecipientKind::key_transport : RecipientKind::key_agreement;
    for (std::size_t i = 0; i < envelope.recipients.size(); ++i) {
        const RecipientEntry& recipient = envelope.recipients[i];
        if (recipient.kind != kind) continue;
        const bool named = certificate_ && recipient.id.matches(certificate_.get());
        if (certificate_ && !named) continue;
        std::optional<SecretBytes> cek = recover_cek(recipient);
        if (!cek) continue;
        std::optional<SecretBytes> content = open_content(envelope, *cek);
        if (content) return Opened{std::move(*content), i};
        if (named)
            throw Error(ErrorKind::bad_input,
                        fmt::format("{}: {} recovered the content-encryption key, but the content does not "
                                    "authenticate under it: the file was altered",
                                    what, name_));
    }
    return std::nullopt;
}

}  // namespace p11vault::escrow
