// SPDX-License-Identifier: Apache-2.0
// What backup, restore, verify, migrate and list share to run the public API
// (include/p11vault/): the TokenSpec of the token options, and the Events sink and
// SecretProvider of a command run (warnings on stderr, the progress line, --pin/--password
// sources).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "p11vault/events.hpp"
#include "p11vault/token.hpp"
#include "src/cli/common.hpp"
#include "src/cli/progress.hpp"
#include "src/cli/reports.hpp"

namespace p11vault::cli {

// The token selection of add_token_options (everything but --pin).
TokenSpec token_spec_of(const TokenOptions& options);

// The Events sink and SecretProvider of one command run.
class CommandRun : public Events, public SecretProvider {
public:
    // `command` and `quiet` are the progress line's (src/cli/progress.hpp).
    CommandRun(std::string command, bool quiet);

    // The PIN source of a token the run opens: --pin, else the URI's pin-source. Call in
    // the order the run opens its tokens (migrate: source, then target). Error(usage) when
    // both are given or the URI is bad: before anything is loaded.
    void add_token(const TokenOptions& options);
    // --password of a new file (backup): read with confirmation, or prompted twice.
    void set_new_file_password_source(std::optional<std::string> source) { new_password_source_ = std::move(source); }
    // The password of an input file, already read with it (read_input_file).
    void set_file_password(SecretBytes password) { file_password_ = std::move(password); }
    // Called with every token the run opens (for --record).
    std::function<void(const TokenDescription&)> on_token_opened;

    // Removes the progress line, before results are printed.
    void clear_progress();
    // Runs `operation` (a call of the API with this run as its Events and SecretProvider)
    // and removes the progress line afterwards, also when it throws: before the error
    // line, and before a failed run's record is appended.
    template <typename Operation>
    auto call(Operation&& operation) {
        struct ClearAfter {
            CommandRun& run;
            ~ClearAfter() { run.clear_progress(); }
        } clear_after{*this};
        return operation();
    }

    void warning(std::string_view text) override;
    void progress(const ProgressEvent& event) override;
    void token_opened(const TokenDescription& token) override;
    SecretBytes provide(const SecretRequest& request) override;

private:
    struct PinSource {
        std::optional<std::string> source;
        std::string option_name;  // "--pin", "--from-pin", "the pin-source of --token:"
    };
    std::string command_;
    bool quiet_;
    std::unique_ptr<ProgressLine> line_;  // made at the first progress event: its clock starts there
    std::vector<PinSource> pins_;
    std::size_t tokens_opened_ = 0;      // the PIN asked for belongs to the next token
    std::optional<std::string> new_password_source_;
    std::optional<SecretBytes> file_password_;
};

// Lowercase hex without separators ("01a2"), as ids and digests are printed.
std::string hex(const std::vector<std::uint8_t>& bytes);
// "AA:BB:...", as `openssl x509 -fingerprint` prints a digest.
std::string fingerprint(const std::vector<std::uint8_t>& digest);

}  // namespace p11vault::cli
