// SPDX-License-Identifier: Apache-2.0
// p11vault backup: token -> password-protected PKCS#12 (docs/cli.md).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "p11vault/secret_source.hpp"
#include "src/atomic_file.hpp"
#include "src/backup.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/common.hpp"
#include "src/cli/progress.hpp"
#include "src/cli/reports.hpp"
#include "src/escrow/escrow.hpp"
#include "src/new_secret_policy.hpp"
#include "src/ossl.hpp"
#include "src/token.hpp"

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
    std::vector<std::string> recipients;
    unsigned recipient_threshold = 1;
    bool recipient_allow_expired = false;
    std::optional<std::string> record;
    bool json = false;
    bool quiet = false;
};

// --out must name a file in a directory that exists: said before any secret is asked for
// or the token touched, not after the work as a failure to create a temporary file.
void check_out_path(const std::string& out) {
    if (out.empty()) throw Error(ErrorKind::usage, "--out needs a file name, e.g. --out ca.p12");
    const std::string directory = directory_of(out);
    struct stat status {};
    if (::stat(directory.c_str(), &status) != 0)
        throw Error(ErrorKind::usage, fmt::format("--out {}: the directory {} does not exist ({}); create it first",
                                                 out, directory, std::strerror(errno)));
    if (!S_ISDIR(status.st_mode))
        throw Error(ErrorKind::usage, fmt::format("--out {}: {} is not a directory", out, directory));
    if (out.back() == '/' || (::stat(out.c_str(), &status) == 0 && S_ISDIR(status.st_mode)))
        throw Error(ErrorKind::usage, fmt::format("--out {} is a directory; give a file name in it, e.g. {}/ca.p12",
                                                 out, out.back() == '/' ? out.substr(0, out.size() - 1) : out));
}

void run(const BackupCommandOptions& o) {
    BackupOptions options;
    options.selection.all = o.all;
    for (const auto& id : o.ids) options.selection.ids.push_back(parse_hex_id(id));
    options.selection.labels = o.labels;
    options.profile = o.profile == "legacy" ? pkcs12::Profile::legacy
                      : o.profile == "fips" ? pkcs12::Profile::fips
                                            : pkcs12::Profile::modern;
    options.iterations = o.iterations;
    options.chain_files = o.chain;
    options.token_wrap_only = o.token_wrap_only;
    options.skip_unsupported = o.skip_unsupported;
    options.lock_wait = lock_wait_of(o.lock_wait);
    check_new_iterations(o.iterations);
    check_out_path(o.out);
    // Recovery officers' certificates are checked before the token is touched.
    std::vector<escrow::OfficerCertificate> officers;
    if (!o.recipients.empty()) {
        if (o.password)
            throw Error(ErrorKind::usage, "--password and --recipient exclude each other: an escrowed backup is "
                                         "opened by a recovery officer's key, not a password");
        officers = escrow::load_officer_certificates(o.recipients, o.recipient_allow_expired);
        if (o.recipient_threshold > officers.size())
            throw Error(ErrorKind::usage, fmt::format("--recipient-threshold {} is more than the {} --recipient "
                                                     "certificate{} given",
                                                     o.recipient_threshold, officers.size(),
                                                     officers.size() == 1 ? "" : "s"));
    } else if (o.recipient_threshold != 1 || o.recipient_allow_expired) {
        throw Error(ErrorKind::usage, "--recipient-threshold and --recipient-allow-expired need --recipient");
    }
    // Refuse an existing target before asking for any secret.
    if (!o.force && ::access(o.out.c_str(), F_OK) == 0)
        throw Error(ErrorKind::refused, o.out + " exists; choose another --out or give --force to replace it");

    RunRecord record;
    record.command = "backup";
    record.file = o.out;
    run_recorded(o.record, record, [&] {
        OpenToken token = open_token(o.token, /*read_write=*/false, /*login=*/true);
        record.token = token.info;
        if (token.uri.object_id) options.selection.ids.push_back(*token.uri.object_id);
        if (token.uri.object_label) options.selection.labels.push_back(*token.uri.object_label);
        // Read under the token's shared lock: never in the middle of another run's writes.
        TokenLock lock(*token.session, LockMode::shared, options.lock_wait);
        // Selection problems are reported before the password is asked for.
        Inventory inventory = read_inventory(*token.session, PublicKeyObjects::when_needed);
        refuse_duplicate_ids(inventory, select_private_keys(inventory, options.selection));
        // Escrowed: the PKCS#12 inside has the fixed password of docs/escrow.md; the
        // envelope around it is the protection.
        SecretBytes password = officers.empty()
                                   ? read_secret(o.password, "backup password", "--password", Prompt::confirm)
                                   : SecretBytes::from_text(escrow::kInnerPassword);
        std::vector<std::string> password_warnings;
        if (officers.empty()) password_warnings = check_new_password(password, options.profile, o.iterations);
        ProgressLine progress("backup", o.quiet);
        BackupResult result = run_backup(*token.session, quirks_for(*token.session), inventory, password, options);
        progress.clear();
        result.warnings.insert(result.warnings.begin(), password_warnings.begin(), password_warnings.end());
        if (!officers.empty()) result.file = escrow::make_escrow_file(result.file, officers, o.recipient_threshold);
        for (const auto& stale : remove_stale_temporaries(directory_of(o.out)))
            result.warnings.push_back("removed " + stale + ", a temporary file an interrupted p11vault run left");
        write_file_atomically(o.out, result.file, o.force ? Overwrite::allow : Overwrite::refuse);
        record.keys = result.keys;
        record.keys.insert(record.keys.end(), result.skipped.begin(), result.skipped.end());
        record.file_sha256 = ossl::hex(ossl::sha256(result.file.data(), result.file.size()));
        record.details = {{"profile", o.profile}, {"certificates", result.certificates}};
        Json escrow_details = nullptr;
        if (!officers.empty()) {
            escrow_details = {{"format", o.recipient_threshold == 1 ? "cms-auth-enveloped-data" : "p11vault-threshold"},
                              {"threshold", o.recipient_threshold},
                              {"recipients", Json::array()}};
            for (const auto& officer : officers)
                escrow_details["recipients"].push_back({{"subject", officer.subject},
                                                        {"key_type", officer.key_type},
                                                        {"certificate_sha256", ossl::hex(officer.sha256)}});
            record.details["escrow"] = escrow_details;
        }

        if (o.json) {
            Json document;
            document["format"] = json_format("backup");
            document["file"] = o.out;
            document["file_sha256"] = *record.file_sha256;
            document["profile"] = o.profile;
            document["token"] = token_json(token.slot, token.info);
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
                if (key.path == "host-reencrypt" || key.path == "attribute-read")
                    notes.add("decrypted on this host for a moment (" + key.path +
                                  "); use a token that wraps with CKM_AES_CBC_PAD, or --token-wrap-only to refuse this",
                              ossl::hex(key.id));
            notes.print(stdout);
            std::fflush(stdout);
            print_warnings(result.warnings);
            if (!officers.empty())
                std::printf("Escrowed to %zu recovery officer%s: any %u of them open%s it\n", officers.size(),
                            officers.size() == 1 ? "" : "s", o.recipient_threshold,
                            o.recipient_threshold == 1 ? "s" : "");
            std::printf("SHA-256 %s  %s\n", record.file_sha256->c_str(), o.out.c_str());
            std::printf("Backed up %zu key%s and %zu certificate%s from token \"%s\" to %s (%s profile)\n",
                        result.keys.size(), result.keys.size() == 1 ? "" : "s", result.certificates,
                        result.certificates == 1 ? "" : "s", printable(token.info.label).c_str(), o.out.c_str(),
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
    add_output_options(command, options->record, options->json);
    add_quiet_option(command, options->quiet);
    command.callback([options] { run(*options); });
}

}  // namespace p11vault::cli
