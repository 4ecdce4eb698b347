// SPDX-License-Identifier: Apache-2.0
// p11vault backup: token -> password-protected PKCS#12 (docs/cli.md).
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "p11vault/backup.hpp"
#include "p11vault/error.hpp"
#include "src/cli/api_bridge.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/common.hpp"
#include "src/cli/progress.hpp"
#include "src/cli/reports.hpp"

namespace p11vault::cli {
namespace {

using Json = nlohmann::ordered_json;

struct BackupCommandOptions {
    TokenOptions token;
    std::string out;
    std::optional<std::string> password;
    std::vector<std::string> ids;
    std::vector<std::string> labels;
    bool all = false;
    std::string profile = "modern";
    std::vector<std::string> chain;
    std::uint64_t iterations = 0;
    bool token_wrap_only = false;
    bool skip_unsupported = false;
    bool force = false;
    double lock_wait = 10;
    unsigned jobs = 0;
    std::vector<std::string> recipients;
    unsigned recipient_threshold = 1;
    bool recipient_allow_expired = false;
    std::optional<std::string> record;
    bool json = false;
    bool quiet = false;
};

void run(const BackupCommandOptions& o) {
    if (o.out.empty()) throw Error(ErrorKind::usage, "--out needs a file name, e.g. --out ca.p12");
    if (!o.recipients.empty() && o.password)
        throw Error(ErrorKind::usage, "--password and --recipient exclude each other: an escrowed backup is "
                                     "opened by a recovery officer's key, not a password");
    BackupSpec spec;
    spec.token = token_spec_of(o.token);
    spec.keys.all = o.all;
    for (const auto& id : o.ids) spec.keys.ids.push_back(parse_hex_id(id));
    spec.keys.labels = o.labels;
    spec.profile = o.profile == "legacy" ? FileProfile::legacy
                   : o.profile == "fips" ? FileProfile::fips
                                         : FileProfile::modern;
    spec.iterations = o.iterations;
    spec.chain_files = o.chain;
    spec.token_wrap_only = o.token_wrap_only;
    spec.skip_unsupported = o.skip_unsupported;
    spec.lock_wait = lock_wait_of(o.lock_wait);
    spec.jobs = o.jobs;
    spec.escrow = {o.recipients, o.recipient_threshold, o.recipient_allow_expired};
    spec.out = o.out;
    spec.overwrite = o.force;
    CommandRun command("backup", o.quiet);
    command.add_token(o.token);
    command.set_new_file_password_source(o.password);

    RunRecord record;
    record.command = "backup";
    record.file = o.out;
    command.on_token_opened = [&](const TokenDescription& token) { record.token = token; };
    run_recorded(o.record, record, [&] {
        const BackupReport result = command.call([&] { return backup(spec, command, command); });
        record.keys = result.keys;
        record.keys.insert(record.keys.end(), result.skipped.begin(), result.skipped.end());
        record.file_sha256 = hex(result.file_sha256);
        record.details = {{"profile", o.profile}, {"certificates", result.certificates}};
        Json escrow_details = nullptr;
        if (!result.escrow_recipients.empty()) {
            escrow_details = {{"format", result.escrow_threshold == 1 ? "cms-auth-enveloped-data" : "p11vault-threshold"},
                              {"threshold", result.escrow_threshold},
                              {"recipients", Json::array()}};
            for (const auto& officer : result.escrow_recipients)
                escrow_details["recipients"].push_back({{"subject", officer.subject},
                                                        {"key_type", officer.key_type},
                                                        {"certificate_sha256", hex(officer.certificate_sha256)}});
            record.details["escrow"] = escrow_details;
        }

        if (o.json) {
            Json document;
            document["format"] = json_format("backup");
            document["file"] = o.out;
            document["file_sha256"] = *record.file_sha256;
            document["profile"] = o.profile;
            document["token"] = token_json(result.token);
            document["keys"] = Json::array();
            for (const auto& key : result.keys) document["keys"].push_back(key_report_json(key));
            document["skipped"] = Json::array();
            for (const auto& key : result.skipped) document["skipped"].push_back(key_report_json(key));
            document["certificates"] = result.certificates;
            document["escrow"] = escrow_details;
            document["warnings"] = result.warnings;
            print_json(document);
            print_warnings(result.warnings);
        } else {
            // The table, notes (one line per kind, keys counted) and warnings first; the
            // summary and the file's SHA-256 last, where they stay on screen.
            print_key_table(result.keys, false);
            Notes notes;
            for (const auto& key : result.keys)
                if (decrypted_on_host(key.path))
                    notes.add(fmt::format("decrypted on this host for a moment ({}); use a token that wraps with "
                                          "CKM_AES_CBC_PAD, or --token-wrap-only to refuse this",
                                          key_path_name(key.path)),
                              hex(key.id));
            notes.print(stdout);
            std::fflush(stdout);
            print_warnings(result.warnings);
            const std::size_t officers = result.escrow_recipients.size();
            if (officers != 0)
                std::printf("Escrowed to %zu recovery officer%s: any %u of them open%s it\n", officers,
                            officers == 1 ? "" : "s", result.escrow_threshold, result.escrow_threshold == 1 ? "s" : "");
            std::printf("SHA-256 %s  %s\n", record.file_sha256->c_str(), o.out.c_str());
            std::printf("Backed up %zu key%s and %zu certificate%s from token \"%s\" to %s (%s profile)\n",
                        result.keys.size(), result.keys.size() == 1 ? "" : "s", result.certificates,
                        result.certificates == 1 ? "" : "s", printable(result.token.label).c_str(), o.out.c_str(),
                        o.profile.c_str());
        }
    });
}

}  // namespace

void add_backup_command(CLI::App& command) {
    auto options = std::make_shared<BackupCommandOptions>();
    add_token_options(command, options->token);
    command.add_option("--out", options->out, "the file to write: PKCS#12, or with --recipient a CMS envelope around one")->required()->option_text("FILE.p12");
    command.add_option("--password", options->password,
                       "password source for the file: env:VAR, file:PATH, fd:N, stdin (absent: prompt twice)")
        ->option_text("SRC");
    command.add_option("--id", options->ids, "back up the private or secret key with this CKA_ID (hex; repeatable)")
        ->option_text("HEX");
    command.add_option("--label", options->labels, "back up the private or secret key with this CKA_LABEL (repeatable)")
        ->option_text("TEXT");
    command.add_flag("--all", options->all, "back up every private and secret key of the token");
    command
        .add_option("--profile", options->profile,
                    "modern (PBES2 AES-256, default), fips (modern with a PBMAC1 MAC) or legacy (3DES, SHA-1 MAC)")
        ->check(CLI::IsMember({"modern", "fips", "legacy"}));
    command.add_option("--chain", options->chain, "PEM file with issuer certificates to include (repeatable)")
        ->option_text("PEMFILE");
    // The upper bound is check_new_iterations's: what restore and verify accept.
    command
        .add_option("--iter", options->iterations,
                    "KDF iterations (default 600000 modern and fips, 2000 legacy; at most 10000000)")
        ->check(CLI::PositiveNumber);
    command.add_flag("--token-wrap-only", options->token_wrap_only,
                     "refuse (exit 6) any key the token cannot wrap into the file itself");
    command.add_flag("--skip-unsupported", options->skip_unsupported,
                     "back up the keys that can leave the token and list the others (default: refuse, exit 6)");
    command
        .add_option("--recipient", options->recipients,
                    "escrow the backup to a recovery officer's certificate (RSA or EC; repeatable) instead of a "
                    "password: a CMS envelope only the officer's private key opens")
        ->option_text("CERT.pem");
    command
        .add_option("--recipient-threshold", options->recipient_threshold,
                    "how many of the --recipient officers must come together to open the file (default 1: any one)")
        ->check(CLI::Range(1u, 255u))
        ->option_text("M");
    command.add_flag("--recipient-allow-expired", options->recipient_allow_expired,
                     "use --recipient certificates that have expired or are not valid yet");
    command.add_flag("--force", options->force, "replace --out if it exists");
    add_lock_wait_option(command, options->lock_wait);
    add_jobs_option(command, options->jobs);
    add_output_options(command, options->record, options->json);
    add_quiet_option(command, options->quiet);
    command.callback([options] { run(*options); });
}

}  // namespace p11vault::cli
