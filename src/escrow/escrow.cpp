// SPDX-License-Identifier: Apache-2.0
#include "src/escrow/escrow.hpp"

#include <openssl/x509v3.h>

#include <fstream>
#include <iterator>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "p11vault/error.hpp"
#include "src/escrow/envelope.hpp"
#include "src/escrow/threshold.hpp"
#include "src/shares.hpp"

namespace p11vault::escrow {

namespace {

std::string certificate_sha256_hex(const X509* cert) {
    auto der = ossl::cert_der(cert);
    return ossl::hex(ossl::sha256(der.data(), der.size()));
}

RecipientSummary summary_of(const RecipientEntry& entry) {
    RecipientSummary summary;
    summary.algorithm = entry.algorithm;
    if (!entry.id.subject_key_id.empty()) {
        summary.subject_key_id = ossl::hex(entry.id.subject_key_id);
    } else {
        summary.issuer = entry.id.issuer_text();
        summary.serial = entry.id.serial_hex();
    }
    return summary;
}

// How a recipient is named in records: its certificate's fingerprint where known.
std::string recipient_name(const RecipientEntry& entry, const X509* cert) {
    if (cert != nullptr && entry.id.matches(cert)) return certificate_sha256_hex(cert);
    return entry.id.text();
}

std::string read_share_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(ErrorKind::usage, "cannot read --escrow-share file " + path);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct ShareText {
    SecretBytes text;
    std::size_t officer = 0;  // index
};

// The share an officer's key opens in a threshold file, or nothing.
std::optional<ShareText> open_share(const ThresholdFile& file, OfficerKey& key, const std::string& what) {
    for (std::size_t i = 0; i < file.share_envelopes.size(); ++i) {
        // With a certificate on the officer's token, only that officer's envelope is tried.
        if (key.certificate() != nullptr && X509_cmp(key.certificate(), file.officers[i].get()) != 0) continue;
        const std::string where = fmt::format("{}, share envelope {}", what, i + 1);
        Envelope envelope = parse_envelope(file.share_envelopes[i], where);
        if (auto opened = key.open(envelope, where)) return ShareText{std::move(opened->content), i};
    }
    return std::nullopt;
}

void note_raw_rsa(const OfficerKey& key, std::vector<std::string>& warnings) {
    if (key.used_raw_rsa())
        warnings.push_back(key.name() + ": the token does not do RSA-OAEP with SHA-256, so p11vault used its raw "
                                        "RSA decryption (CKM_RSA_X_509) and checked the OAEP padding on the host; "
                                        "the key stayed on the token");
}

[[noreturn]] void not_a_recipient(const OfficerKey& key, const std::string& what) {
    throw Error(ErrorKind::bad_password,
                fmt::format("{} does not open {}: it is not one of the file's recovery officers (see p11vault verify "
                            "--in FILE for the list)",
                            key.name(), what));
}

}  // namespace

FileKind detect(std::span<const std::uint8_t> data) {
    if (looks_like_envelope(data)) return FileKind::envelope;
    if (looks_like_threshold(data)) return FileKind::threshold;
    return FileKind::pkcs12;
}

std::vector<std::uint8_t> make_escrow_file(std::span<const std::uint8_t> pkcs12,
                                           const std::vector<OfficerCertificate>& officers, unsigned threshold) {
    if (officers.empty()) throw Error(ErrorKind::usage, "no --recipient certificate given");
    if (threshold <= 1) {
        std::vector<X509*> certs;
        for (const auto& officer : officers) certs.push_back(officer.cert.get());
        return seal(pkcs12, certs);
    }
    return make_threshold_file(pkcs12, officers, threshold);
}

EscrowSummary describe(std::span<const std::uint8_t> data, const std::string& what) {
    EscrowSummary summary;
    if (looks_like_envelope(data)) {
        Envelope envelope = parse_envelope(data, what);
        summary.kind = FileKind::envelope;
        summary.content_encryption = envelope.content_algorithm;
        for (const auto& entry : envelope.recipients) summary.recipients.push_back(summary_of(entry));
        return summary;
    }
    ThresholdFile file = parse_threshold_file(data, what);
    summary.kind = FileKind::threshold;
    summary.format_version = file.version;
    summary.threshold = file.threshold;
    summary.content_encryption = "AES-256-GCM";
    for (std::size_t i = 0; i < file.officers.size(); ++i) {
        Envelope envelope = parse_envelope(file.share_envelopes[i], fmt::format("{}, share envelope {}", what, i + 1));
        if (envelope.recipients.size() != 1 || !envelope.recipients.front().id.matches(file.officers[i].get()))
            throw Error(ErrorKind::bad_input,
                        fmt::format("{}: share envelope {} is not for officer certificate {}", what, i + 1, i + 1));
        RecipientSummary recipient = summary_of(envelope.recipients.front());
        X509* cert = file.officers[i].get();
        recipient.subject = ossl::name_text(X509_get_subject_name(cert));
        recipient.certificate_sha256 = certificate_sha256_hex(cert);
        recipient.issuer = ossl::name_text(X509_get_issuer_name(cert));
        recipient.serial = ossl::hex(ossl::octets(X509_get0_serialNumber(cert)));
        if (const ASN1_OCTET_STRING* key_id = X509_get0_subject_key_id(cert))
            recipient.subject_key_id = ossl::hex(ossl::octets(key_id));
        summary.recipients.push_back(std::move(recipient));
    }
    return summary;
}

OpenedEscrow open_escrow_file(std::span<const std::uint8_t> data, const std::string& what,
                              const std::vector<OfficerKeySpec>& officer_keys,
                              const std::vector<std::string>& share_files) {
    if (officer_keys.empty() && share_files.empty())
        throw Error(ErrorKind::usage, what + " is escrowed to recovery officers: give --recipient-key URI (or, for an "
                                            "M-of-N file, --escrow-share FILE)");
    OpenedEscrow result;
    if (looks_like_envelope(data)) {
        if (!share_files.empty())
            throw Error(ErrorKind::usage, what + " is a 1-of-N escrow file: --escrow-share is for M-of-N files");
        if (officer_keys.size() > 1)
            throw Error(ErrorKind::usage, what + " is a 1-of-N escrow file: one --recipient-key opens it");
        Envelope envelope = parse_envelope(data, what);
        OfficerKey key(officer_keys.front());
        std::optional<OfficerKey::Opened> opened = key.open(envelope, what);
        if (!opened) not_a_recipient(key, what);
        note_raw_rsa(key, result.warnings);
        result.opened_by.push_back(recipient_name(envelope.recipients[opened->recipient], key.certificate()));
        key.close();
        result.pkcs12 = std::move(opened->content);
        return result;
    }

    ThresholdFile file = parse_threshold_file(data, what);
    std::vector<shares::Share> parts;
    std::set<unsigned> numbers;
    auto add_share = [&](const SecretBytes& text, const std::string& source) {
        std::string copy(text.reveal_text());
        shares::Share share = shares::parse_share(copy, source);
        secure_wipe(copy.data(), copy.size());
        if (share.count != file.officers.size() || share.threshold != file.threshold)
            throw Error(ErrorKind::bad_input, fmt::format("{} is a share of a {}-of-{} set, not of {} ({}-of-{})", source,
                                                         share.threshold, share.count, what, file.threshold,
                                                         file.officers.size()));
        if (!numbers.insert(share.number).second)
            throw Error(ErrorKind::usage, fmt::format("{} is share {} again: each officer counts once", source,
                                                     share.number));
        result.opened_by.push_back(certificate_sha256_hex(file.officers[share.number - 1].get()));
        parts.push_back(std::move(share));
    };
    for (const auto& spec : officer_keys) {
        OfficerKey key(spec);
        std::optional<ShareText> share = open_share(file, key, what);
        if (!share) not_a_recipient(key, what);
        note_raw_rsa(key, result.warnings);
        key.close();
        add_share(share->text, key.name());
    }
    for (const auto& path : share_files) {
        std::string text = read_share_file(path);
        SecretBytes secret = SecretBytes::from_text(text);
        secure_wipe(text.data(), text.size());
        add_share(secret, path);
    }
    if (parts.size() < file.threshold)
        throw Error(ErrorKind::bad_password,
                    fmt::format("{} needs {} of its {} recovery officers; {} opened {} (add --recipient-key or "
                                "--escrow-share for more officers)",
                                what, file.threshold, file.officers.size(), parts.size(),
                                parts.size() == 1 ? "its share" : "their shares"));
    SecretBytes key = shares::combine(parts);
    result.pkcs12 = open_threshold_payload(file, key, what);
    return result;
}

ExtractedShare extract_share(std::span<const std::uint8_t> data, const std::string& what, const OfficerKeySpec& spec) {
    if (!looks_like_threshold(data))
        throw Error(ErrorKind::usage, what + " is not an M-of-N escrow file: escrow-share is for those; a 1-of-N file "
                                            "opens with restore --recipient-key alone");
    ThresholdFile file = parse_threshold_file(data, what);
    OfficerKey key(spec);
    std::optional<ShareText> share = open_share(file, key, what);
    if (!share) not_a_recipient(key, what);
    key.close();
    // Check that what the envelope held is a share of this file before writing it.
    std::string copy(share->text.reveal_text());
    shares::Share parsed = shares::parse_share(copy, what);
    secure_wipe(copy.data(), copy.size());
    if (parsed.number != share->officer + 1 || parsed.count != file.officers.size() ||
        parsed.threshold != file.threshold)
        throw Error(ErrorKind::bad_input, what + ": the share in officer envelope " +
                                             std::to_string(share->officer + 1) + " does not belong there");
    ExtractedShare out;
    out.text = std::move(share->text);
    out.number = parsed.number;
    out.officer = ossl::name_text(X509_get_subject_name(file.officers[share->officer].get()));
    return out;
}

}  // namespace p11vault::escrow
