// SPDX-License-Identifier: Apache-2.0
// The ceremony log (`--record FILE`, `p11vault record-check`): one JSON object per run,
// one per line (docs/json.md, "p11vault.record/1"). Each record holds the SHA-256 of the
// record line before it, so removing, inserting or editing a record breaks the chain,
// which check_records finds. No secret ever goes in: a record is built from the values
// below only (ids, labels, types, fingerprints, token information).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "p11vault/export.hpp"

namespace p11vault {

// The token a run used, as the record names it.
struct RecordedToken {
    std::string label;
    std::string serial;
    std::string manufacturer;
    std::string model;
};

// One key of a run, as the record's "keys" member holds it. Hex is lowercase without
// separators; an empty `path`, `spki_sha256` or `certificate_sha256` is written as null.
struct RecordedKey {
    std::string id;                                 // hex CKA_ID
    std::string label;
    std::string type;                               // "RSA-2048", "AES-256"
    std::string path;                               // extraction or import path
    std::string status = "ok";                      // restore: "restored", "skipped", "replaced"
    std::string spki_sha256;                        // hex
    std::string certificate_sha256;                 // hex
    std::optional<std::string> certificate_subject; // RFC 2253
    std::vector<std::string> notes;
    std::vector<std::string> repaired;              // attributes set again after import
    std::optional<std::string> renumbered_from;     // hex: the file's id, when the key got another
};

struct RunRecord {
    std::string command;                     // "backup", "restore", "restore-dry-run", "verify", ...
    bool succeeded = false;
    int exit_code = 0;
    std::string error;                       // the error line, when it failed
    std::optional<RecordedToken> token;
    std::string file;                        // the backup file, if any
    std::optional<std::string> file_sha256;  // hex
    std::vector<RecordedKey> keys;
    // Command-specific facts: the text of one JSON object, written as the record's
    // "details" member ("{}" for none).
    std::string details_json = "{}";
};

// The JSON text (one line) of `key` as records and --json documents write it.
P11VAULT_EXPORT std::string recorded_key_json(const RecordedKey& key);

// An open record file. A run opens it before it touches a token or writes a file, so a
// path that cannot take the record stops the run before anything happened; the run's
// record is appended once the run is over. Records are chained content-wise: a line is a
// record when it is a JSON object with "format": "p11vault.record/1", and each record
// holds the SHA-256 of the nearest record line before it, so a line torn by an
// interrupted write is not part of the chain.
class P11VAULT_EXPORT RecordFile {
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
    // naming the path and errno text on I/O errors; Error(usage) when
    // `record.details_json` is not a JSON object.
    std::vector<std::string> append(const RunRecord& record);

private:
    std::string path_;
    int fd_ = -1;
    bool created_ = false;  // by this open: the directory entry is fsynced after the append
};

// RecordFile(path).append(record).
P11VAULT_EXPORT std::vector<std::string> append_record(const std::string& path, const RunRecord& record);

struct RecordCheck {
    std::size_t records = 0;
    std::vector<std::string> problems;  // "line 3: ...", in file order
    bool intact() const { return problems.empty(); }
};

// Reads `path` and verifies that every non-empty line is a record chained to the record
// before it, and that the file ends with a newline. Error(bad_input) when `path` is a
// directory or cannot be opened or read.
P11VAULT_EXPORT RecordCheck check_records(const std::string& path);

}  // namespace p11vault
