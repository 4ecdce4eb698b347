// SPDX-License-Identifier: Apache-2.0
#include "src/cli/common.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <utility>

#include <fmt/format.h>

namespace p11vault::cli {

void add_token_options(CLI::App& command, TokenOptions& options) {
    command.add_option("--module", options.module,
                       "PKCS#11 module: a library path or a p11-kit module name (softhsm2); default "
                       "$P11VAULT_MODULE, else p11-kit's proxy (every module registered with p11-kit)")
        ->option_text("PATH|NAME");
    command.add_option("--module-init", options.module_init,
                       "init parameters for C_Initialize, e.g. NSS softoken's configdir='sql:DIR' "
                       "(default: $P11VAULT_MODULE_INIT)")
        ->option_text("STRING");
    command.add_option("--token", options.token_uri, "token (and objects) by RFC 7512 URI: pkcs11:token=LABEL;id=%01")
        ->option_text("URI");
    command.add_option("--token-label", options.token_label, "token by label")->option_text("LABEL");
    command.add_option("--slot", options.slot, "token by slot id")->option_text("N");
    command.add_option("--pin", options.pin_source,
                       "user PIN source: env:VAR, file:PATH, fd:N, stdin or pass:TEXT "
                       "(absent: prompt if stdin is a terminal)")
        ->option_text("SRC");
}

std::string json_format(std::string_view command, int major) {
    return fmt::format("p11vault.{}/{}", command, major);
}

namespace {

bool document_printed = false;

template <typename Json>
void print_document(const Json& document) {
    document_printed = true;
    const std::string text = document.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
}

}  // namespace

void print_json(const nlohmann::json& document) { print_document(document); }
bool json_document_printed() { return document_printed; }
void print_json(const nlohmann::ordered_json& document) { print_document(document); }

nlohmann::ordered_json token_json(const TokenDescription& token) {
    return {
        {"slot", token.slot},
        {"label", token.label},
        {"manufacturer", token.manufacturer},
        {"model", token.model},
        {"serial", token.serial},
        {"flags",
         {
             {"login_required", token.login_required},
             {"initialized", token.initialized},
             {"user_pin_initialized", token.user_pin_initialized},
             {"pin_count_low", token.pin_count_low},
             {"pin_final_try", token.pin_final_try},
             {"pin_locked", token.pin_locked},
         }},
    };
}

std::string printable(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) c = '?';
    }
    return out;
}

Table::Table(std::vector<std::string> headings) : headings_(std::move(headings)) {}

void Table::add_row(std::vector<std::string> cells) {
    cells.resize(headings_.size());
    for (auto& cell : cells) cell = printable(cell);
    rows_.push_back(std::move(cells));
}

namespace {

// Width on a terminal, counting UTF-8 sequences as one column each.
std::size_t display_width(const std::string& text) {
    std::size_t width = 0;
    for (unsigned char c : text) width += (c & 0xC0) != 0x80 ? 1 : 0;
    return width;
}

}  // namespace

void Table::print(std::FILE* out) const {
    std::vector<std::size_t> widths(headings_.size(), 0);
    auto measure = [&](const std::vector<std::string>& cells) {
        for (std::size_t i = 0; i < cells.size(); ++i) widths[i] = std::max(widths[i], display_width(cells[i]));
    };
    measure(headings_);
    for (const auto& row : rows_) measure(row);
    auto print_row = [&](const std::vector<std::string>& cells) {
        std::string line;
        for (std::size_t i = 0; i < cells.size(); ++i) {
            line += cells[i];
            if (i + 1 < cells.size()) line += std::string(widths[i] - display_width(cells[i]) + 2, ' ');
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        std::fprintf(out, "%s\n", line.c_str());
    };
    print_row(headings_);
    for (const auto& row : rows_) print_row(row);
}

}  // namespace p11vault::cli
