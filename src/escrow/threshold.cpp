// SPDX-License-Identifier: Apache-2.0
#include "src/escrow/threshold.hpp"

#include <cstring>

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "src/escrow/envelope.hpp"
#include "src/secret_random.hpp"
#include "src/shares.hpp"

namespace p11vault::escrow {

namespace {

constexpr const char* kAes256Gcm = "2.16.840.1.101.3.4.1.46";
constexpr std::size_t kNonceLength = 12;
constexpr std::size_t kTagLength = 16;

der::Bytes copy_of(std::span<const std::uint8_t> span) { return der::Bytes(span.begin(), span.end()); }

std::span<const std::uint8_t> magic_bytes() {
    return {reinterpret_cast<const std::uint8_t*>(kThresholdMagic), std::strlen(kThresholdMagic)};
}

}  // namespace

bool looks_like_threshold(std::span<const std::uint8_t> data) {
    try {
        der::Reader outer(data, "the file");
        der::Reader body(outer.next(der::kSequence).content, "the file");
        der::Element magic = body.next(der::kUtf8String);
        return std::equal(magic.content.begin(), magic.content.end(), magic_bytes().begin(), magic_bytes().end());
    } catch (const Error&) {
        return false;
    }
}

der::Bytes make_threshold_file(std::span<const std::uint8_t> content, const std::vector<OfficerCertificate>& officers,
                               unsigned threshold) {
    if (threshold < 2 || threshold > officers.size() || officers.size() > 255)
        throw Error(ErrorKind::usage, fmt::format("--recipient-threshold {} needs between {} and 255 --recipient "
                                                 "certificates (there are {})",
                                                 threshold, threshold < 2 ? 2 : threshold, officers.size()));
    const SecretBytes key = random_secret(32);
    std::vector<shares::Share> parts = shares::split(key, threshold, static_cast<unsigned>(officers.size()));
    der::Bytes certificates, envelopes;
    for (std::size_t i = 0; i < officers.size(); ++i) {
        auto cert = ossl::cert_der(officers[i].cert.get());
        certificates.insert(certificates.end(), cert.begin(), cert.end());
        const SecretBytes share_text = shares::format_share(parts[i]);
        der::Bytes envelope = seal(share_text.bytes(), {officers[i].cert.get()});
        envelopes.insert(envelopes.end(), envelope.begin(), envelope.end());
    }
    der::Bytes header = der::concat({der::encode(der::kUtf8String, magic_bytes()), der::encode_integer(kThresholdVersion),
                                     der::encode_integer(threshold), der::encode(der::kSequence, certificates),
                                     der::encode(der::kSequence, envelopes)});

    der::Bytes nonce = ossl::random_bytes(kNonceLength);
    ossl::Cipher cipher(EVP_CIPHER_fetch(ossl::libctx_modern(), "AES-256-GCM", nullptr));
    ossl::CipherCtx context(EVP_CIPHER_CTX_new());
    int length = 0;
    if (!cipher || !context ||
        EVP_EncryptInit_ex2(context.get(), cipher.get(), key.data(), nonce.data(), nullptr) != 1 ||
        EVP_EncryptUpdate(context.get(), nullptr, &length, header.data(), static_cast<int>(header.size())) != 1)
        ossl::fail(ErrorKind::failure, "AES-256-GCM");
    der::Bytes ciphertext(content.size() + 16);
    int written = 0, final_length = 0;
    if (EVP_EncryptUpdate(context.get(), ciphertext.data(), &written, content.data(), static_cast<int>(content.size())) != 1 ||
        EVP_EncryptFinal_ex(context.get(), ciphertext.data() + written, &final_length) != 1)
        ossl::fail(ErrorKind::failure, "AES-256-GCM");
    ciphertext.resize(static_cast<std::size_t>(written + final_length));
    der::Bytes tag(kTagLength);
    if (EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(tag.size()), tag.data()) != 1)
        ossl::fail(ErrorKind::failure, "AES-256-GCM tag");
    der::Bytes payload = der::encode(
        der::kSequence, der::concat({der::encode_oid(kAes256Gcm), der::encode(der::kOctetString, nonce),
                                     der::encode(der::kOctetString, ciphertext), der::encode(der::kOctetString, tag)}));
    return der::encode(der::kSequence, der::concat({header, payload}));
}

ThresholdFile parse_threshold_file(std::span<const std::uint8_t> data, const std::string& what) {
    der::Reader outer(data, what);
    der::Element whole = outer.next(der::kSequence);
    outer.expect_end();
    der::Reader body(whole.content, what);
    const std::uint8_t* header_begin = whole.content.data();
    der::Element magic = body.next(der::kUtf8String);
    if (!std::equal(magic.content.begin(), magic.content.end(), magic_bytes().begin(), magic_bytes().end()))
        throw Error(ErrorKind::bad_input, what + " is not a p11vault threshold escrow file");
    ThresholdFile file;
    file.version = static_cast<unsigned>(der::small_integer(body.next(der::kInteger), what));
    if (file.version != kThresholdVersion)
        throw Error(ErrorKind::bad_input, fmt::format("{} is a threshold escrow file of format version {}; this "
                                                     "p11vault reads version {}",
                                                     what, file.version, kThresholdVersion));
    const std::uint64_t threshold = der::small_integer(body.next(der::kInteger), what);
    der::Reader certificates(body.next(der::kSequence).content, what);
    while (!certificates.empty()) {
        der::Element element = certificates.next(der::kSequence);
        const unsigned char* p = element.encoding.data();
        ossl::Cert cert(d2i_X509(nullptr, &p, static_cast<long>(element.encoding.size())));
        if (!cert) {
            ossl::last_error();
            throw Error(ErrorKind::bad_input, fmt::format("{}: officer certificate {} does not decode", what,
                                                         file.officers.size() + 1));
        }
        file.officers.push_back(std::move(cert));
    }
    der::Reader envelopes(body.next(der::kSequence).content, what);
    while (!envelopes.empty()) file.share_envelopes.push_back(copy_of(envelopes.next(der::kSequence).encoding));
    der::Element payload = body.next(der::kSequence);
    const std::uint8_t* header_end = payload.encoding.data();
    body.expect_end();
    file.header.assign(header_begin, header_end);

    const std::size_t count = file.officers.size();
    if (count != file.share_envelopes.size() || count < 2 || count > 255 || threshold < 2 || threshold > count)
        throw Error(ErrorKind::bad_input, fmt::format("{}: threshold {} of {} officers and {} share envelopes do not "
                                                     "fit together",
                                                     what, threshold, count, file.share_envelopes.size()));
    file.threshold = static_cast<unsigned>(threshold);
    der::Reader fields(payload.content, what);
    if (der::oid_text(fields.next(der::kOid)) != kAes256Gcm)
        throw Error(ErrorKind::bad_input, what + ": the payload is not encrypted with AES-256-GCM");
    file.nonce = copy_of(fields.next(der::kOctetString).content);
    file.ciphertext = copy_of(fields.next(der::kOctetString).content);
    file.tag = copy_of(fields.next(der::kOctetString).content);
    fields.expect_end();
    if (file.nonce.size() != kNonceLength || file.tag.size() != kTagLength)
        throw Error(ErrorKind::bad_input, what + ": the payload's nonce or tag has the wrong length");
    return file;
}

SecretBytes open_threshold_payload(const ThresholdFile& file, const SecretBytes& key, const std::string& what) {
    Envelope envelope;
    envelope.content_algorithm = "AES-256-GCM";
    envelope.key_length = 32;
    envelope.nonce = file.nonce;
    envelope.ciphertext = file.ciphertext;
    envelope.aad = file.header;
    envelope.tag = file.tag;
    std::optional<SecretBytes> content = open_content(envelope, key);
    if (!content)
        throw Error(ErrorKind::bad_input, what + ": the content does not authenticate under the key the shares "
                                                "recovered: the file was altered, or the shares are of another file");
    return std::move(*content);
}

}  // namespace p11vault::escrow
