// SPDX-License-Identifier: Apache-2.0
// The public restore (include/p11vault/restore.hpp): the password and the file's MAC
// first, then the token and run_restore (which takes the token's exclusive lock).
#include "p11vault/restore.hpp"

#include "src/api/convert.hpp"
#include "src/pkcs12/reader.hpp"
#include "src/progress.hpp"
#include "src/restore.hpp"
#include "src/token.hpp"

namespace p11vault {

RestoreReport restore(const RestoreSpec& spec, SecretProvider& secrets, Events& events) {
    const RestoreOptions options = api::restore_options_of(spec);

    const SecretBytes password = secrets.provide({SecretPurpose::file_password, spec.file_name});
    pkcs12::Reader reader(spec.file, password, api::limits_of(spec.limits));
    OpenToken token = open_token(token_options_of(spec.token), /*read_write=*/true, /*login=*/true, secrets, events);
    RestoreResult result = [&] {
        progress::Scope progress(events, "restore");
        return run_restore(*token.session, quirks_for(*token.session), reader, options);
    }();
    RestoreReport report;
    report.token = describe_token(token.slot, token.info);
    report.keys = api::key_results_of(result.keys);
    report.certificates_written = result.certificates_written;
    report.quirks = reader.decryptor().quirks_used();
    report.warnings = std::move(result.warnings);
    report.dry_run = result.dry_run;
    return report;
}

}  // namespace p11vault
