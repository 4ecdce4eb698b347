// SPDX-License-Identifier: Apache-2.0
// p11vault migrate: token -> token in memory (docs/cli.md).
#include <cstdio>
#include <memory>

#include "p11vault/error.hpp"
#include "p11vault/migrate.hpp"
#include "src/cli/api_bridge.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/common.hpp"
#include "src/cli/progress.hpp"
#include "src/cli/reports.hpp"

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
    unsigned jobs = 0;
    bool renumber_duplicate_ids = false;
    bool skip_unsupported = false;
    FileLimits limits;  // --max-objects, --max-label-length
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
    MigrateSpec spec;
    spec.from = token_spec_of(o.from);
    spec.to = token_spec_of(o.to);
    if (!spec.from.selects_token() || !spec.to.selects_token())
        throw Error(ErrorKind::usage, "name both tokens: --from-token/--from-token-label/--from-slot and "
                                     "--to-token/--to-token-label/--to-slot");
    spec.keys.all = o.all;
    for (const auto& id : o.ids) spec.keys.ids.push_back(parse_hex_id(id));
    spec.keys.labels = o.labels;
    spec.token_wrap_only = o.token_wrap_only;
    spec.lock_wait = lock_wait_of(o.lock_wait);
    spec.jobs = o.jobs;
    spec.renumber_duplicate_ids = o.renumber_duplicate_ids;
    spec.skip_unsupported = o.skip_unsupported;
    spec.dry_run = o.dry_run;
    spec.extractable = o.extractable;
    spec.on_conflict = o.on_conflict == "skip"      ? ConflictPolicy::skip
                       : o.on_conflict == "replace" ? ConflictPolicy::replace
                                                    : ConflictPolicy::fail;
    spec.max_objects = o.limits.max_objects;
    spec.max_label_length = o.limits.max_label_length;
    CommandRun command(o.dry_run ? "migrate (dry run)" : "migrate", o.quiet);

    RunRecord record;
    record.command = "migrate";
    // The source is opened first, then the target: the record names the target.
    std::size_t opened = 0;
    command.on_token_opened = [&](const TokenDescription& token) {
        if (++opened == 2) record.token = token;
    };
    run_recorded(o.record, record, [&] {
        command.add_token(o.from);
        command.add_token(o.to);
        const MigrateReport result = command.call([&] { return migrate(spec, command, command); });
        const std::vector<KeyResult>& keys = result.keys;
        record.keys = keys;
        record.details = {{"from_token", {{"label", result.from.label}, {"serial", result.from.serial}}},
                          {"dry_run", o.dry_run}};
        if (o.json) {
            Json document;
            document["format"] = json_format("migrate");
            document["from"] = token_json(result.from);
            document["to"] = token_json(result.to);
            document["dry_run"] = o.dry_run;
            document["keys"] = Json::array();
            for (const auto& key : keys) document["keys"].push_back(key_report_json(key));
            document["certificates_written"] = result.certificates_written;
            std::vector<std::string> warnings = result.export_warnings;
            warnings.insert(warnings.end(), result.import_warnings.begin(), result.import_warnings.end());
            document["warnings"] = warnings;
            print_json(document);
        } else {
            std::printf("%s %zu key%s from token \"%s\" to token \"%s\"%s\n",
                        o.dry_run ? "Dry run: would migrate" : "Migrated", keys.size(), keys.size() == 1 ? "" : "s",
                        printable(result.from.label).c_str(), printable(result.to.label).c_str(),
                        o.dry_run ? "" : "; public keys verified on the target");
            print_key_table(keys, true);
        }
        print_warnings(result.export_warnings);
        print_warnings(result.import_warnings);
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
    add_jobs_option(command, options->jobs);
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
