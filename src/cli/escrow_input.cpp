// SPDX-License-Identifier: Apache-2.0
#include "src/cli/escrow_input.hpp"

#include <cstdio>

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "p11vault/secret_source.hpp"
#include "src/cli/common.hpp"

namespace p11vault::cli {

std::vector<RecoveryOfficerKey> EscrowInputOptions::specs(const std::optional<std::string>& fallback_module) const {
    std::vector<RecoveryOfficerKey> out;
    for (const auto& uri : recipient_keys) out.push_back({uri, module ? module : fallback_module, pin_source});
    return out;
}

void add_escrow_input_options(CLI::App& command, EscrowInputOptions& options, bool with_shares) {
    command
        .add_option("--recipient-key", options.recipient_keys,
                    "open an escrowed file with a recovery officer's private key on a token, by RFC 7512 URI "
                    "(pkcs11:token=KRA;object=officer1; repeatable for M-of-N files)")
        ->option_text("URI");
    command.add_option("--recipient-module", options.module,
                       "PKCS#11 module of the officers' tokens, where a --recipient-key URI names none "
                       "(default: as --module)")
        ->option_text("PATH|NAME");
    command.add_option("--recipient-pin", options.pin_source,
                       "PIN source for the officers' tokens, where a --recipient-key URI has no pin-source "
                       "(absent: prompt)")
        ->option_text("SRC");
    if (with_shares)
        command.add_option("--escrow-share", options.share_files,
                           "an officer's share of an M-of-N escrowed file, from p11vault escrow-share (repeatable)")
            ->option_text("FILE");
}

InputFile read_input_file(const FileInputOptions& file, const EscrowInputOptions& escrow_options,
                          const std::optional<std::string>& fallback_module, bool may_stay_closed) {
    InputFile input;
    BackupFileBytes read = read_backup_file(file.in, file.limits.max_file_size);
    input.file_sha256 = std::move(read.sha256);
    std::vector<std::uint8_t> data = std::move(read.data);
    if (!read.escrowed) {
        if (escrow_options.given() || escrow_options.module || escrow_options.pin_source)
            throw Error(ErrorKind::usage, file.in + " is not an escrowed file: --recipient-key, --recipient-module, "
                                                   "--recipient-pin and --escrow-share are for files backed up with "
                                                   "--recipient");
        input.password = read_secret(file.password, "password of " + file.in, "--password", Prompt::once);
        input.pkcs12 = std::move(data);
        input.content_opened = true;
        return input;
    }
    if (file.password)
        throw Error(ErrorKind::usage, file.in + " is escrowed to recovery officers and has no password: give "
                                               "--recipient-key (or --escrow-share) instead of --password");
    input.escrow = describe_escrow(data, file.in);
    if (!escrow_options.given() && may_stay_closed) return input;
    WarningPrinter warnings;
    OpenedEscrow opened = open_escrowed_backup(data, file.in, escrow_options.specs(fallback_module),
                                               escrow_options.share_files, warnings);
    input.opened_by = std::move(opened.opened_by);
    // The reader takes ordinary bytes; the PKCS#12's keys stay encrypted under PBES2
    // until the reader or the token decrypts them.
    input.pkcs12.assign(opened.pkcs12.data(), opened.pkcs12.data() + opened.pkcs12.size());
    input.password = escrow_inner_password();
    input.content_opened = true;
    return input;
}

nlohmann::ordered_json escrow_json(const InputFile& input) {
    using Json = nlohmann::ordered_json;
    if (!input.escrow) return Json(nullptr);
    const EscrowSummary& summary = *input.escrow;
    const bool envelope = summary.format == EscrowFormat::cms_envelope;
    Json document;
    document["format"] = envelope ? "cms-auth-enveloped-data" : "p11vault-threshold";
    document["format_version"] = envelope ? Json(nullptr) : Json(summary.format_version);
    document["threshold"] = summary.threshold;
    document["content_encryption"] = summary.content_encryption;
    document["recipients"] = Json::array();
    for (const auto& recipient : summary.recipients) {
        auto optional_text = [](const std::string& text) { return text.empty() ? Json(nullptr) : Json(text); };
        document["recipients"].push_back(
            {{"algorithm", recipient.algorithm},
             {"issuer", optional_text(recipient.issuer)},
             {"serial", optional_text(recipient.serial)},
             {"subject_key_id", optional_text(recipient.subject_key_id)},
             {"subject", recipient.subject ? Json(*recipient.subject) : Json(nullptr)},
             {"certificate_sha256", recipient.certificate_sha256 ? Json(*recipient.certificate_sha256) : Json(nullptr)}});
    }
    document["content_opened"] = input.opened();
    document["opened_by"] = input.opened_by;
    return document;
}

void print_escrow_summary(const InputFile& input) {
    if (!input.escrow) return;
    const EscrowSummary& summary = *input.escrow;
    if (summary.format == EscrowFormat::cms_envelope)
        std::printf("Escrowed to recovery officers: any 1 of %zu opens it (CMS AuthEnvelopedData, %s)\n",
                    summary.recipients.size(), summary.content_encryption.c_str());
    else
        std::printf("Escrowed to recovery officers: any %u of %zu open it together (p11vault threshold format %u, %s)\n",
                    summary.threshold, summary.recipients.size(), summary.format_version,
                    summary.content_encryption.c_str());
    for (std::size_t i = 0; i < summary.recipients.size(); ++i) {
        const auto& recipient = summary.recipients[i];
        std::printf("  recipient %zu: %s\n", i + 1, recipient.algorithm.c_str());
        if (recipient.subject) std::printf("    subject %s\n", printable(*recipient.subject).c_str());
        if (!recipient.issuer.empty())
            std::printf("    issuer %s, serial 0x%s\n", printable(recipient.issuer).c_str(), recipient.serial.c_str());
        if (!recipient.subject_key_id.empty())
            std::printf("    subject key identifier %s\n", recipient.subject_key_id.c_str());
        if (recipient.certificate_sha256) std::printf("    certificate SHA-256 %s\n", recipient.certificate_sha256->c_str());
    }
}

}  // namespace p11vault::cli
