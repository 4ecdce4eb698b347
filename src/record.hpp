// SPDX-License-Identifier: Apache-2.0
// The ceremony log: --record FILE appends one JSON object per run (JSON lines). Each
// record carries the SHA-256 of the previous line, so removing or editing a record
// breaks the chain, which `p11vault record-check` detects. No secret ever goes in:
// records are built only from KeyReports, token information and file digests.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "pkcs11/module.hpp"
#include "src/report.hpp"

namespace p11vault {

struct RunRecord {
    std::string command;                        // "backup", "restore", "verify", "migrate"
    bool succeeded = false;
    int exit_code = 0;
    std::string error;                          // the error line, when it failed
    std::optional<pkcs11::TokenInfo> token;
    std::string file;                           // the PKCS#12 file, if any
    std::optional<std::string> file_sha256;     // hex
    std::vector<KeyReport> keys;
    nlohmann::ordered_json details = nlohmann::ordered_json::object();  // command-specific
};

nlohmann::ordered_json key_report_json(const KeyReport& report);

// An open --record file. A command opens it before it touches a token or writes a file,
// so a path that cannot take the record stops the run before anything happened; the run's
// record is appended once the run is over. Records are chained content-wise: a line is a
// record when it is a JSON object with "format": "p11vault.record/1", and each record
// holds the SHA-256 of the nearest record line before it. A line torn by an interrupted
// write is therefore not part of the chain (docs/json.md).
class RecordFile {
public:
    // Opens `path` for reading and appending (O_APPEND, O_CLOEXEC), creating it mode 0600.
    // Error(usage) naming --record when it cannot be opened or is not a regular file;
    // Error(bad_input) when it is not empty and does not begin with a p11vault record.
    explicit RecordFile(std::string path);
    ~RecordFile();
    RecordFile(const RecordFile&) = delete;
    RecordFile& operator=(const RecordFile&) = delete;

    const std::string& path() const { return path_; }

    // Appends `record` as one line under an exclusive flock (concurrent runs are
    // serialised), chained to the last record in the file, in one write loop, then
    // fsyncs. When the file does not end with a newline (an earlier write was torn), the
    // record starts on a new line and the returned warning says so. Error(failure)
    // naming the path and errno text on I/O errors.
    std::vector<std::string> append(const RunRecord& record);

private:
    std::string path_;
    int fd_ = -1;
    bool created_ = false;  // by this open: the directory entry is fsynced after the append
};

// RecordFile(path).append(record).
std::vector<std::string> append_record(const std::string& path, const RunRecord& record);

struct RecordCheck {
    std::size_t records = 0;
    std::vector<std::string> problems;  // "line 3: ...", in file order
};
// Reads `path` and verifies that every non-empty line is a record chained to the record
// before it, and that the file ends with a newline. Error(bad_input) when `path` is a
// directory or cannot be opened or read.
RecordCheck check_records(const std::string& path);

}  // namespace p11vault
