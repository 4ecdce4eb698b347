// SPDX-License-Identifier: Apache-2.0
#include "tests/support/token_daemons.hpp"

#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace p11vault::testing {

#ifndef P11VAULT_TOKEN_DAEMONS_ENV_DEFAULT
#define P11VAULT_TOKEN_DAEMONS_ENV_DEFAULT ""
#endif

const TokenDaemons& TokenDaemons::get() {
    static const TokenDaemons daemons;
    return daemons;
}

TokenDaemons::TokenDaemons() {
    const char* override_path = std::getenv("P11VAULT_TOKEN_DAEMONS_ENV");
    path_ = override_path != nullptr && *override_path != '\0' ? override_path : P11VAULT_TOKEN_DAEMONS_ENV_DEFAULT;
    std::ifstream in(path_);
    if (!in) return;
    read_ = true;
    std::string line;
    while (std::getline(in, line)) {
        const auto equals = line.find('=');
        if (equals == std::string::npos || equals == 0) continue;
        values_[line.substr(0, equals)] = line.substr(equals + 1);
    }
}

std::optional<std::string> TokenDaemons::value(const std::string& key) const {
    const auto found = values_.find(key);
    if (found == values_.end()) return std::nullopt;
    return found->second;
}

std::string TokenDaemons::require(const std::string& key) const {
    auto found = value(key);
    if (!found) throw std::runtime_error(key + " is not in " + path_ + " (written by scripts/token-daemons start)");
    return *found;
}

std::optional<std::string> TokenDaemons::unavailable(const std::string& prefix) const {
    if (!read_) {
        return "the token daemons are not running: no " + path_ +
               " (ctest starts them; by hand: scripts/token-daemons start DIR, and P11VAULT_TOKEN_DAEMONS_ENV=DIR/env)";
    }
    if (auto why = value(prefix + "_SKIP")) return "scripts/token-daemons could not start it: " + *why;
    if (!value(prefix + "_MODULE")) return prefix + "_MODULE is not in " + path_;
    return std::nullopt;
}

bool running_in_ci() {
    const char* ci = std::getenv("CI");
    return ci != nullptr && std::string(ci) == "true";
}

}  // namespace p11vault::testing
