// SPDX-License-Identifier: Apache-2.0
#include "src/escrow/officers.hpp"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "src/keys.hpp"

namespace p11vault::escrow {

namespace {

ossl::Cert read_certificate(const std::string& path) {
    ossl::Bio bio(BIO_new_file(path.c_str(), "rb"));
    if (!bio) throw Error(ErrorKind::bad_input, "cannot open --recipient file " + path);
    ossl::Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) {
        ossl::last_error();
        (void)BIO_reset(bio.get());
        cert.reset(d2i_X509_bio(bio.get(), nullptr));
    }
    if (!cert) {
        ossl::last_error();
        throw Error(ErrorKind::bad_input, "--recipient file " + path + " holds no certificate (PEM or DER)");
    }
    return cert;
}

}  // namespace

std::string officer_key_type(const X509* cert) {
    EVP_PKEY* key = X509_get0_pubkey(cert);
    if (key == nullptr) return {};
    try {
        keys::KeyDescription description = keys::describe(key);
        if (description.algorithm == "RSA" && description.bits >= 2048) return description.name();
        if (description.algorithm == "EC" &&
            (description.curve == "P-256" || description.curve == "P-384" || description.curve == "P-521"))
            return description.name();
    } catch (const Error&) {
    }
    return {};
}

std::vector<OfficerCertificate> load_officer_certificates(const std::vector<std::string>& paths, bool allow_expired) {
    std::vector<OfficerCertificate> out;
    for (const auto& path : paths) {
        OfficerCertificate officer;
        officer.cert = read_certificate(path);
        officer.source = path;
        X509* cert = officer.cert.get();
        officer.subject = ossl::name_text(X509_get_subject_name(cert));
        auto der = ossl::cert_der(cert);
        officer.sha256 = ossl::sha256(der.data(), der.size());
        const std::string name = fmt::format("recipient {} ({})", officer.subject, path);
        officer.key_type = officer_key_type(cert);
        if (officer.key_type.empty())
            throw Error(ErrorKind::bad_input, name + " has a key p11vault cannot encrypt to: recovery officers need "
                                                    "RSA (2048 bits or more) or EC P-256, P-384 or P-521");
        const bool rsa = officer.key_type.rfind("RSA", 0) == 0;
        const std::uint32_t usage = X509_get_key_usage(cert);  // UINT32_MAX: no keyUsage extension
        if (usage != UINT32_MAX && (usage & (rsa ? KU_KEY_ENCIPHERMENT : KU_KEY_AGREEMENT)) == 0)
            throw Error(ErrorKind::refused,
                        fmt::format("{}: its key usage does not allow {}; a recovery officer's certificate needs it",
                                    name, rsa ? "keyEncipherment" : "keyAgreement"));
        if (!allow_expired) {
            if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
                throw Error(ErrorKind::refused, name + " has expired (--recipient-allow-expired uses it anyway)");
            if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0)
                throw Error(ErrorKind::refused, name + " is not valid yet (--recipient-allow-expired uses it anyway)");
        }
        for (const auto& other : out)
            if (other.sha256 == officer.sha256)
                throw Error(ErrorKind::usage, fmt::format("{} is given twice ({} and {})", name, other.source, path));
        out.push_back(std::move(officer));
    }
    return out;
}

}  // namespace p11vault::escrow
