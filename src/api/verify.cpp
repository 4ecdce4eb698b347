// SPDX-License-Identifier: Apache-2.0
// The public verify (include/p11vault/verify.hpp): verify_file, the comparison with a
// token, the drill.
#include "p11vault/verify.hpp"

#include "src/api/convert.hpp"
#include "src/drill.hpp"
#include "src/inventory.hpp"
#include "src/pkcs12/reader.hpp"
#include "src/progress.hpp"
#include "src/token.hpp"
#include "src/token_capability.hpp"
#include "src/verify.hpp"

namespace p11vault {
namespace {

FileKey file_key_of(const VerifiedKey& key) {
    return {key.local_key_id, key.friendly_name, key.type,      key.supported,
            key.spki_sha256,  key.protection,    key.certificate};
}

FileCertificate file_certificate_of(const VerifiedCertificate& cert) {
    return {cert.subject, cert.issuer,       cert.not_before,    cert.not_after,
            cert.expired, cert.sha256,       cert.local_key_id,  cert.friendly_name,
            cert.key};
}

}  // namespace

DrillEnvironment::~DrillEnvironment() = default;

VerifyReport verify(const VerifySpec& spec, SecretProvider& secrets, Events& events) {
    if (spec.drill && spec.drill_environment == nullptr)
        throw Error(ErrorKind::usage, "a drill needs VerifySpec::drill_environment: SoftHSM2 reads its configuration "
                                      "from SOFTHSM2_CONF, which the caller sets");
    check_jobs(spec.drill_jobs);
    const SecretBytes password = secrets.provide({SecretPurpose::file_password, spec.file_name});
    pkcs12::Reader reader(spec.file, password, api::limits_of(spec.limits));
    const Verification verification = [&] {
        progress::Scope progress(events, "verify");  // every bag is decrypted: slow for a large file
        return verify_file(reader);
    }();
    VerifyReport report;
    report.mac = verification.mac;
    report.safe_protection = verification.safe_protection;
    report.quirks = verification.quirks;
    for (const auto& key : verification.keys) report.keys.push_back(file_key_of(key));
    for (const auto& cert : verification.certificates) report.certificates.push_back(file_certificate_of(cert));
    report.warnings = verification.warnings;

    if (spec.compare_with) {
        // The token is closed (and its module released) before a drill loads SoftHSM.
        OpenToken token =
            open_token(token_options_of(*spec.compare_with), /*read_write=*/false, /*login=*/true, secrets, events);
        report.token = describe_token(token.slot, token.info);
        std::vector<std::vector<std::uint8_t>> only_ids;
        if (token.uri.object_id) only_ids.push_back(*token.uri.object_id);
        TokenComparison comparison =
            compare_with_token(verification, read_inventory(*token.session, PublicKeyObjects::when_needed), only_ids);
        TokenCapability capability(*token.session);
        comparison.would_not_restore = keys_the_token_cannot_hold(verification, capability);
        report.comparison = TokenMatch{comparison.missing_on_token,     comparison.missing_in_file,
                                       comparison.incomplete_on_token,  comparison.unprotected_on_token,
                                       comparison.would_not_restore,    comparison.matched};
    }
    if (spec.drill) {
        progress::Scope progress(events, "drill");
        for (auto& result : run_drill(reader, verification, spec.drill_module, *spec.drill_environment, spec.drill_jobs))
            report.drill.push_back({std::move(result.id), std::move(result.label), std::move(result.type),
                                    std::move(result.key), result.ok, std::move(result.detail)});
        report.drilled = true;
    }
    return report;
}

}  // namespace p11vault
