// SPDX-License-Identifier: Apache-2.0
// Output shared by backup, restore and verify: per-key tables, warnings, and the
// --record wrapper that logs a run whether it succeeds or fails.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "p11vault/error.hpp"
#include <CLI/CLI.hpp>

#include "src/pkcs12/pbe.hpp"
#include "src/record.hpp"
#include "src/report.hpp"

namespace p11vault::cli {

// --id HEX ("01a2", "01:a2") as bytes; Error(usage) for anything else.
std::vector<std::uint8_t> parse_hex_id(const std::string& text);

// --in FILE.p12, --password SRC, --max-iterations, --max-file-size: the options of every
// command that reads a PKCS#12 file.
struct FileInputOptions {
    std::string in;
    std::optional<std::string> password;
    pkcs12::Limits limits;
};
void add_file_input_options(CLI::App& command, FileInputOptions& options, const std::string& purpose);
// --max-objects N and --max-label-length BYTES (part of the file input options; migrate
// takes them alone).
void add_object_limit_options(CLI::App& command, pkcs12::Limits& limits);
// --record FILE and --json.
void add_output_options(CLI::App& command, std::optional<std::string>& record, bool& json);

// One row per key: id, label, type, path/status, certificate subject.
void print_key_table(const std::vector<KeyReport>& keys, bool with_status);
// "p11vault: warning: ..." lines on stderr.
void print_warnings(const std::vector<std::string>& warnings);

// Runs `body`; appends `record` to `record_path` (if given) afterwards, marked as
// succeeded or failed with the error line, then rethrows any failure.
template <typename Body>
void run_recorded(const std::optional<std::string>& record_path, RunRecord& record, Body&& body) {
    try {
        body();
        record.succeeded = true;
    } catch (const Error& e) {
        record.exit_code = static_cast<int>(e.code());
        record.error = e.what();
        if (record_path) append_record(*record_path, record);
        throw;
    }
    if (record_path) append_record(*record_path, record);
}

}  // namespace p11vault::cli
