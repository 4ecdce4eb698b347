// SPDX-License-Identifier: Apache-2.0
// p11vault migrate: token -> token in memory (docs/cli.md).
#include <cstdio>
#include <memory>

#include "p11vault/error.hpp"
#include "src/backup.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/common.hpp"
#include "src/cli/progress.hpp"
#include "src/cli/reports.hpp"
#include "src/migrate.hpp"
#include "src/ossl.hpp"
#include "src/token.hpp"

namespace p11vault::cli {
namespace {

using Json = nlohmann::ordered_json;

struct MigrateCommandOptions {
    TokenOptions from, to;
    std::vector<std::string> ids, labels;
    bool all = false;
    bool token_wrap_only = false;
    std::string on_conflict = "fail";
    bool extractable = false;
    bool dry_run = false;
    double lock_wait = 10;
    bool renumber_duplicate_ids = false;
    bool skip_unsupported = false;
    pkcs12::Limits limits;
    std::optional<std::string> record;
    bool json = false;
    bool quiet = false;
};

void add_side_options(CLI::App& command, TokenOptions& side, const std::string& prefix, const std::string& which) {
    side.option_prefix = prefix + "-";
    command
        .add_option("--" + prefix + "-module", side.module,
                    "PKCS#11 module of the " + which + " token: a library path or a p11-kit module name")
        ->option_text("PATH|NAME");
    command.add_option("--" + prefix + "-module-init", side.module_init, "C_Initialize parameters for that module")
        ->option_text("STRING");
    command.add_option("--" + prefix + "-token", side.token_uri, which + " token by pkcs11: URI")->option_text("URI");
    command.add_option("--" + prefix + "-token-label", side.token_label, which + " token by label")->option_text("LABEL");
    command.add_option("--" + prefix + "-slot", side.slot, which + " token by slot id")->option_text("N");
    command.add_option("--" + prefix + "-pin", side.pin_source, "user PIN source of the " + which + " token")
        ->option_text("SRC");
}

void run(const MigrateCommandOptions& o) {
    if (!token_selection_given(o.from) || !token_selection_given(o.to))
        throw Error(ErrorKind::usage, "name both tokens: --from-token/--from-token-label/--from-slot and "
                                     "--to-token/--to-token-label/--to-slot");
    BackupOptions backup;
    backup.selection.all = o.all;
    for (const auto& id : o.ids) backup.selection.ids.push_back(parse_hex_id(id));
    backup.selection.labels = o.labels;
    backup.token_wrap_only = o.token_wrap_only;
    backup.lock_wait = lock_wait_of(o.lock_wait);
    backup.allow_duplicate_ids = o.renumber_duplicate_ids;  // renumbered on the target
    backup.skip_unsupported = o.skip_unsupported;
    RestoreOptions restore;
    restore.dry_run = o.dry_run;
    restore.extractable = o.extractable;
    restore.lock_wait = backup.lock_wait;
    restore.renumber_duplicate_ids = o.renumber_duplicate_ids;
    restore.skip_unsupported = o.skip_unsupported;
    restore.on_conflict = o.on_conflict == "skip"      ? ConflictPolicy::skip
                          : o.on_conflict == "replace" ? ConflictPolicy::replace
                                                       : ConflictPolicy::fail;

    RunRecord record;
    record.command = "migrate";
    run_recorded(o.record, record, [&] {
        // One module loaded once when both tokens live in it; one process cannot load the
        // same module twice with different C_Initialize parameters (NSS softoken).
        std::string from_path = resolve_module_path(o.from), to_path = resolve_module_path(o.to);
        auto from_module = load_module(o.from);
        std::shared_ptr<pkcs11::Module> to_module;
        if (from_path == to_path) {
            if (o.from.module_init.value_or("") != o.to.module_init.value_or(""))
                throw Error(ErrorKind::usage, "both tokens use " + from_path +
                                                 " with different init parameters, which one process cannot load; "
                                                 "use backup and restore instead");
            to_module = from_module;
        } else {
            to_module = load_module(o.to);
        }
        OpenToken source = open_token(from_module, o.from, /*read_write=*/false, /*login=*/true);
        OpenToken target = open_token(to_module, o.to, /*read_write=*/true, /*login=*/true);
        if (source.module == target.module && source.slot == target.slot)
            throw Error(ErrorKind::usage, "the source and the target are the same token");
        record.token = target.info;
        ProgressLine progress(o.dry_run ? "migrate (dry run)" : "migrate", o.quiet);
        MigrateResult result = run_migrate(*source.session, quirks_for(*source.session), *target.session,
                                           quirks_for(*target.session), backup, restore, o.limits);
        progress.clear();
        // Each key's path out of the source and into the target.
        std::vector<KeyReport> keys = result.imported.keys;
        for (std::size_t i = 0; i < keys.size() && i < result.exported.keys.size(); ++i)
            keys[i].path = result.exported.keys[i].path + " -> " + keys[i].path;
        // Keys that could not leave the source (--skip-unsupported) are listed too.
        keys.insert(keys.end(), result.exported.skipped.begin(), result.exported.skipped.end());
        record.keys = keys;
        record.details = {{"from_token", {{"label", source.info.label}, {"serial", source.info.serial}}},
                          {"dry_run", o.dry_run}};
        if (o.json) {
            Json document;
            document["format"] = json_format("migrate");
            document["from"] = token_json(source.slot, source.info);
            document["to"] = token_json(target.slot, target.info);
            document["dry_run"] = o.dry_run;
            document["keys"] = Json::array();
            for (const auto& key : keys) document["keys"].push_back(key_report_json(key));
            document["certificates_written"] = result.imported.certificates_written;
            std::vector<std::string> warnings = result.exported.warnings;
            warnings.insert(warnings.end(), result.imported.warnings.begin(), result.imported.warnings.end());
            document["warnings"] = warnings;
            print_json(document);
        } else {
            std::printf("%s %zu key%s from token \"%s\" to token \"%s\"%s\n", o.dry_run ? "Dry run: would migrate" : "Migrated",
                        keys.size(), keys.size() == 1 ? "" : "s", printable(source.info.label).c_str(),
                        printable(target.info.label).c_str(), o.dry_run ? "" : "; public keys verified on the target");
            print_key_table(keys, true);
        }
        print_warnings(result.exported.warnings);
        print_warnings(result.imported.warnings);
    });
}

}  // namespace

void add_migrate_command(CLI::App& command) {
    auto options = std::make_shared<MigrateCommandOptions>();
    add_side_options(command, options->from, "from", "source");
    add_side_options(command, options->to, "to", "target");
    command.add_option("--id", options->ids, "migrate the private key with this CKA_ID (hex; repeatable)")->option_text("HEX");
    command.add_option("--label", options->labels, "migrate the private key with this CKA_LABEL (repeatable)")
        ->option_text("TEXT");
    command.add_flag("--all", options->all, "migrate every private key of the source token");
    command.add_flag("--token-wrap-only", options->token_wrap_only, "refuse keys the source token cannot wrap itself");
    command.add_option("--on-conflict", options->on_conflict, "fail (default), skip or replace")
        ->check(CLI::IsMember({"fail", "skip", "replace"}));
    command.add_flag("--extractable", options->extractable, "make the migrated keys extractable on the target");
    command.add_flag("--dry-run", options->dry_run, "check everything and write nothing to the target");
    add_lock_wait_option(command, options->lock_wait);
    command.add_flag("--skip-unsupported", options->skip_unsupported,
                     "migrate the other keys when one cannot leave the source or go on the target");
    command.add_flag("--renumber-duplicate-ids", options->renumber_duplicate_ids,
                     "different source keys sharing a CKA_ID each get the SHA-1 of their public key as CKA_ID "
                     "on the target (default: refuse)");
    add_object_limit_options(command, options->limits);
    add_output_options(command, options->record, options->json);
    add_quiet_option(command, options->quiet);
    command.callback([options] { run(*options); });
}

}  // namespace p11vault::cli
