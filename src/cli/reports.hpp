// SPDX-License-Identifier: Apache-2.0
// Output shared by backup, restore and verify: per-key tables, warnings, and the
// --record wrapper that logs a run whether it succeeds or fails.
#pragma once

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "p11vault/error.hpp"
#include "p11vault/events.hpp"
#include "p11vault/key_result.hpp"
#include "p11vault/record.hpp"
#include "p11vault/token.hpp"
#include "src/cli/exit_code.hpp"

namespace p11vault::cli {

// --id HEX ("01a2", "01:a2") as bytes; Error(usage) for anything else.
std::vector<std::uint8_t> parse_hex_id(const std::string& text);

// --in FILE.p12, --password SRC, --max-iterations, --max-file-size: the options of every
// command that reads a PKCS#12 file.
struct FileInputOptions {
    std::string in;
    std::optional<std::string> password;
    FileLimits limits;
};
void add_file_input_options(CLI::App& command, FileInputOptions& options, const std::string& purpose);
// --max-objects N and --max-label-length BYTES (part of the file input options; migrate
// takes them alone).
void add_object_limit_options(CLI::App& command, FileLimits& limits);
// --record FILE and --json.
void add_output_options(CLI::App& command, std::optional<std::string>& record, bool& json);

// --lock-wait SECONDS: how long to wait for another run holding the token's lock.
void add_lock_wait_option(CLI::App& command, double& seconds);
// --jobs N (1..256): sessions working at once; unset leaves `jobs` 0 (chosen from the token).
CLI::Option* add_jobs_option(CLI::App& command, unsigned& jobs);
std::chrono::milliseconds lock_wait_of(double seconds);

// How a key moved, as tables, --json documents and records say it: "token-wrap", or
// migrate's "token-wrap -> host-decrypt"; "" when it did not move.
std::string path_text(const KeyResult& key);

// One row per key: id, label, type, path/status, certificate subject.
void print_key_table(const std::vector<KeyResult>& keys, bool with_status);
// "p11vault: warning: ..." lines on stderr.
void print_warnings(const std::vector<std::string>& warnings);

// The library's warnings as print_warnings shows them; progress is not shown.
class WarningPrinter : public Events {
public:
    void warning(std::string_view text) override;
};

// The JSON of one key, in --json documents and records (p11vault::recorded_key_json).
nlohmann::ordered_json key_report_json(const KeyResult& key);

// What a command puts in its --record line, in the command's own terms; run_recorded
// turns it into the library's p11vault::RunRecord.
struct RunRecord {
    std::string command;                     // "backup", "restore", "verify", "migrate"
    bool succeeded = false;
    int exit_code = 0;
    std::string error;                       // the error line, when it failed
    std::optional<TokenDescription> token;
    std::string file;                        // the PKCS#12 file, if any
    std::optional<std::string> file_sha256;  // hex
    std::vector<KeyResult> keys;
    nlohmann::ordered_json details = nlohmann::ordered_json::object();  // command-specific
};

// Appends the record of a run that completed. Error(failure) saying that the command
// completed and only its record failed, when the record cannot be appended.
void append_completed_run(RecordFile& file, const RunRecord& record);
// Appends the record of a failed run; a record that cannot be appended is a warning, so
// that the run's own error and exit code stay what they were.
void append_failed_run(RecordFile& file, const RunRecord& record);

// Opens the record file (if given) before `body` runs, so that a --record path that
// cannot take the record stops the command before it touches a token or writes a file;
// runs `body`; appends `record`, marked as succeeded or failed with the error line, then
// rethrows any failure.
template <typename Body>
void run_recorded(const std::optional<std::string>& record_path, RunRecord& record, Body&& body) {
    std::optional<RecordFile> file;
    if (record_path) file.emplace(*record_path);
    try {
        body();
        record.succeeded = true;
    } catch (const Error& e) {
        record.exit_code = exit_code_of(e);
        record.error = e.what();
        if (file) append_failed_run(*file, record);
        throw;
    }
    if (file) append_completed_run(*file, record);
}

}  // namespace p11vault::cli
