// SPDX-License-Identifier: Apache-2.0
#include "src/cli/api_bridge.hpp"

#include <cstdio>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "p11vault/error.hpp"
#include "p11vault/secret_source.hpp"

namespace p11vault::cli {

TokenSpec token_spec_of(const TokenOptions& options) {
    TokenSpec spec;
    spec.module = options.module;
    spec.module_init = options.module_init;
    spec.uri = options.token_uri;
    spec.label = options.token_label;
    spec.slot = options.slot;
    spec.option_prefix = options.option_prefix;
    return spec;
}

CommandRun::CommandRun(std::string command, bool quiet) : command_(std::move(command)), quiet_(quiet) {}

void CommandRun::add_token(const TokenOptions& options) {
    const std::string pin_option = "--" + options.option_prefix + "pin";
    const std::string token_option = "--" + options.option_prefix + "token";
    std::optional<std::string> from_uri = uri_pin_source(token_spec_of(options));
    if (from_uri && options.pin_source)
        throw Error(ErrorKind::usage, fmt::format("{} and the pin-source of {} both give the PIN: give one of them",
                                                 pin_option, token_option));
    // Messages about a URI's pin-source name it as such (its file: rules are --pin's).
    if (from_uri) {
        pins_.push_back({std::move(from_uri), "the pin-source of " + token_option + ":"});
    } else {
        pins_.push_back({options.pin_source, pin_option});
    }
}

void CommandRun::clear_progress() {
    if (line_) line_->clear();
}

void CommandRun::warning(std::string_view text) {
    clear_progress();
    print_warnings({std::string(text)});
}

void CommandRun::progress(const ProgressEvent& event) {
    if (!line_) line_ = std::make_unique<ProgressLine>(command_, quiet_);
    line_->update(event.done, event.total, event.current);
}

void CommandRun::token_opened(const TokenDescription& token) {
    ++tokens_opened_;
    if (on_token_opened) on_token_opened(token);
}

SecretBytes CommandRun::provide(const SecretRequest& request) {
    switch (request.purpose) {
        case SecretPurpose::token_pin: {
            if (tokens_opened_ >= pins_.size())
                throw Error(ErrorKind::failure, "internal: a PIN was asked for a token the command does not open");
            const PinSource& pin = pins_[tokens_opened_];
            return read_secret(pin.source, "PIN of " + request.subject, pin.option_name, Prompt::once);
        }
        case SecretPurpose::file_password:
            if (!file_password_) throw Error(ErrorKind::failure, "internal: no password was read for " + request.subject);
            return file_password_->clone();
        case SecretPurpose::new_file_password:
            return read_secret(new_password_source_, "backup password", "--password", Prompt::confirm);
    }
    throw Error(ErrorKind::failure, "internal: a secret of an unknown purpose was asked for");
}

std::string hex(const std::vector<std::uint8_t>& bytes) { return fmt::format("{:02x}", fmt::join(bytes, "")); }

std::string fingerprint(const std::vector<std::uint8_t>& digest) {
    return fmt::format("{:02X}", fmt::join(digest, ":"));
}

}  // namespace p11vault::cli
