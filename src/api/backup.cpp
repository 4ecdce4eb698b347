// SPDX-License-Identifier: Apache-2.0
// The public backup (include/p11vault/backup.hpp): the checks before the token is touched,
// the token's shared lock, the password, run_backup, escrow and the atomic write.
#include "p11vault/backup.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "src/api/convert.hpp"
#include "src/atomic_file.hpp"
#include "src/backup.hpp"
#include "src/escrow/escrow.hpp"
#include "src/new_secret_policy.hpp"
#include "src/ossl.hpp"
#include "src/progress.hpp"
#include "src/session_pool.hpp"
#include "src/token.hpp"
#include "src/token_lock.hpp"

namespace p11vault {
namespace {

// --out must name a file in a directory that exists: said before any secret is asked for
// or the token touched, not after the work as a failure to create a temporary file.
void check_out_path(const std::string& out) {
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

std::vector<escrow::OfficerCertificate> load_officers(const EscrowSpec& escrow) {
    if (escrow.recipient_certificates.empty()) {
        if (escrow.threshold != 1 || escrow.allow_expired)
            throw Error(ErrorKind::usage, "--recipient-threshold and --recipient-allow-expired need --recipient");
        return {};
    }
    auto officers = escrow::load_officer_certificates(escrow.recipient_certificates, escrow.allow_expired);
    if (escrow.threshold > officers.size())
        throw Error(ErrorKind::usage, fmt::format("--recipient-threshold {} is more than the {} --recipient "
                                                 "certificate{} given",
                                                 escrow.threshold, officers.size(), officers.size() == 1 ? "" : "s"));
    return officers;
}

}  // namespace

BackupReport backup(const BackupSpec& spec, SecretProvider& secrets, Events& events) {
    BackupOptions options;
    options.selection = spec.keys;
    options.profile = api::profile_of(spec.profile);
    options.iterations = spec.iterations;
    options.chain_files = spec.chain_files;
    options.token_wrap_only = spec.token_wrap_only;
    options.skip_unsupported = spec.skip_unsupported;
    options.lock_wait = spec.lock_wait;
    options.jobs = spec.jobs;
    check_jobs(spec.jobs);
    check_new_iterations(spec.iterations);
    if (!spec.out.empty()) check_out_path(spec.out);
    // Recovery officers' certificates are checked before the token is touched.
    const std::vector<escrow::OfficerCertificate> officers = load_officers(spec.escrow);
    // Refuse an existing target before asking for any secret.
    if (!spec.out.empty() && !spec.overwrite && ::access(spec.out.c_str(), F_OK) == 0)
        throw Error(ErrorKind::refused, spec.out + " exists; choose another --out or give --force to replace it");

    OpenToken token = open_token(token_options_of(spec.token), /*read_write=*/false, /*login=*/true, secrets, events);
    BackupReport report;
    report.token = describe_token(token.slot, token.info);
    if (token.uri.object_id) options.selection.ids.push_back(*token.uri.object_id);
    if (token.uri.object_label) options.selection.labels.push_back(*token.uri.object_label);
    // Read under the token's shared lock: never in the middle of another run's writes.
    TokenLock lock(*token.session, LockMode::shared, options.lock_wait);
    const TokenQuirks quirks = quirks_for(*token.session);
    std::vector<std::string> job_warnings;
    SessionPool pool = SessionPool::for_token(*token.session, quirks, options.jobs, /*read_write=*/false, job_warnings);
    // Selection problems are reported before the password is asked for.
    Inventory inventory = read_inventory(pool, PublicKeyObjects::when_needed);
    refuse_duplicate_ids(inventory, select_private_keys(inventory, options.selection));
    // Escrowed: the PKCS#12 inside has the fixed password of docs/escrow.md; the envelope
    // around it is the protection.
    SecretBytes password =
        officers.empty()
            ? secrets.provide({SecretPurpose::new_file_password, spec.out.empty() ? "the backup" : spec.out})
            : SecretBytes::from_text(escrow::kInnerPassword);
    std::vector<std::string> password_warnings;
    if (officers.empty()) password_warnings = check_new_password(password, options.profile, spec.iterations);

    BackupResult result = [&] {
        progress::Scope progress(events, "backup");
        return run_backup(pool, quirks, inventory, password, options);
    }();
    report.keys = api::key_results_of(result.keys);
    report.skipped = api::key_results_of(result.skipped);
    report.certificates = result.certificates;
    report.warnings = std::move(password_warnings);
    report.warnings.insert(report.warnings.end(), job_warnings.begin(), job_warnings.end());
    report.warnings.insert(report.warnings.end(), result.warnings.begin(), result.warnings.end());
    report.file = std::move(result.file);
    if (!officers.empty()) {
        report.file = escrow::make_escrow_file(report.file, officers, spec.escrow.threshold);
        report.escrow_threshold = spec.escrow.threshold;
        for (const auto& officer : officers)
            report.escrow_recipients.push_back({officer.subject, officer.key_type, officer.sha256});
    }
    if (!spec.out.empty()) {
        for (const auto& stale : remove_stale_temporaries(directory_of(spec.out)))
            report.warnings.push_back("removed " + stale + ", a temporary file an interrupted p11vault run left");
        write_file_atomically(spec.out, report.file, spec.overwrite ? Overwrite::allow : Overwrite::refuse);
    }
    report.file_sha256 = ossl::sha256(report.file.data(), report.file.size());
    return report;
}

}  // namespace p11vault
