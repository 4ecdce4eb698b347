// SPDX-License-Identifier: Apache-2.0
// Between the public value types (include/p11vault/) and the library's own: key reports,
// limits, profiles. Internal to src/api/.
#pragma once

#include <string>
#include <vector>

#include "p11vault/backup.hpp"
#include "p11vault/key_result.hpp"
#include "src/pkcs12/pbe.hpp"
#include "src/pkcs12/writer.hpp"
#include "src/report.hpp"
#include "src/restore_options.hpp"
#include "src/session_pool.hpp"

namespace p11vault::api {

// The path a KeyReport names ("token-wrap", ...; "" for none). Error(failure) for a name
// this table lacks: a path added to the library must be added to the public enum too.
KeyPath key_path_of(const std::string& name);

KeyResult key_result_of(const KeyReport& report);
std::vector<KeyResult> key_results_of(const std::vector<KeyReport>& reports);

pkcs12::Limits limits_of(const FileLimits& limits);
pkcs12::Profile profile_of(FileProfile profile);

// The restore stage of a RestoreSpec or a MigrateSpec (both name these fields alike).
template <typename Spec>
RestoreOptions restore_options_of(const Spec& spec) {
    RestoreOptions options;
    options.dry_run = spec.dry_run;
    options.on_conflict = spec.on_conflict;
    options.extractable = spec.extractable;
    options.skip_unsupported = spec.skip_unsupported;
    options.lock_wait = spec.lock_wait;
    options.renumber_duplicate_ids = spec.renumber_duplicate_ids;
    check_jobs(spec.jobs);
    options.jobs = spec.jobs;
    return options;
}

}  // namespace p11vault::api
