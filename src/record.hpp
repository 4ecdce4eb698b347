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

// Appends `record` to `path` (created mode 0600), chained to the file's last line.
void append_record(const std::string& path, const RunRecord& record);

struct RecordCheck {
    std::size_t records = 0;
    std::vector<std::string> problems;  // "line 3: previous-record hash does not match line 2"
};
// Reads `path` and verifies every line parses and chains to the one before.
RecordCheck check_records(const std::string& path);

}  // namespace p11vault
