// SPDX-License-Identifier: Apache-2.0
// p11vault verify: prove a backup is good — MAC, every bag, key/certificate pairs,
// fingerprints, optionally a restore-and-sign drill and a comparison with a live token.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "p11vault/error.hpp"
#include "p11vault/verify.hpp"
#include "src/cli/api_bridge.hpp"
#include "src/cli/commands.hpp"
#include "src/cli/common.hpp"
#include "src/cli/escrow_input.hpp"
#include "src/cli/progress.hpp"
#include "src/cli/reports.hpp"

namespace p11vault::cli {
namespace {

using Json = nlohmann::ordered_json;

struct VerifyCommandOptions {
    TokenOptions token;
    FileInputOptions file;
    EscrowInputOptions escrow;
    bool drill = false;
    unsigned jobs = 0;
    std::optional<std::string> record;
    bool json = false;
    bool quiet = false;
};

// The drill's SoftHSM2 configuration in SOFTHSM2_CONF while the drill runs, the previous
// value (or none) put back after. The library never changes the environment; the
// program, whose one thread this is, does.
class SoftHsmConfForDrill : public DrillEnvironment {
public:
    void enter(const std::string& config_path) override {
        if (const char* current = std::getenv("SOFTHSM2_CONF")) previous_ = current;
        ::setenv("SOFTHSM2_CONF", config_path.c_str(), 1);
    }
    void leave() noexcept override {
        if (previous_) ::setenv("SOFTHSM2_CONF", previous_->c_str(), 1);
        else ::unsetenv("SOFTHSM2_CONF");
    }

private:
    std::optional<std::string> previous_;
};

Json nullable(const std::optional<std::string>& text) { return text ? Json(*text) : Json(nullptr); }

Json verification_json(const VerifyReport& v) {
    Json document;
    document["mac"] = v.mac;
    document["safe_protection"] = v.safe_protection;
    document["quirks"] = v.quirks;
    document["keys"] = Json::array();
    for (const auto& key : v.keys) {
        // id and label: the words of every other document; local_key_id and
        // friendly_name stay for verify/1 (deprecated, docs/json.md).
        document["keys"].push_back({{"id", hex(key.id)},
                                    {"label", nullable(key.label)},
                                    {"local_key_id", hex(key.id)},
                                    {"friendly_name", nullable(key.label)},
                                    {"type", key.type},
                                    {"supported", key.supported},
                                    {"spki_sha256", key.spki_sha256.empty() ? Json(nullptr) : Json(hex(key.spki_sha256))},
                                    {"protection", key.protection},
                                    {"certificate", key.certificate ? Json(*key.certificate) : Json(nullptr)}});
    }
    document["certificates"] = Json::array();
    for (const auto& cert : v.certificates) {
        document["certificates"].push_back({{"subject", cert.subject},
                                            {"issuer", cert.issuer},
                                            {"not_before", cert.not_before},
                                            {"not_after", cert.not_after},
                                            {"expired", cert.expired},
                                            {"certificate_sha256", hex(cert.sha256)},
                                            {"sha256_fingerprint", fingerprint(cert.sha256)},
                                            {"id", hex(cert.id)},
                                            {"label", nullable(cert.label)},
                                            {"local_key_id", hex(cert.id)},
                                            {"friendly_name", nullable(cert.label)},
                                            {"key", cert.key ? Json(*cert.key) : Json(nullptr)}});
    }
    return document;
}

void print_verification(const std::string& file, const std::string& sha256, const VerifyReport& v) {
    std::printf("File %s\n  SHA-256: %s\n  MAC: %s\n", file.c_str(), sha256.c_str(), v.mac.c_str());
    for (const auto& protection : v.safe_protection) std::printf("  certificate safe: %s\n", protection.c_str());
    for (const auto& quirk : v.quirks) std::printf("  needed producer quirk: %s\n", quirk.c_str());
    std::printf("\nKeys (%zu)\n", v.keys.size());
    for (const auto& key : v.keys) {
        std::printf("  %s  localKeyID=%s  friendlyName=\"%s\"\n    SPKI SHA-256 %s\n    protection: %s\n    certificate: %s\n",
                    key.type.c_str(), key.id.empty() ? "(none)" : hex(key.id).c_str(),
                    printable(key.label.value_or("")).c_str(),
                    key.spki_sha256.empty() ? "(unknown)" : hex(key.spki_sha256).c_str(), key.protection.c_str(),
                    key.certificate ? printable(v.certificates[*key.certificate].subject).c_str() : "(none)");
    }
    std::printf("\nCertificates (%zu)\n", v.certificates.size());
    for (const auto& cert : v.certificates) {
        std::printf("  subject %s\n    issuer %s\n    valid %s .. %s%s\n    SHA-256 Fingerprint=%s\n",
                    printable(cert.subject).c_str(), printable(cert.issuer).c_str(), cert.not_before.c_str(),
                    cert.not_after.c_str(), cert.expired ? " (EXPIRED)" : "", fingerprint(cert.sha256).c_str());
    }
}

// A key of the file as the record of a verify run names it: what the file says of it,
// status "ok", no path (it did not move).
KeyResult recorded_key_of(const FileKey& key, const VerifyReport& verification) {
    KeyResult recorded;
    recorded.id = key.id;
    recorded.label = key.label.value_or("");
    recorded.type = key.type;
    recorded.status = "ok";
    recorded.spki_sha256 = key.spki_sha256;
    if (key.certificate) recorded.certificate_sha256 = verification.certificates[*key.certificate].sha256;
    return recorded;
}

// An escrowed file verify was given no officer key for: what the envelope says, and that
// the content was not checked.
void report_closed_escrow(const VerifyCommandOptions& o, const InputFile& input) {
    if (token_spec_of(o.token).selects_token() || o.drill)
        throw Error(ErrorKind::usage, o.file.in + " is escrowed: comparing it with a token or a drill needs its content "
                                                 "(give --recipient-key or --escrow-share)");
    const std::string note = "the content was not opened: give --recipient-key (or --escrow-share) to check the keys "
                             "inside; only the envelope's structure was checked";
    if (o.json) {
        Json document;
        document["format"] = json_format("verify");
        document["file"] = o.file.in;
        document["file_sha256"] = input.file_sha256;
        document["escrow"] = escrow_json(input);
        document["warnings"] = Json::array({note});
        print_json(document);
    } else {
        std::printf("File %s\n", o.file.in.c_str());
        print_escrow_summary(input);
    }
    print_warnings({note});
}

void run(const VerifyCommandOptions& o) {
    VerifySpec spec;
    spec.file_name = o.file.in;
    spec.limits = o.file.limits;
    if (token_spec_of(o.token).selects_token()) spec.compare_with = token_spec_of(o.token);
    spec.drill = o.drill;
    spec.drill_jobs = o.jobs;
    SoftHsmConfForDrill drill_environment;
    spec.drill_environment = &drill_environment;
    CommandRun command("verify", o.quiet);

    RunRecord record;
    record.command = "verify";
    record.file = o.file.in;
    command.on_token_opened = [&](const TokenDescription& token) { record.token = token; };
    run_recorded(o.record, record, [&] {
        InputFile input = read_input_file(o.file, o.escrow, o.token.module, /*may_stay_closed=*/true);
        record.file_sha256 = input.file_sha256;
        if (input.escrow) record.details["escrow"] = escrow_json(input);
        if (!input.opened()) {
            report_closed_escrow(o, input);
            return;
        }
        if (spec.compare_with) command.add_token(o.token);
        command.set_file_password(std::move(input.password));
        spec.file = std::move(input.pkcs12);
        VerifyReport verification = command.call([&] { return verify(spec, command, command); });
        for (const auto& key : verification.keys) record.keys.push_back(recorded_key_of(key, verification));

        const std::optional<TokenMatch>& comparison = verification.comparison;
        const bool drill_ok = verification.drill_ok();
        record.details["drill"] = o.drill;
        record.details["drill_ok"] = drill_ok;
        record.details["token_matches"] = comparison ? Json(comparison->same()) : Json(nullptr);
        if (o.json) {
            Json document;
            document["format"] = json_format("verify");
            document["file"] = o.file.in;
            document["file_sha256"] = *record.file_sha256;
            Json details = verification_json(verification);
            for (auto& [name, value] : details.items()) document[name] = value;
            document["escrow"] = escrow_json(input);
            document["warnings"] = verification.warnings;
            if (o.drill) {
                document["drill"] = Json::array();
                for (const auto& result : verification.drill)
                    document["drill"].push_back({{"id", hex(result.id)},
                                                 {"label", result.label},
                                                 {"type", result.type},
                                                 {"key", result.key},
                                                 {"ok", result.ok},
                                                 {"detail", result.detail}});
            }
            if (comparison)
                document["token_comparison"] = {{"matched", comparison->matched},
                                                {"missing_on_token", comparison->missing_on_token},
                                                {"missing_in_file", comparison->missing_in_file},
                                                {"incomplete_on_token", comparison->incomplete_on_token},
                                                {"unprotected_on_token", comparison->unprotected_on_token},
                                                {"would_not_restore", comparison->would_not_restore}};
            print_json(document);
        } else {
            print_escrow_summary(input);
            if (input.escrow) std::printf("\n");
            print_verification(o.file.in, *record.file_sha256, verification);
            if (o.drill) {
                std::printf("\nDrill (throw-away SoftHSM token)\n");
                for (const auto& result : verification.drill)
                    std::printf("  %s  %s: %s\n", result.ok ? "ok  " : "FAIL", printable(result.key).c_str(),
                                printable(result.detail).c_str());
            }
            if (comparison) {
                std::printf("\nComparison with the token: %zu key%s match\n", comparison->matched,
                            comparison->matched == 1 ? "" : "s");
                for (const auto& line : comparison->missing_on_token) std::printf("  - %s\n", printable(line).c_str());
                for (const auto& line : comparison->missing_in_file) std::printf("  + %s\n", printable(line).c_str());
                for (const auto& line : comparison->incomplete_on_token)
                    std::printf("  ! %s\n", printable(line).c_str());
            }
            if (comparison)
                for (const auto* lines : {&comparison->unprotected_on_token, &comparison->would_not_restore})
                    for (const auto& line : *lines) verification.warnings.push_back(line);
        }
        print_warnings(verification.warnings);
        if (!drill_ok) throw Error(ErrorKind::bad_input, "the drill failed for at least one key (see above)");
        if (comparison && !comparison->same())
            throw Error(ErrorKind::bad_input,
                        fmt::format("the file and the token differ ({} difference{}; see above)",
                                    comparison->differences(), comparison->differences() == 1 ? "" : "s"));
    });
}

}  // namespace

void add_verify_command(CLI::App& command) {
    auto options = std::make_shared<VerifyCommandOptions>();
    add_token_options(command, options->token);
    add_file_input_options(command, options->file, "verify");
    add_escrow_input_options(command, options->escrow, /*with_shares=*/true);
    CLI::Option* drill = command.add_flag(
        "--drill", options->drill, "also restore into a throw-away SoftHSM token and sign and verify with every key");
    // The drill's sessions: verify without it makes no per-key token calls to spread.
    add_jobs_option(command, options->jobs)->needs(drill);
    add_output_options(command, options->record, options->json);
    add_quiet_option(command, options->quiet);
    command.callback([options] { run(*options); });
}

}  // namespace p11vault::cli
