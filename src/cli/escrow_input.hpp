// SPDX-License-Identifier: Apache-2.0
// What restore and verify share to read --in when it may be escrowed to recovery
// officers (docs/escrow.md): --recipient-key, --recipient-module, --recipient-pin and
// --escrow-share, and the one function that turns --in into PKCS#12 bytes and the
// password that opens them.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "p11vault/escrow.hpp"
#include "p11vault/secret.hpp"
#include "src/cli/reports.hpp"

namespace p11vault::cli {

struct EscrowInputOptions {
    std::vector<std::string> recipient_keys;  // --recipient-key URI (repeatable)
    std::optional<std::string> module;        // --recipient-module PATH
    std::optional<std::string> pin_source;    // --recipient-pin SRC
    std::vector<std::string> share_files;     // --escrow-share FILE (repeatable)
    bool given() const { return !recipient_keys.empty() || !share_files.empty(); }
    // One spec per --recipient-key; --recipient-module, else `fallback_module` (the
    // command's --module), for URIs that name no module.
    std::vector<RecoveryOfficerKey> specs(const std::optional<std::string>& fallback_module) const;
};

// --recipient-key, --recipient-module, --recipient-pin; and --escrow-share when
// `with_shares`.
void add_escrow_input_options(CLI::App& command, EscrowInputOptions& options, bool with_shares);

struct InputFile {
    std::string file_sha256;                      // hex, of --in as it is on disk
    std::vector<std::uint8_t> pkcs12;             // empty when an escrow file was not opened
    SecretBytes password;
    std::optional<EscrowSummary> escrow;          // when --in is an escrow file
    std::vector<std::string> opened_by;           // the recipients that opened it
    bool content_opened = false;                  // a PKCS#12 to read (moved out or not)
    bool opened() const { return content_opened; }
};

// Reads --in. A PKCS#12: the password from --password (Error(usage) with escrow options).
// An escrow file: Error(usage) with --password; opened with the officers' keys or shares,
// or, when `may_stay_closed` and none is given, only described.
InputFile read_input_file(const FileInputOptions& file, const EscrowInputOptions& escrow,
                          const std::optional<std::string>& fallback_module, bool may_stay_closed);

// The "escrow" member of --json documents and records: format, threshold, recipients,
// and who opened it.
nlohmann::ordered_json escrow_json(const InputFile& input);

// The recipients as text lines, for verify's report.
void print_escrow_summary(const InputFile& input);

}  // namespace p11vault::cli
