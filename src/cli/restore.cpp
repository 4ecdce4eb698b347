// SPDX-License-Identifier: Apache-2.0
// p11vault restore: PKCS#12 from any producer -> token, all or nothing (docs/cli.md).
#include <cstdio>
#include <memory>

#include "p11vault/error.hpp"
#include "p11vault/restore.hpp"
#include "src/cli/api_bridge.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/common.hpp"
#include "src/cli/escrow_input.hpp"
#include "src/cli/progress.hpp"
#include "src/cli/reports.hpp"

namespace p11vault::cli {
namespace {

using Json = nlohmann::ordered_json;

struct RestoreCommandOptions {
    TokenOptions token;
    FileInputOptions file;
    EscrowInputOptions escrow;
    bool dry_run = false;
    std::string on_conflict = "fail";
    bool extractable = false;
    bool skip_unsupported = false;
    double lock_wait = 10;
    unsigned jobs = 0;
    bool renumber_duplicate_ids = false;
    std::optional<std::string> record;
    bool json = false;
    bool quiet = false;
};

void run(const RestoreCommandOptions& o) {
    RestoreSpec spec;
    spec.token = token_spec_of(o.token);
    spec.file_name = o.file.in;
    spec.limits = o.file.limits;
    spec.dry_run = o.dry_run;
    spec.on_conflict = o.on_conflict == "skip"      ? ConflictPolicy::skip
                       : o.on_conflict == "replace" ? ConflictPolicy::replace
                                                    : ConflictPolicy::fail;
    spec.extractable = o.extractable;
    spec.skip_unsupported = o.skip_unsupported;
    spec.lock_wait = lock_wait_of(o.lock_wait);
    spec.jobs = o.jobs;
    spec.renumber_duplicate_ids = o.renumber_duplicate_ids;
    CommandRun command(o.dry_run ? "restore (dry run)" : "restore", o.quiet);

    RunRecord record;
    record.command = o.dry_run ? "restore-dry-run" : "restore";
    record.file = o.file.in;
    command.on_token_opened = [&](const TokenDescription& token) { record.token = token; };
    run_recorded(o.record, record, [&] {
        // An escrowed file is opened with the officers' tokens (and those closed again)
        // before the target token is opened.
        InputFile input = read_input_file(o.file, o.escrow, o.token.module, /*may_stay_closed=*/false);
        record.file_sha256 = input.file_sha256;
        if (input.escrow) record.details["escrow"] = escrow_json(input);
        command.add_token(o.token);
        command.set_file_password(std::move(input.password));
        spec.file = std::move(input.pkcs12);
        const RestoreReport result = command.call([&] { return restore(spec, command, command); });
        const std::vector<KeyResult>& keys = result.keys;
        record.keys = keys;
        record.details["certificates_written"] = result.certificates_written;
        record.details["dry_run"] = result.dry_run;

        if (o.json) {
            Json document;
            document["format"] = json_format("restore");
            document["file"] = o.file.in;
            document["file_sha256"] = *record.file_sha256;
            document["dry_run"] = result.dry_run;
            document["token"] = token_json(result.token);
            document["keys"] = Json::array();
            for (const auto& key : keys) document["keys"].push_back(key_report_json(key));
            document["certificates_written"] = result.certificates_written;
            document["quirks"] = result.quirks;
            if (input.escrow) document["escrow"] = escrow_json(input);
            document["warnings"] = result.warnings;
            print_json(document);
            print_warnings(result.warnings);
        } else {
            // The table, notes and warnings first; the summary last, where it stays on
            // screen (as backup does).
            print_key_table(keys, true);
            for (const auto& quirk : result.quirks)
                std::printf("note: the file needed a producer quirk to read: %s\n", quirk.c_str());
            std::fflush(stdout);
            print_warnings(result.warnings);
            std::size_t restored = 0;
            for (const auto& key : keys)
                if (key.status == "restored" || key.status == "replaced" || key.status == "would-restore") ++restored;
            std::printf("%s %zu of %zu key%s and %zu certificate%s from %s to token \"%s\"\n",
                        result.dry_run ? "Dry run: would restore" : "Restored", restored, keys.size(),
                        keys.size() == 1 ? "" : "s", result.certificates_written,
                        result.certificates_written == 1 ? "" : "s", o.file.in.c_str(),
                        printable(result.token.label).c_str());
        }
    });
}

}  // namespace

void add_restore_command(CLI::App& command) {
    auto options = std::make_shared<RestoreCommandOptions>();
    add_token_options(command, options->token);
    add_file_input_options(command, options->file, "restore");
    add_escrow_input_options(command, options->escrow, /*with_shares=*/true);
    command.add_flag("--dry-run", options->dry_run,
                     "check everything (password, file, login, conflicts, key types) and write nothing");
    command.add_option("--on-conflict", options->on_conflict,
                       "when an object with the same CKA_ID or label exists: fail (default), skip, replace")
        ->check(CLI::IsMember({"fail", "skip", "replace"}));
    command.add_flag("--extractable", options->extractable,
                     "make restored private and secret keys extractable (default: CKA_EXTRACTABLE=FALSE)");
    command.add_flag("--skip-unsupported", options->skip_unsupported,
                     "restore the other keys when the token cannot hold a key's type, or the file holds a bag "
                     "p11vault cannot restore");
    add_lock_wait_option(command, options->lock_wait);
    add_jobs_option(command, options->jobs);
    command.add_flag("--renumber-duplicate-ids", options->renumber_duplicate_ids,
                     "different keys sharing a localKeyID each get the SHA-1 of their public key as CKA_ID "
                     "(default: refuse the file)");
    add_output_options(command, options->record, options->json);
    add_quiet_option(command, options->quiet);
    command.callback([options] { run(*options); });
}

}  // namespace p11vault::cli
