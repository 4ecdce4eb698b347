// SPDX-License-Identifier: Apache-2.0
#include "tests/support/test_token.hpp"

#if defined(P11VAULT_TEST_SANITIZED)
#include <sanitizer/lsan_interface.h>
#endif

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>

#include "pkcs11/error.hpp"

namespace p11vault::testing {

namespace fs = std::filesystem;

std::string backend_name(Backend backend) {
    switch (backend) {
        case Backend::softhsm: return "softhsm";
        case Backend::nss: return "nss";
        case Backend::opencryptoki: return "opencryptoki";
        case Backend::tpm2: return "tpm2";
        case Backend::softhsm_cardlike: return "softhsm_cardlike";
        case Backend::proxy: return "proxy";
    }
    return "unknown";
}

std::optional<std::string> backend_unavailable(Backend backend) {
    if (backend == Backend::opencryptoki) return TokenDaemons::get().unavailable("OPENCRYPTOKI");
    if (backend == Backend::tpm2) return TokenDaemons::get().unavailable("TPM2");
    return std::nullopt;
}

void PrintTo(Backend backend, std::ostream* out) { *out << backend_name(backend); }

void PrintTo(const ObjectSummary& object, std::ostream* out) {
    static const char digits[] = "0123456789abcdef";
    std::string id;
    for (std::uint8_t byte : object.id) {
        id += digits[byte >> 4];
        id += digits[byte & 0xf];
    }
    *out << "{" << pkcs11::object_class_name(object.object_class) << ", id=" << id << ", label=\"" << object.label
         << "\"}";
}

std::string make_temp_dir(const std::string& purpose) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/p11vault-" + purpose + "-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
    return pattern;
}

namespace {

void write_file(const std::string& path, const std::string& text, mode_t mode) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) throw std::runtime_error("cannot create " + path);
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ok = (::close(fd) == 0) && ok;
    if (!ok) throw std::runtime_error("cannot write " + path);
}

void remove_tree(const std::string& dir) {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
}

std::optional<CK_SLOT_ID> slot_with_label(const pkcs11::Module& module, const std::string& label) {
    for (CK_SLOT_ID slot : module.slots()) {
        if (module.token_info(slot).label == label) return slot;
    }
    return std::nullopt;
}

std::mutex nss_mutex;
bool nss_token_alive = false;
// openCryptoki and tpm2: one TestToken per process and backend.
std::mutex shared_mutex;
std::set<Backend> shared_tokens_alive;

constexpr const char* proxy_module_path = "/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so";

// The card-like SoftHSM's mechanisms: RSA and ECDSA key generation, signing and RSA
// decryption, digests; no wrapping, no AES, no derivation (SoftHSM 2.6's
// `slots.mechanisms`: a comma-separated list of the mechanisms to offer).
constexpr const char* cardlike_mechanisms =
    "CKM_RSA_PKCS_KEY_PAIR_GEN,CKM_RSA_PKCS,CKM_RSA_PKCS_PSS,CKM_SHA1_RSA_PKCS,CKM_SHA256_RSA_PKCS,"
    "CKM_SHA384_RSA_PKCS,CKM_SHA512_RSA_PKCS,CKM_SHA256_RSA_PKCS_PSS,CKM_SHA384_RSA_PKCS_PSS,"
    "CKM_SHA512_RSA_PKCS_PSS,CKM_EC_KEY_PAIR_GEN,CKM_ECDSA,CKM_ECDSA_SHA1,CKM_ECDSA_SHA256,CKM_ECDSA_SHA384,"
    "CKM_ECDSA_SHA512,CKM_SHA_1,CKM_SHA256,CKM_SHA384,CKM_SHA512";

// tpm2-pkcs11's variables, from the daemons' environment file.
std::vector<std::string> tpm2_environment() {
    const TokenDaemons& daemons = TokenDaemons::get();
    std::vector<std::string> entries;
    // TPM2TOOLS_TCTI: tpm2_ptool runs tpm2-tools commands.
    for (const char* key : {"TPM2_PKCS11_STORE", "TPM2_PKCS11_TCTI", "TPM2TOOLS_TCTI", "DBUS_SESSION_BUS_ADDRESS"}) {
        entries.push_back(std::string(key) + "=" + daemons.require(key));
    }
    return entries;
}

void set_in_process(const std::vector<std::string>& entries) {
    for (const std::string& entry : entries) {
        const auto equals = entry.find('=');
        setenv(entry.substr(0, equals).c_str(), entry.substr(equals + 1).c_str(), 1);
    }
}

}  // namespace

// One SoftHSM configuration and loaded module, shared by the SoftHSM TestTokens alive
// together (SoftHSM reads SOFTHSM2_CONF once per C_Initialize).
struct TestToken::SoftHsmHome {
    Backend flavour = Backend::softhsm;  // softhsm, softhsm_cardlike or proxy
    std::string dir;
    std::string conf;
    std::shared_ptr<pkcs11::Module> module;
    std::set<std::string> labels;

    ~SoftHsmHome() {
        module.reset();  // C_Finalize before the files go
        remove_tree(dir);
    }
};

namespace {
std::mutex softhsm_mutex;
std::weak_ptr<void> current_softhsm_home;  // a SoftHsmHome; void because the type is private
}  // namespace

TestToken::TestToken(Backend backend, std::string label) : backend_(backend) {
    switch (backend) {
        case Backend::softhsm:
        case Backend::softhsm_cardlike:
        case Backend::proxy: create_softhsm(std::move(label)); break;
        case Backend::nss: create_nss(); break;
        case Backend::opencryptoki:
#if defined(P11VAULT_TEST_SANITIZED)
            // openCryptoki 3.8 leaks in its module and in the soft token library it
            // dlclose's at C_Finalize, where LeakSanitizer can no longer name the library
            // ("<unknown module>"), so tests/lsan.supp cannot suppress it. Leak tracking
            // is off for this thread from here on in a process that uses openCryptoki (the
            // test process of one test; ASan's other checks stay on, and p11vault's own
            // code is leak-checked by the same tests on the other backends).
            __lsan_disable();
#endif
            [[fallthrough]];
        case Backend::tpm2:
            if (!label.empty()) throw std::logic_error(backend_name(backend) + " TestTokens have a fixed label");
            create_shared(backend == Backend::opencryptoki ? "OPENCRYPTOKI" : "TPM2");
            break;
    }
}

bool TestToken::is_softhsm() const {
    return backend_ == Backend::softhsm || backend_ == Backend::softhsm_cardlike || backend_ == Backend::proxy;
}

void TestToken::create_softhsm(std::string label) {
    std::lock_guard lock(softhsm_mutex);
    auto home = std::static_pointer_cast<SoftHsmHome>(current_softhsm_home.lock());
    if (home && home->flavour != backend_) {
        throw std::logic_error("a " + backend_name(backend_) + " TestToken cannot live next to a " +
                               backend_name(home->flavour) + " one: SoftHSM reads one configuration per process");
    }
    if (!home) {
        home = std::make_shared<SoftHsmHome>();
        home->flavour = backend_;
        home->dir = make_temp_dir(backend_name(backend_));
        fs::create_directory(home->dir + "/tokens");
        home->conf = home->dir + "/softhsm2.conf";
        std::string conf = "directories.tokendir = " + home->dir + "/tokens\n"
                           "objectstore.backend = file\n"
                           "log.level = ERROR\n";
        if (backend_ == Backend::softhsm_cardlike) {
            conf += "slots.removable = true\n";
            conf += std::string("slots.mechanisms = ") + cardlike_mechanisms + "\n";
        }
        write_file(home->conf, conf, 0600);
        // Read by SoftHSM in C_Initialize; each test has its own process.
        setenv("SOFTHSM2_CONF", home->conf.c_str(), 1);
        if (backend_ == Backend::proxy) {
            // The proxy loads every registered module; tpm2-pkcs11 finds its TPM when the
            // daemons run (else it logs that it found none, and the proxy leaves it out).
            if (!backend_unavailable(Backend::tpm2)) set_in_process(tpm2_environment());
            home->module = pkcs11::Module::load(proxy_module_path);
        } else {
            home->module = pkcs11::Module::load(softhsm_module_path);
        }
        current_softhsm_home = home;
    }
    if (label.empty()) {
        label = "p11vault-test";
        for (int n = 2; home->labels.count(label) != 0; ++n) label = "p11vault-test-" + std::to_string(n);
    }
    if (!home->labels.insert(label).second) {
        throw std::logic_error("a SoftHSM TestToken labelled \"" + label + "\" already exists in this process");
    }
    softhsm_home_ = home;
    module_ = home->module;
    module_path_ = backend_ == Backend::proxy ? proxy_module_path : softhsm_module_path;
    if (backend_ == Backend::proxy && !backend_unavailable(Backend::tpm2)) child_env_ = tpm2_environment();
    label_ = label;
    so_pin_ = "5678-so-pin";

    // SoftHSM always offers exactly one free (uninitialized) slot; through the proxy,
    // other modules' slots are listed too.
    std::optional<CK_SLOT_ID> free_slot;
    for (CK_SLOT_ID slot : module_->slots()) {
        const pkcs11::TokenInfo info = module_->token_info(slot);
        if (!info.token_initialized() && info.model == "SoftHSM v2") {
            free_slot = slot;
            break;
        }
    }
    if (!free_slot) throw std::runtime_error("SoftHSM offers no free slot");
    module_->init_token(*free_slot, SecretBytes::from_text(so_pin_), label_);
    // SoftHSM renumbers initialized slots on the next C_Initialize; look it up by label.
    auto slot = slot_with_label(*module_, label_);
    if (!slot) throw std::runtime_error("the new SoftHSM token \"" + label_ + "\" is not listed");
    slot_ = *slot;

    pkcs11::Session session(module_, slot_, true);
    session.login(SecretBytes::from_text(so_pin_), pkcs11::UserType::security_officer);
    session.init_pin(user_pin_secret());
    session.logout();
}

void TestToken::create_nss() {
    {
        std::lock_guard lock(nss_mutex);
        if (nss_token_alive) {
            throw std::logic_error(
                "only one NSS TestToken per process at a time: NSS softoken opens one database per process");
        }
        nss_token_alive = true;
    }
    try {
        nss_dir_ = make_temp_dir("nss");
        module_path_ = nss_module_path;
        module_init_ = "configdir='sql:" + nss_dir_ + "' certPrefix='' keyPrefix='' secmod='secmod.db' flags=";
        module_ = pkcs11::Module::load(module_path_, module_init_);
        label_ = nss_token_label;
        auto slot = slot_with_label(*module_, label_);
        if (!slot) throw std::runtime_error("NSS softoken lists no \"NSS Certificate DB\" token");
        slot_ = *slot;
        // A new database has an empty SO password and no user PIN (measured with 3.87:
        // C_Login(CKU_SO, "") then C_InitPIN, the same as `certutil -N`).
        pkcs11::Session session(module_, slot_, true);
        session.login(SecretBytes(), pkcs11::UserType::security_officer);
        session.init_pin(user_pin_secret());
        session.logout();
    } catch (...) {
        module_.reset();
        if (!nss_dir_.empty()) remove_tree(nss_dir_);
        std::lock_guard lock(nss_mutex);
        nss_token_alive = false;
        throw;
    }
}

void TestToken::create_shared(const std::string& prefix) {
    if (auto why = backend_unavailable(backend_)) throw std::runtime_error(backend_name(backend_) + ": " + *why);
    {
        std::lock_guard lock(shared_mutex);
        if (!shared_tokens_alive.insert(backend_).second) {
            throw std::logic_error("only one " + backend_name(backend_) +
                                   " TestToken per process at a time: the run has one such token");
        }
    }
    try {
        const TokenDaemons& daemons = TokenDaemons::get();
        nss_dir_ = make_temp_dir(backend_name(backend_));
        // Tests run in parallel; this one has the token until the TestToken goes.
        const std::string lock_path = daemons.require("P11VAULT_TOKEN_DAEMONS_DIR") + "/" + backend_name(backend_) + ".lock";
        lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lock_fd_ < 0) throw std::runtime_error("cannot open " + lock_path);
        while (::flock(lock_fd_, LOCK_EX) != 0) {
            if (errno != EINTR) throw std::runtime_error("cannot lock " + lock_path);
        }
        if (backend_ == Backend::tpm2) {
            child_env_ = tpm2_environment();
            set_in_process(child_env_);  // for this process's own module
        }
        module_path_ = daemons.require(prefix + "_MODULE");
        label_ = daemons.require(prefix + "_LABEL");
        user_pin_ = daemons.require(prefix + "_USER_PIN");
        so_pin_ = daemons.require(prefix + "_SO_PIN");
        module_ = pkcs11::Module::load(module_path_);
        auto slot = slot_with_label(*module_, label_);
        if (!slot) throw std::runtime_error(backend_name(backend_) + " lists no token \"" + label_ + "\"");
        slot_ = *slot;
        destroy_every_object();
    } catch (...) {
        module_.reset();
        if (lock_fd_ >= 0) ::close(lock_fd_);
        if (!nss_dir_.empty()) remove_tree(nss_dir_);
        std::lock_guard lock(shared_mutex);
        shared_tokens_alive.erase(backend_);
        throw;
    }
}

void TestToken::destroy_every_object() const {
    auto session = open_session(true, true);
    pkcs11::AttributeTemplate everything;
    for (CK_OBJECT_HANDLE object : session->find(everything)) session->destroy_object(object);
}

TestToken::~TestToken() {
    if (backend_ == Backend::opencryptoki || backend_ == Backend::tpm2) {
        // The test's keys do not stay on the shared token; a failure here is the next
        // TestToken's to report.
        try {
            destroy_every_object();
        } catch (...) {
        }
        module_.reset();
        remove_tree(nss_dir_);
        ::close(lock_fd_);
        std::lock_guard lock(shared_mutex);
        shared_tokens_alive.erase(backend_);
        return;
    }
    module_.reset();
    if (backend_ == Backend::nss) {
        remove_tree(nss_dir_);
        std::lock_guard lock(nss_mutex);
        nss_token_alive = false;
    } else {
        std::lock_guard lock(softhsm_mutex);
        softhsm_home_->labels.erase(label_);
        softhsm_home_.reset();
    }
}

const std::string& TestToken::dir() const { return is_softhsm() ? softhsm_home_->dir : nss_dir_; }

void TestToken::refresh() const {
    // With a session of it open, the module stays (its view is the session's).
    if (backend_ != Backend::tpm2 || module_.use_count() > 1) return;
    module_.reset();
    module_ = pkcs11::Module::load(module_path_);
    auto slot = slot_with_label(*module_, label_);
    if (!slot) throw std::runtime_error("tpm2 lists no token \"" + label_ + "\" after a reload");
    slot_ = *slot;
}

std::unique_ptr<pkcs11::Session> TestToken::open_session(bool read_write, bool login) const {
    refresh();
    auto session = std::make_unique<pkcs11::Session>(module_, slot_, read_write);
    if (login) session->login(user_pin_secret());
    return session;
}

std::vector<std::string> TestToken::env_for_child() const {
    std::vector<std::string> entries = child_env_;
    if (is_softhsm()) entries.push_back("SOFTHSM2_CONF=" + softhsm_home_->conf);
#if defined(P11VAULT_TEST_SANITIZED)
    // openCryptoki 3.8's soft token library leaks what it allocates and is dlclose'd at
    // C_Finalize, so LeakSanitizer reports leaks it cannot attribute to any module
    // ("<unknown module>"), which tests/lsan.supp cannot name: leak checking is off for
    // p11vault runs on this one backend (ASan's other checks stay on).
    if (backend_ == Backend::opencryptoki) {
        const char* current = std::getenv("ASAN_OPTIONS");
        entries.push_back(std::string("ASAN_OPTIONS=") + (current != nullptr && *current != '\0' ? std::string(current) + ":" : "") +
                          "detect_leaks=0");
    }
#endif
    return entries;
}

std::vector<std::string> TestToken::cli_token_args() const {
    std::vector<std::string> args = {"--module", module_path_};
    if (module_init_) {
        args.push_back("--module-init");
        args.push_back(*module_init_);
    }
    args.push_back("--token-label");
    args.push_back(label_);
    return args;
}

std::string TestToken::write_pin_file() const {
    std::string name = label_;
    std::replace_if(name.begin(), name.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '-');
    std::string path = dir() + "/" + name + ".pin";
    write_file(path, user_pin_ + "\n", 0600);
    return path;
}

std::vector<ObjectSummary> TestToken::objects() const {
    auto session = open_session(false, true);
    pkcs11::AttributeTemplate everything;
    static const CK_ATTRIBUTE_TYPE wanted[] = {CKA_CLASS, CKA_ID, CKA_LABEL};
    std::vector<ObjectSummary> out;
    for (CK_OBJECT_HANDLE object : session->find(everything)) {
        auto values = session->get_attributes(object, wanted);
        ObjectSummary summary;
        summary.object_class = values.ulong(CKA_CLASS).value_or(CKO_DATA);
        if (const Bytes* id = values.bytes(CKA_ID)) summary.id = *id;
        summary.label = values.text(CKA_LABEL).value_or("");
        out.push_back(std::move(summary));
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::size_t TestToken::object_count() const {
    auto session = open_session(false, true);
    pkcs11::AttributeTemplate everything;
    return session->find(everything).size();
}

}  // namespace p11vault::testing
