// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/error.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace p11vault::pkcs11 {
namespace {

std::string message_for(const std::string& function, CK_RV rv, const std::string& hint) {
    std::string message = function + ": " + rv_name(rv);
    if (!hint.empty()) message += " (" + hint + ")";
    return message;
}

// -1: not decided yet, read P11VAULT_DEBUG on first use (so that tests and the CLI can
// switch it on without code); 0/1 once decided or set.
std::atomic<int> debug_state{-1};

}  // namespace

void log_call(CK_RV rv, const char* function, const std::string& detail) {
    if (!debug_logging()) return;
    std::string line = function;
    if (!detail.empty()) line += " " + detail;
    line += ": " + rv_name(rv);
    debug_log(line);
}

Pkcs11Error::Pkcs11Error(std::string function, CK_RV rv) : Pkcs11Error(std::move(function), rv, {}) {}

Pkcs11Error::Pkcs11Error(std::string function, CK_RV rv, const std::string& hint)
    : Error(error_kind_for(rv), message_for(function, rv, hint)), function_(std::move(function)), rv_(rv) {}

ErrorKind error_kind_for(CK_RV rv) {
    switch (rv) {
        case CKR_KEY_UNEXTRACTABLE:
        case CKR_KEY_NOT_WRAPPABLE:
            return ErrorKind::refused;
        default:
            return ErrorKind::token;
    }
}

void check(CK_RV rv, const char* function) { check(rv, function, std::string()); }

void check(CK_RV rv, const char* function, const std::string& detail) {
    log_call(rv, function, detail);
    if (rv != CKR_OK) throw Pkcs11Error(function, rv, detail);
}

CK_RV check_allowing(CK_RV rv, const char* function, std::initializer_list<CK_RV> expected,
                     const std::string& detail) {
    for (CK_RV allowed : expected) {
        if (rv == allowed) {
            log_call(rv, function, detail);
            return rv;
        }
    }
    check(rv, function, detail);
    return rv;
}

void set_debug_logging(bool enabled) { debug_state.store(enabled ? 1 : 0); }

bool debug_logging() {
    int state = debug_state.load();
    if (state < 0) {
        const char* env = std::getenv("P11VAULT_DEBUG");
        state = (env != nullptr && *env != '\0' && std::strcmp(env, "0") != 0) ? 1 : 0;
        int expected = -1;
        debug_state.compare_exchange_strong(expected, state);
        state = debug_state.load();
    }
    return state == 1;
}

void debug_log(const std::string& line) {
    // One fwrite per line, so lines of concurrent threads do not interleave.
    std::string text = "p11vault: debug: " + line + "\n";
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fflush(stderr);
}

}  // namespace p11vault::pkcs11
