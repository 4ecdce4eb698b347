// SPDX-License-Identifier: Apache-2.0
// Throw-away PKCS#11 tokens for tests: a fresh SoftHSM2 token or NSS softoken database in
// a private temporary directory, removed again when the TestToken goes; or the one token
// of a daemon-backed implementation (openCryptoki, tpm2-pkcs11), emptied for the test.
//
// Every test runs in its own process under ctest, so process-wide state (SOFTHSM2_CONF,
// the one database NSS softoken opens per process) belongs to one test:
// - SoftHSM: all TestTokens alive at the same time share one directory and one loaded
//   module (SoftHSM reads its configuration once, at C_Initialize); each gets its own
//   slot and label, so migrate-style tests can have two tokens. The card-like and the
//   proxy flavours have their own configuration: one flavour per process at a time.
// - NSS: one TestToken per process at a time; a second one fails with a clear message.
// - openCryptoki, tpm2-pkcs11: one token each for the whole test run, started by
//   scripts/token-daemons (token_daemons.hpp). A TestToken holds an exclusive lock on it
//   (tests run in parallel) and destroys every object on it when made and when gone, so
//   each test starts from an empty token. One TestToken per process and backend.
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
#include "tests/support/token_daemons.hpp"

namespace p11vault::testing {

using pkcs11::Bytes;

// softhsm: SoftHSM 2.6. nss: NSS softoken. opencryptoki: openCryptoki 3.8's soft token
// (pkcsslotd). tpm2: tpm2-pkcs11 1.9 on swtpm through tpm2-abrmd. softhsm_cardlike:
// SoftHSM offering only RSA/ECDSA key generation and signing, on a removable slot, as a
// smart card does (no wrapping, no AES). proxy: a SoftHSM token reached through
// p11-kit-proxy.so, which also loads every other module registered with p11-kit.
enum class Backend { softhsm, nss, opencryptoki, tpm2, softhsm_cardlike, proxy };

// "softhsm", "nss", "opencryptoki", "tpm2", "softhsm_cardlike", "proxy": usable as a
// gtest parameter name.
std::string backend_name(Backend backend);
// For INSTANTIATE_TEST_SUITE_P(..., all_backends(), BackendParamName()).
struct BackendParamName {
    std::string operator()(const ::testing::TestParamInfo<Backend>& info) const { return backend_name(info.param); }
};
// The two backends that need nothing started: what most tests run on.
inline auto all_backends() { return ::testing::Values(Backend::softhsm, Backend::nss); }
// Every implementation the suite knows (tests/integration/backends_test.cpp).
inline auto every_backend() {
    return ::testing::Values(Backend::softhsm, Backend::nss, Backend::opencryptoki, Backend::tpm2,
                             Backend::softhsm_cardlike, Backend::proxy);
}
// Why the backend cannot be used in this run (its daemons did not start), or nothing.
std::optional<std::string> backend_unavailable(Backend backend);

// In a test body or SetUp(): skips the test with the reason when the backend cannot be
// used, and fails it instead under CI=true (there every backend must run).
#define P11VAULT_REQUIRE_BACKEND(backend)                                                       \
    do {                                                                                        \
        if (auto p11vault_why = ::p11vault::testing::backend_unavailable(backend)) {            \
            if (::p11vault::testing::running_in_ci()) {                                         \
                FAIL() << ::p11vault::testing::backend_name(backend) << ": " << *p11vault_why   \
                       << " (CI=true: every backend must run)";                                 \
            }                                                                                   \
            GTEST_SKIP() << ::p11vault::testing::backend_name(backend) << ": " << *p11vault_why; \
        }                                                                                       \
    } while (false)
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
    // "NSS Certificate DB"; openCryptoki's and tpm2's are scripts/token-daemons' (a
    // `label` given for them is an error). Throws std::runtime_error with the reason when
    // the backend cannot be used (P11VAULT_REQUIRE_BACKEND first).
    explicit TestToken(Backend backend, std::string label = {});
    ~TestToken();
    TestToken(const TestToken&) = delete;
    TestToken& operator=(const TestToken&) = delete;

    Backend backend() const { return backend_; }
    // The private directory (SoftHSM: shared by the TestTokens alive together). Tests may
    // put their own files here; it is removed with the last token. (openCryptoki, tpm2:
    // a directory of this TestToken's; the token itself lives elsewhere.)
    const std::string& dir() const;
    const std::string& module_path() const { return module_path_; }
    // The --module-init string (NSS only).
    const std::optional<std::string>& module_init() const { return module_init_; }
    CK_SLOT_ID slot() const { return slot_; }
    const std::string& label() const { return label_; }
    const std::string& user_pin() const { return user_pin_; }
    // The SO PIN; NSS has none (empty).
    const std::string& so_pin() const { return so_pin_; }
    SecretBytes user_pin_secret() const { return SecretBytes::from_text(user_pin_); }

    std::shared_ptr<pkcs11::Module> module() const { return module_; }
    // Logs in as the user when `login` (CKR_USER_ALREADY_LOGGED_IN is fine).
    std::unique_ptr<pkcs11::Session> open_session(bool read_write = true, bool login = true) const;

    // "NAME=VALUE" entries to add to a child p11vault's environment (SOFTHSM2_CONF;
    // TPM2_PKCS11_STORE, TPM2_PKCS11_TCTI, TPM2TOOLS_TCTI and DBUS_SESSION_BUS_ADDRESS for
    // tpm2 and proxy).
    std::vector<std::string> env_for_child() const;
    // --module PATH [--module-init STRING] --token-label LABEL
    std::vector<std::string> cli_token_args() const;
    // Writes the user PIN to DIR/<label>.pin (mode 0600) for `--pin file:PATH`.
    std::string write_pin_file() const;

    // tpm2-pkcs11 reads its store once, at C_Initialize: objects a child process made are
    // not seen by this process's module until it is loaded again. Reloads it (tpm2 only,
    // and only while no session or module() reference of this TestToken is held, else
    // nothing). objects() and open_session() call it.
    void refresh() const;

    // Every object on the token (logged in), sorted, for before/after comparisons.
    std::vector<ObjectSummary> objects() const;
    std::size_t object_count() const;

private:
    struct SoftHsmHome;

    void create_softhsm(std::string label);
    void create_nss();
    void create_shared(const std::string& prefix);  // openCryptoki, tpm2
    void destroy_every_object() const;
    bool is_softhsm() const;

    Backend backend_;
    std::shared_ptr<SoftHsmHome> softhsm_home_;  // SoftHSM flavours only
    std::string nss_dir_;                        // NSS; openCryptoki and tpm2 (own files)
    int lock_fd_ = -1;                           // openCryptoki and tpm2: the token's lock
    std::vector<std::string> child_env_;         // tpm2 and proxy
    std::string module_path_;
    std::optional<std::string> module_init_;
    mutable CK_SLOT_ID slot_ = 0;
    std::string label_;
    std::string user_pin_ = "1234-user-pin";
    std::string so_pin_;
    mutable std::shared_ptr<pkcs11::Module> module_;
};

// mkdtemp under $TMPDIR (or /tmp), "p11vault-<purpose>-XXXXXX".
std::string make_temp_dir(const std::string& purpose);

}  // namespace p11vault::testing
