// SPDX-License-Identifier: Apache-2.0
#include "tests/support/test_token.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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

std::string backend_name(Backend backend) { return backend == Backend::softhsm ? "softhsm" : "nss"; }

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

}  // namespace

// One SoftHSM configuration and loaded module, shared by the SoftHSM TestTokens alive
// together (SoftHSM reads SOFTHSM2_CONF once per C_Initialize).
struct TestToken::SoftHsmHome {
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
    if (backend == Backend::softhsm) {
        create_softhsm(std::move(label));
    } else {
        create_nss();
    }
}

void TestToken::create_softhsm(std::string label) {
    std::lock_guard lock(softhsm_mutex);
    auto home = std::static_pointer_cast<SoftHsmHome>(current_softhsm_home.lock());
    if (!home) {
        home = std::make_shared<SoftHsmHome>();
        home->dir = make_temp_dir("softhsm");
        fs::create_directory(home->dir + "/tokens");
        home->conf = home->dir + "/softhsm2.conf";
        write_file(home->conf,
                   "directories.tokendir = " + home->dir + "/tokens\n"
                   "objectstore.backend = file\n"
                   "log.level = ERROR\n",
                   0600);
        // Read by SoftHSM in C_Initialize; each test has its own process.
        setenv("SOFTHSM2_CONF", home->conf.c_str(), 1);
        home->module = pkcs11::Module::load(softhsm_module_path);
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
    module_path_ = softhsm_module_path;
    label_ = label;
    so_pin_ = "5678-so-pin";

    // SoftHSM always offers exactly one free (uninitialized) slot.
    std::optional<CK_SLOT_ID> free_slot;
    for (CK_SLOT_ID slot : module_->slots()) {
        if (!module_->token_info(slot).token_initialized()) {
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

TestToken::~TestToken() {
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

const std::string& TestToken::dir() const { return backend_ == Backend::softhsm ? softhsm_home_->dir : nss_dir_; }

std::unique_ptr<pkcs11::Session> TestToken::open_session(bool read_write, bool login) const {
    auto session = std::make_unique<pkcs11::Session>(module_, slot_, read_write);
    if (login) session->login(user_pin_secret());
    return session;
}

std::vector<std::string> TestToken::env_for_child() const {
    if (backend_ == Backend::softhsm) return {"SOFTHSM2_CONF=" + softhsm_home_->conf};
    return {};
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
