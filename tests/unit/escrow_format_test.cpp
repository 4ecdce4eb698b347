// SPDX-License-Identifier: Apache-2.0
// The escrow formats without a token (issue 22): the CMS AuthEnvelopedData p11vault
// writes is read by OpenSSL's CMS_decrypt, and p11vault's own reader opens what OpenSSL
// writes, with the officer's key on the host standing in for the token (RSA-OAEP
// decryption, ECDH then p11vault's X9.63 KDF and key unwrap); the threshold format
// round-trips, and what p11vault does not accept is refused by name.
#include <gtest/gtest.h>

#include <openssl/cms.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <string>
#include <vector>

#include "p11vault/error.hpp"
#include "src/escrow/der.hpp"
#include "src/escrow/envelope.hpp"
#include "src/escrow/escrow.hpp"
#include "src/escrow/threshold.hpp"
#include "src/shares.hpp"
#include "tests/support/test_ca.hpp"

namespace p11vault::escrow {
namespace {

using testing::PkeyPtr;
using testing::X509Ptr;

struct HostOfficer {
    PkeyPtr key;
    X509Ptr cert;
};

HostOfficer host_officer(const std::string& algorithm, const char* usage) {
    HostOfficer officer;
    officer.key.reset(algorithm == "RSA" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048))
                                         : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    officer.cert.reset(X509_new());
    X509_set_version(officer.cert.get(), 2);
    static long serial = 0;
    ASN1_INTEGER_set(X509_get_serialNumber(officer.cert.get()), ++serial);
    X509_gmtime_adj(X509_getm_notBefore(officer.cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(officer.cert.get()), 86400);
    X509_set_pubkey(officer.cert.get(), officer.key.get());
    X509_NAME_add_entry_by_txt(X509_get_subject_name(officer.cert.get()), "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>("host officer"), -1, -1, 0);
    X509_set_issuer_name(officer.cert.get(), X509_get_subject_name(officer.cert.get()));
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, officer.cert.get(), officer.cert.get(), nullptr, nullptr, 0);
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, NID_key_usage, usage);
    X509_add_ext(officer.cert.get(), extension, -1);
    X509_EXTENSION_free(extension);
    X509_sign(officer.cert.get(), officer.key.get(), EVP_sha256());
    return officer;
}

// What the token does, on the host: the CEK of a recipient entry.
std::optional<SecretBytes> host_cek(const RecipientEntry& recipient, EVP_PKEY* key) {
    if (recipient.kind == RecipientKind::key_transport) {
        ossl::PkeyCtx context(EVP_PKEY_CTX_new(key, nullptr));
        EVP_PKEY_decrypt_init(context.get());
        EVP_PKEY_CTX_set_rsa_padding(context.get(), RSA_PKCS1_OAEP_PADDING);
        EVP_PKEY_CTX_set_rsa_oaep_md(context.get(), EVP_sha256());
        EVP_PKEY_CTX_set_rsa_mgf1_md(context.get(), EVP_sha256());
        SecretBytes out(512);
        size_t length = out.size();
        if (EVP_PKEY_decrypt(context.get(), out.data(), &length, recipient.encrypted_key.data(),
                             recipient.encrypted_key.size()) != 1)
            return std::nullopt;
        out.resize(length);
        return out;
    }
    ossl::Pkey peer(EVP_PKEY_new());
    EVP_PKEY_copy_parameters(peer.get(), key);
    EVP_PKEY_set1_encoded_public_key(peer.get(), recipient.originator_point.data(), recipient.originator_point.size());
    ossl::PkeyCtx context(EVP_PKEY_CTX_new(key, nullptr));
    EVP_PKEY_derive_init(context.get());
    EVP_PKEY_derive_set_peer(context.get(), peer.get());
    SecretBytes z(32);
    size_t length = z.size();
    if (EVP_PKEY_derive(context.get(), z.data(), &length) != 1) return std::nullopt;
    return unwrap_agreed_key(recipient, z);
}

std::vector<std::uint8_t> bytes(const std::string& text) { return {text.begin(), text.end()}; }

TEST(EscrowEnvelope, OpensslDecryptsWhatP11vaultSealsAndP11vaultOpensItForEachOfficer) {
    HostOfficer rsa = host_officer("RSA", "keyEncipherment");
    HostOfficer ec = host_officer("EC", "keyAgreement");
    const std::string content = "the PKCS#12 bytes would be here";
    const der::Bytes sealed = seal(bytes(content), {rsa.cert.get(), ec.cert.get()});
    ASSERT_TRUE(looks_like_envelope(sealed));
    EXPECT_EQ(detect(sealed), FileKind::envelope);

    for (HostOfficer* officer : {&rsa, &ec}) {
        const unsigned char* p = sealed.data();
        CMS_ContentInfo* cms = d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(sealed.size()));
        ASSERT_NE(cms, nullptr);
        BIO* out = BIO_new(BIO_s_mem());
        EXPECT_EQ(CMS_decrypt(cms, officer->key.get(), officer->cert.get(), nullptr, out, 0), 1);
        char* data = nullptr;
        const long length = BIO_get_mem_data(out, &data);
        EXPECT_EQ(std::string(data, static_cast<std::size_t>(length)), content);
        BIO_free(out);
        CMS_ContentInfo_free(cms);
    }

    const Envelope envelope = parse_envelope(sealed, "the test file");
    ASSERT_EQ(envelope.recipients.size(), 2u);
    EXPECT_EQ(envelope.content_algorithm, "AES-256-GCM");
    EXPECT_EQ(envelope.recipients[0].algorithm, "RSAES-OAEP-SHA256");
    EXPECT_EQ(envelope.recipients[1].algorithm, "ECDH-stdDH-SHA256-KDF");
    EXPECT_TRUE(envelope.recipients[0].id.matches(rsa.cert.get()));
    EXPECT_FALSE(envelope.recipients[0].id.matches(ec.cert.get()));
    EXPECT_TRUE(envelope.recipients[1].id.matches(ec.cert.get()));
    EXPECT_EQ(envelope.recipients[1].wrap_key_length, 32u);
    for (std::size_t i = 0; i < 2; ++i) {
        EVP_PKEY* key = i == 0 ? rsa.key.get() : ec.key.get();
        std::optional<SecretBytes> cek = host_cek(envelope.recipients[i], key);
        ASSERT_TRUE(cek) << i;
        std::optional<SecretBytes> opened = open_content(envelope, *cek);
        ASSERT_TRUE(opened) << i;
        EXPECT_EQ(std::string(opened->reveal_text()), content);
    }
    // The other officer's key recovers no CEK from an entry not meant for it.
    HostOfficer other = host_officer("EC", "keyAgreement");
    EXPECT_FALSE(host_cek(envelope.recipients[1], other.key.get()));
}

TEST(EscrowEnvelope, AnAlteredCiphertextOrTagDoesNotAuthenticate) {
    HostOfficer rsa = host_officer("RSA", "keyEncipherment");
    const der::Bytes sealed = seal(bytes("content"), {rsa.cert.get()});
    Envelope envelope = parse_envelope(sealed, "f");
    std::optional<SecretBytes> cek = host_cek(envelope.recipients[0], rsa.key.get());
    ASSERT_TRUE(cek);
    Envelope altered = envelope;
    altered.ciphertext[0] ^= 1;
    EXPECT_FALSE(open_content(altered, *cek));
    altered = envelope;
    altered.tag[0] ^= 1;
    EXPECT_FALSE(open_content(altered, *cek));
    EXPECT_TRUE(open_content(envelope, *cek));
}

TEST(EscrowEnvelope, OpensslsOwnEnvelopesAreReadAndItsOldSchemesRefusedByName) {
    HostOfficer rsa = host_officer("RSA", "keyEncipherment");
    BIO* in = BIO_new_mem_buf("x", 1);
    STACK_OF(X509)* recipients = sk_X509_new_null();
    sk_X509_push(recipients, rsa.cert.get());
    // PKCS#1 v1.5 key transport (OpenSSL's default) in an AuthEnvelopedData.
    CMS_ContentInfo* cms = CMS_encrypt(recipients, in, EVP_aes_256_gcm(), CMS_BINARY);
    ASSERT_NE(cms, nullptr);
    unsigned char* der = nullptr;
    int length = i2d_CMS_ContentInfo(cms, &der);
    der::Bytes v15(der, der + length);
    OPENSSL_free(der);
    CMS_ContentInfo_free(cms);
    try {
        parse_envelope(v15, "f");
        FAIL() << "PKCS#1 v1.5 accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::bad_input);
        EXPECT_NE(std::string(e.what()).find("PKCS#1 v1.5 key transport"), std::string::npos) << e.what();
    }
    // CBC EnvelopedData: not an AuthEnvelopedData, so not an escrow file at all.
    (void)BIO_reset(in);
    cms = CMS_encrypt(recipients, in, EVP_aes_256_cbc(), CMS_BINARY);
    der = nullptr;
    length = i2d_CMS_ContentInfo(cms, &der);
    der::Bytes cbc(der, der + length);
    OPENSSL_free(der);
    CMS_ContentInfo_free(cms);
    EXPECT_FALSE(looks_like_envelope(cbc));
    EXPECT_EQ(detect(cbc), FileKind::pkcs12);
    sk_X509_free(recipients);
    BIO_free(in);
}

TEST(EscrowThreshold, RoundTripsAndAnyTwoSharesOpenIt) {
    std::vector<OfficerCertificate> officers;
    std::vector<HostOfficer> hosts;
    for (const char* algorithm : {"RSA", "EC", "RSA"}) {
        hosts.push_back(host_officer(algorithm, std::string(algorithm) == "RSA" ? "keyEncipherment" : "keyAgreement"));
        OfficerCertificate officer;
        officer.cert.reset(X509_dup(hosts.back().cert.get()));
        officers.push_back(std::move(officer));
    }
    const std::string content = "the inner PKCS#12";
    const der::Bytes file = make_threshold_file(bytes(content), officers, 2);
    EXPECT_EQ(detect(file), FileKind::threshold);
    const ThresholdFile parsed = parse_threshold_file(file, "f");
    EXPECT_EQ(parsed.version, 1u);
    EXPECT_EQ(parsed.threshold, 2u);
    ASSERT_EQ(parsed.officers.size(), 3u);
    ASSERT_EQ(parsed.share_envelopes.size(), 3u);

    std::vector<shares::Share> parts;
    for (std::size_t i : {2u, 1u}) {
        Envelope envelope = parse_envelope(parsed.share_envelopes[i], "share");
        ASSERT_EQ(envelope.recipients.size(), 1u);
        EXPECT_TRUE(envelope.recipients[0].id.matches(parsed.officers[i].get()));
        std::optional<SecretBytes> cek = host_cek(envelope.recipients[0], hosts[i].key.get());
        ASSERT_TRUE(cek);
        std::optional<SecretBytes> text = open_content(envelope, *cek);
        ASSERT_TRUE(text);
        parts.push_back(shares::parse_share(std::string(text->reveal_text()), "share"));
        EXPECT_EQ(parts.back().number, i + 1);
    }
    const SecretBytes key = shares::combine(parts);
    EXPECT_EQ(std::string(open_threshold_payload(parsed, key, "f").reveal_text()), content);

    // The header is the GCM's additional data: another threshold does not authenticate.
    ThresholdFile altered = parse_threshold_file(file, "f");
    altered.header[altered.header.size() / 2] ^= 1;
    EXPECT_THROW(open_threshold_payload(altered, key, "f"), Error);

    const EscrowSummary summary = describe(file, "f");
    EXPECT_EQ(summary.kind, FileKind::threshold);
    EXPECT_EQ(summary.threshold, 2u);
    ASSERT_EQ(summary.recipients.size(), 3u);
    EXPECT_EQ(summary.recipients[0].subject, "CN=host officer");
}

TEST(EscrowThreshold, ThresholdOutsideTwoToNIsAUsageError) {
    std::vector<OfficerCertificate> officers(2);
    HostOfficer host = host_officer("RSA", "keyEncipherment");
    for (auto& officer : officers) officer.cert.reset(X509_dup(host.cert.get()));
    try {
        make_threshold_file(bytes("x"), officers, 3);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::usage);
    }
}

TEST(EscrowDer, IndefiniteLengthsAndOverlongElementsAreRefused) {
    const der::Bytes indefinite = {0x30, 0x80, 0x02, 0x01, 0x00, 0x00, 0x00};
    der::Reader reader(indefinite, "input");
    try {
        reader.next(der::kSequence);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::bad_input);
        EXPECT_NE(std::string(e.what()).find("indefinite length"), std::string::npos);
    }
    const der::Bytes overlong = {0x30, 0x05, 0x02, 0x01};
    der::Reader short_reader(overlong, "input");
    EXPECT_THROW(short_reader.next(der::kSequence), Error);
    EXPECT_FALSE(looks_like_envelope(overlong));
    EXPECT_FALSE(looks_like_threshold(overlong));
    EXPECT_EQ(der::encode_integer(128), (der::Bytes{0x02, 0x02, 0x00, 0x80}));
}

}  // namespace
}  // namespace p11vault::escrow
