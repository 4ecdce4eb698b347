// SPDX-License-Identifier: Apache-2.0
#include "src/cli/reports.hpp"

#include <fmt/format.h>

#include "p11vault/digest.hpp"
#include "p11vault/token.hpp"
#include "src/cli/common.hpp"

namespace p11vault::cli {

void add_file_input_options(CLI::App& command, FileInputOptions& options, const std::string& purpose) {
    command.add_option("--in", options.in, "the PKCS#12 file to " + purpose)->required()->option_text("FILE.p12");
    command.add_option("--password", options.password, "password source: env:VAR, file:PATH, fd:N, stdin, "
                                                        "shares:FILE,... (absent: prompt)")
        ->option_text("SRC");
    command.add_option("--max-iterations", options.limits.max_iterations,
                       "refuse files whose KDF iteration count is higher (default 10000000)");
    command.add_option("--max-file-size", options.limits.max_file_size, "refuse larger files (bytes, default 64 MiB)");
    add_object_limit_options(command, options.limits);
}

void add_object_limit_options(CLI::App& command, FileLimits& limits) {
    command.add_option("--max-objects", limits.max_objects,
                       "refuse files with more keys and certificates (default 1000)")
        ->option_text("N");
    command.add_option("--max-label-length", limits.max_label_length,
                       "refuse files with a longer friendlyName (UTF-8 bytes, default 256)")
        ->option_text("BYTES");
}

void add_output_options(CLI::App& command, std::optional<std::string>& record, bool& json) {
    command.add_option("--record", record, "append a JSON record of this run to FILE")->option_text("FILE");
    command.add_flag("--json", json, "print one JSON document on stdout");
}

void add_lock_wait_option(CLI::App& command, double& seconds) {
    command
        .add_option("--lock-wait", seconds,
                    "wait this long for another p11vault run using the token (default 10), then exit 6")
        ->option_text("SECONDS")
        ->check(CLI::Range(0.0, 86400.0));
}

CLI::Option* add_jobs_option(CLI::App& command, unsigned& jobs) {
    return command
        .add_option("--jobs", jobs,
                    "PKCS#11 sessions working at once, for tokens on the network (default: as many as the "
                    "token allows, up to 16; 1 for a module that cannot be called from several threads)")
        ->option_text("N")
        ->check(CLI::Range(1u, kMaxJobs));
}

std::chrono::milliseconds lock_wait_of(double seconds) {
    return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0));
}

namespace {

// "the restore", "the restore dry run": what a record's command did, for messages.
std::string run_name(const std::string& command) {
    std::string name = command;
    if (name.ends_with("-dry-run")) name.replace(name.size() - 8, 8, " dry run");
    return "the " + name;
}

RecordedKey recorded_key(const KeyResult& key) {
    RecordedKey recorded;
    recorded.id = hex(key.id);
    recorded.label = key.label;
    recorded.type = key.type;
    recorded.path = path_text(key);
    recorded.status = key.status;
    recorded.spki_sha256 = hex(key.spki_sha256);
    recorded.certificate_sha256 = hex(key.certificate_sha256);
    recorded.certificate_subject = key.certificate_subject;
    recorded.notes = key.notes;
    recorded.repaired = key.repaired;
    if (key.renumbered_from) recorded.renumbered_from = hex(*key.renumbered_from);
    return recorded;
}

p11vault::RunRecord library_record(const RunRecord& record) {
    p11vault::RunRecord out;
    out.command = record.command;
    out.succeeded = record.succeeded;
    out.exit_code = record.exit_code;
    out.error = record.error;
    if (record.token)
        out.token = RecordedToken{record.token->label, record.token->serial, record.token->manufacturer,
                                  record.token->model};
    out.file = record.file;
    out.file_sha256 = record.file_sha256;
    for (const auto& key : record.keys) out.keys.push_back(recorded_key(key));
    out.details_json = record.details.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return out;
}

}  // namespace

std::string path_text(const KeyResult& key) {
    if (key.source_path != KeyPath::none)
        return fmt::format("{} -> {}", key_path_name(key.source_path), key_path_name(key.path));
    return key_path_name(key.path);
}

nlohmann::ordered_json key_report_json(const KeyResult& key) {
    // One definition of a key's JSON, the library's: records and --json documents agree.
    return nlohmann::ordered_json::parse(recorded_key_json(recorded_key(key)));
}

void append_completed_run(RecordFile& file, const RunRecord& record) {
    try {
        print_warnings(file.append(library_record(record)));
    } catch (const Error& e) {
        throw Error(ErrorKind::failure, run_name(record.command) +
                                           " completed; only its record could not be appended to " + file.path() +
                                           ": " + e.what());
    }
}

void append_failed_run(RecordFile& file, const RunRecord& record) {
    try {
        print_warnings(file.append(library_record(record)));
    } catch (const std::exception& e) {
        print_warnings({"the record of this failed run could not be appended to " + file.path() + ": " + e.what()});
    }
}

void print_key_table(const std::vector<KeyResult>& keys, bool with_status) {
    std::vector<std::string> headings = {"ID", "LABEL", "TYPE", "PATH"};
    if (with_status) headings.push_back("STATUS");
    headings.push_back("CERTIFICATE");
    Table table(headings);
    for (const auto& key : keys) {
        const std::string path = path_text(key);
        std::vector<std::string> row = {key.id.empty() ? "-" : hex(key.id), printable(key.label), key.type,
                                        path.empty() ? "-" : path};
        if (with_status) row.push_back(key.status);
        row.push_back(key.certificate_subject ? printable(*key.certificate_subject) : "(none)");
        table.add_row(row);
    }
    table.print(stdout);
}

void print_warnings(const std::vector<std::string>& warnings) {
    for (const auto& warning : warnings) std::fprintf(stderr, "p11vault: warning: %s\n", printable(warning).c_str());
}

void WarningPrinter::warning(std::string_view text) { print_warnings({std::string(text)}); }

std::vector<std::uint8_t> parse_hex_id(const std::string& text) {
    std::vector<std::uint8_t> out;
    int high = -1;
    for (char c : text) {
        if (c == ':' || c == ' ') continue;
        int v = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (v < 0) throw Error(ErrorKind::usage, "--id " + text + " is not hexadecimal (e.g. --id 01a2)");
        if (high < 0) {
            high = v;
        } else {
            out.push_back(static_cast<std::uint8_t>(high * 16 + v));
            high = -1;
        }
    }
    if (high >= 0 || out.empty()) throw Error(ErrorKind::usage, "--id " + text + " needs an even number of hex digits");
    return out;
}

}  // namespace p11vault::cli
