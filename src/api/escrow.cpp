// SPDX-License-Identifier: Apache-2.0
// The public face of src/escrow/ (include/p11vault/escrow.hpp): the certificates stay
// OpenSSL objects inside OfficerCertificates, everything else crosses as text and bytes.
#include "p11vault/escrow.hpp"

#include "p11vault/digest.hpp"
#include "src/escrow/escrow.hpp"
#include "src/pkcs12/reader.hpp"

namespace p11vault {

static_assert(kDefaultMaxFileSize == pkcs12::Limits{}.max_file_size, "one default for --max-file-size");

namespace {

escrow::OfficerKeySpec spec_of(const RecoveryOfficerKey& key) { return {key.uri, key.module, key.pin_source}; }

EscrowRecipient recipient_of(const escrow::RecipientSummary& summary) {
    return {summary.algorithm,      summary.issuer,  summary.serial,
            summary.subject_key_id, summary.subject, summary.certificate_sha256};
}

}  // namespace

struct OfficerCertificates::Loaded {
    std::vector<escrow::OfficerCertificate> officers;
    std::vector<OfficerCertificateInfo> info;
};

OfficerCertificates::OfficerCertificates(std::unique_ptr<Loaded> loaded) : loaded_(std::move(loaded)) {}
OfficerCertificates::OfficerCertificates(OfficerCertificates&&) noexcept = default;
OfficerCertificates& OfficerCertificates::operator=(OfficerCertificates&&) noexcept = default;
OfficerCertificates::~OfficerCertificates() = default;

OfficerCertificates OfficerCertificates::load(const std::vector<std::string>& paths, bool allow_expired) {
    auto loaded = std::make_unique<Loaded>();
    loaded->officers = escrow::load_officer_certificates(paths, allow_expired);
    for (const auto& officer : loaded->officers)
        loaded->info.push_back({officer.source, officer.subject, officer.key_type, hex(officer.sha256)});
    return OfficerCertificates(std::move(loaded));
}

const std::vector<OfficerCertificateInfo>& OfficerCertificates::certificates() const { return loaded_->info; }

std::vector<std::uint8_t> OfficerCertificates::wrap(std::span<const std::uint8_t> pkcs12, unsigned threshold) const {
    return escrow::make_escrow_file(pkcs12, loaded_->officers, threshold);
}

SecretBytes escrow_inner_password() { return SecretBytes::from_text(escrow::kInnerPassword); }

BackupFileBytes read_backup_file(const std::string& path, std::size_t max_file_size) {
    BackupFileBytes file;
    file.data = pkcs12::read_file(path, max_file_size);
    file.sha256 = sha256_hex(file.data);
    file.escrowed = escrow::detect(file.data) != escrow::FileKind::pkcs12;
    return file;
}

EscrowSummary describe_escrow(std::span<const std::uint8_t> data, const std::string& what) {
    const escrow::EscrowSummary described = escrow::describe(data, what);
    EscrowSummary summary;
    summary.format = described.kind == escrow::FileKind::threshold ? EscrowFormat::threshold : EscrowFormat::cms_envelope;
    summary.format_version = described.format_version;
    summary.threshold = described.threshold;
    summary.content_encryption = described.content_encryption;
    for (const auto& recipient : described.recipients) summary.recipients.push_back(recipient_of(recipient));
    return summary;
}

OpenedEscrow open_escrowed_backup(std::span<const std::uint8_t> data, const std::string& what,
                                  const std::vector<RecoveryOfficerKey>& keys,
                                  const std::vector<std::string>& share_files, Events& events) {
    std::vector<escrow::OfficerKeySpec> specs;
    for (const auto& key : keys) specs.push_back(spec_of(key));
    escrow::OpenedEscrow opened = escrow::open_escrow_file(data, what, specs, share_files);
    for (const auto& warning : opened.warnings) events.warning(warning);
    return {std::move(opened.pkcs12), std::move(opened.opened_by)};
}

EscrowShare extract_escrow_share(std::span<const std::uint8_t> data, const std::string& what,
                                 const RecoveryOfficerKey& key) {
    escrow::ExtractedShare share = escrow::extract_share(data, what, spec_of(key));
    return {std::move(share.text), share.number, std::move(share.officer)};
}

}  // namespace p11vault
