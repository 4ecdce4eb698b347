// SPDX-License-Identifier: Apache-2.0
// The public migrate (include/p11vault/migrate.hpp): both tokens opened (one module
// loaded once when they share it), then run_migrate.
#include "p11vault/migrate.hpp"

#include "p11vault/error.hpp"
#include "src/api/convert.hpp"
#include "src/migrate.hpp"
#include "src/progress.hpp"
#include "src/token.hpp"

namespace p11vault {

MigrateReport migrate(const MigrateSpec& spec, SecretProvider& secrets, Events& events) {
    if (!spec.from.selects_token() || !spec.to.selects_token())
        throw Error(ErrorKind::usage, "name both tokens: --from-token/--from-token-label/--from-slot and "
                                     "--to-token/--to-token-label/--to-slot");
    BackupOptions backup;
    backup.selection = spec.keys;
    backup.token_wrap_only = spec.token_wrap_only;
    backup.lock_wait = spec.lock_wait;
    backup.jobs = spec.jobs;
    backup.allow_duplicate_ids = spec.renumber_duplicate_ids;  // renumbered on the target
    backup.skip_unsupported = spec.skip_unsupported;
    const RestoreOptions restore = api::restore_options_of(spec);
    pkcs12::Limits limits;
    limits.max_objects = spec.max_objects;
    limits.max_label_length = spec.max_label_length;

    const TokenOptions from = token_options_of(spec.from), to = token_options_of(spec.to);
    // One module loaded once when both tokens live in it; one process cannot load the
    // same module twice with different C_Initialize parameters (NSS softoken).
    const std::string from_path = resolve_module_path(from), to_path = resolve_module_path(to);
    auto from_module = load_module(from);
    std::shared_ptr<pkcs11::Module> to_module;
    if (from_path == to_path) {
        if (from.module_init.value_or("") != to.module_init.value_or(""))
            throw Error(ErrorKind::usage, "both tokens use " + from_path +
                                             " with different init parameters, which one process cannot load; "
                                             "use backup and restore instead");
        to_module = from_module;
    } else {
        to_module = load_module(to);
    }
    OpenToken source = open_token(from_module, from, /*read_write=*/false, /*login=*/true, secrets, events);
    OpenToken target = open_token(to_module, to, /*read_write=*/true, /*login=*/true, secrets, events);
    if (source.module == target.module && source.slot == target.slot)
        throw Error(ErrorKind::usage, "the source and the target are the same token");

    MigrateResult result = [&] {
        progress::Scope progress(events, "migrate");
        return run_migrate(*source.session, quirks_for(*source.session), *target.session, quirks_for(*target.session),
                           backup, restore, limits);
    }();
    MigrateReport report;
    report.from = describe_token(source.slot, source.info);
    report.to = describe_token(target.slot, target.info);
    // Each key's path out of the source and into the target.
    report.keys = api::key_results_of(result.imported.keys);
    for (std::size_t i = 0; i < report.keys.size() && i < result.exported.keys.size(); ++i)
        report.keys[i].source_path = api::key_path_of(result.exported.keys[i].path);
    // Keys that could not leave the source (skip_unsupported) are listed too.
    for (const auto& skipped : result.exported.skipped) report.keys.push_back(api::key_result_of(skipped));
    report.certificates_written = result.imported.certificates_written;
    report.export_warnings = std::move(result.exported.warnings);
    report.import_warnings = std::move(result.imported.warnings);
    report.dry_run = spec.dry_run;
    return report;
}

}  // namespace p11vault
