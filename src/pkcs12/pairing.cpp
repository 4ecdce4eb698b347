// SPDX-License-Identifier: Apache-2.0
#include "src/pkcs12/pairing.hpp"

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "src/keys.hpp"
#include "src/object_text.hpp"

namespace p11vault::pkcs12 {

namespace {

bool shares_local_key_id(const BagAttributes& a, const BagAttributes& b) {
    for (const auto& x : a.local_key_ids)
        for (const auto& y : b.local_key_ids)
            if (!x.empty() && x == y) return true;
    return false;
}

bool shares_local_key_id_with_another_key(const Contents& contents, const KeyBag& bag) {
    for (const auto& other : contents.keys)
        if (&other != &bag && shares_local_key_id(bag.attributes, other.attributes)) return true;
    return false;
}

}  // namespace

const CertBag* certificate_by_local_key_id(const Contents& contents, const KeyBag& bag) {
    if (shares_local_key_id_with_another_key(contents, bag)) return nullptr;
    for (const auto& cert : contents.certificates)
        if (shares_local_key_id(bag.attributes, cert.attributes)) return &cert;
    return nullptr;
}

const CertBag* certificate_by_public_key(const Contents& contents, const EVP_PKEY* key) {
    if (key == nullptr) return nullptr;
    for (const auto& cert : contents.certificates)
        if (keys::same_public_key(X509_get0_pubkey(cert.certificate.get()), key)) return &cert;
    return nullptr;
}

void refuse_mismatch(const KeyBag& bag, const CertBag& certificate) {
    const auto& ids = bag.attributes.local_key_ids;
    throw Error(ErrorKind::bad_input,
                fmt::format("{} ({}) does not match its certificate {} (same localKeyID, different public key)",
                            bag.where,
                            describe_object(ids.empty() ? Bytes{} : ids.front(), bag.attributes.friendly_name.value_or("")),
                            ossl::name_text(X509_get_subject_name(certificate.certificate.get()))));
}

void check_pairing(const KeyBag& bag, const CertBag& certificate, const EVP_PKEY* key) {
    if (!keys::same_public_key(X509_get0_pubkey(certificate.certificate.get()), key)) refuse_mismatch(bag, certificate);
}

}  // namespace p11vault::pkcs12
