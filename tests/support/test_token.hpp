// SPDX-License-Identifier: Apache-2.0
// Throw-away PKCS#11 tokens for tests: a fresh SoftHSM2 token or NSS softoken database in
// a private temporary directory, removed again when the TestToken goes.
//
// Every test runs in its own process under ctest, so process-wide state (SOFTHSM2_CONF,
// the one database NSS softoken opens per process) belongs to one test:
// - SoftHSM: all TestTokens alive at the same time share one directory and one loaded
//   module (SoftHSM reads its configuration once, at C_Initialize); each gets its own
//   slot and label, so migrate-style tests can have two tokens.
// - NSS: one TestToken per process at a time; a second one fails with a clear message.
//
// Key, certificate and CA helpers are in test_keys.hpp and test_ca.hpp (included here).
#pragma once

#include <gtest/gtest.h>
#include <p11-kit/pkcs11.h>

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "p11vault/secret.hpp"
#include "pkcs11/module.hpp"
#include "pkcs11/session.hpp"
#include "tests/support/test_ca.hpp"
#include "tests/support/test_keys.hpp"

namespace p11vault::testing {

using pkcs11::Bytes;

enum class Backend { softhsm, nss };

// "softhsm", "nss": usable as a gtest parameter name.
std::string backend_name(Backend backend);
// For INSTANTIATE_TEST_SUITE_P(..., all_backends(), BackendParamName()).
struct BackendParamName {
    std::string operator()(const ::testing::TestParamInfo<Backend>& info) const { return backend_name(info.param); }
};
inline auto all_backends() { return ::testing::Values(Backend::softhsm, Backend::nss); }
// gtest's printer for failure messages.
void PrintTo(Backend backend, std::ostream* out);

// What an object on the token is, for "token unchanged" assertions.
struct ObjectSummary {
    CK_OBJECT_CLASS object_class = CKO_DATA;
    Bytes id;
    std::string label;
    auto operator<=>(const ObjectSummary&) const = default;
};
void PrintTo(const ObjectSummary& object, std::ostream* out);

inline constexpr const char* softhsm_module_path = "/usr/lib/softhsm/libsofthsm2.so";
inline constexpr const char* nss_module_path = "/usr/lib/x86_64-linux-gnu/libsoftokn3.so";
inline constexpr const char* nss_token_label = "NSS Certificate DB";

class TestToken {
public:
    // `label` is the SoftHSM token label; empty picks a label unique in the process
    // ("p11vault-test", "p11vault-test-2", ...). NSS's token label is always
    // "NSS Certificate DB".
    explicit TestToken(Backend backend, std::string label = {});
    ~TestToken();
    TestToken(const TestToken&) = delete;
    TestToken& operator=(const TestToken&) = delete;

    Backend backend() const { return backend_; }
    // The private directory (SoftHSM: shared by the TestTokens alive together). Tests may
    // put their own files here; it is removed with the last token.
    const std::string& dir() const;
    const std::string& module_path() const { return module_path_; }
    // The --module-init string (NSS only).
    const std::optional<std::string>& module_init() const { return module_init_; }
    CK_SLOT_ID slot() const { return slot_; }
    const std::string& label() const { return label_; }
    const std::string& user_pin() const { return user_pin_; }
    // SoftHSM's SO PIN; NSS has none (empty).
    const std::string& so_pin() const { return so_pin_; }
    SecretBytes user_pin_secret() const { return SecretBytes::from_text(user_pin_); }

    std::shared_ptr<pkcs11::Module> module() const { return module_; }
    // Logs in as the user when `login` (CKR_USER_ALREADY_LOGGED_IN is fine).
    std::unique_ptr<pkcs11::Session> open_session(bool read_write = true, bool login = true) const;

    // "NAME=VALUE" entries to add to a child p11vault's environment (SOFTHSM2_CONF).
    std::vector<std::string> env_for_child() const;
    // --module PATH [--module-init STRING] --token-label LABEL
    std::vector<std::string> cli_token_args() const;
    // Writes the user PIN to DIR/<label>.pin (mode 0600) for `--pin file:PATH`.
    std::string write_pin_file() const;

    // Every object on the token (logged in), sorted, for before/after comparisons.
    std::vector<ObjectSummary> objects() const;
    std::size_t object_count() const;

private:
    struct SoftHsmHome;

    void create_softhsm(std::string label);
    void create_nss();

    Backend backend_;
    std::shared_ptr<SoftHsmHome> softhsm_home_;  // SoftHSM only
    std::string nss_dir_;                        // NSS only
    std::string module_path_;
    std::optional<std::string> module_init_;
    CK_SLOT_ID slot_ = 0;
    std::string label_;
    std::string user_pin_ = "1234-user-pin";
    std::string so_pin_;
    std::shared_ptr<pkcs11::Module> module_;
};

// mkdtemp under $TMPDIR (or /tmp), "p11vault-<purpose>-XXXXXX".
std::string make_temp_dir(const std::string& purpose);

}  // namespace p11vault::testing
