// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/module.hpp"

#include <dlfcn.h>

#include <cstring>
#include <map>
#include <mutex>
#include <string_view>

#include "p11vault/secret.hpp"
#include "pkcs11/error.hpp"

namespace p11vault::pkcs11 {
namespace {

// Modules this process initialized through Module::load, by function list (one per
// loaded library). Two Modules of the same library share one initialization: the
// second one does not call C_Initialize, and C_Finalize waits for the last one, so
// dropping one Module never pulls the module out from under another (the libp11 bug).
struct Registration {
    std::string init_string;  // pReserved of C_Initialize points here until C_Finalize
    bool has_init_string = false;
    bool thread_safe = false;  // C_Initialize took CKF_OS_LOCKING_OK
    int users = 0;
};

std::mutex registry_mutex;
std::map<CK_FUNCTION_LIST*, Registration>& registry() {
    static std::map<CK_FUNCTION_LIST*, Registration> modules;  // nodes never move
    return modules;
}

// Every function of the list p11vault may call, checked when the module is loaded: a
// module is usable whole or refused at once, never found to lack a function half-way
// through a restore (a NULL entry would be a crash, not an error).
#define P11VAULT_USED_FUNCTIONS(X)                                                                            \
    X(C_Initialize) X(C_Finalize) X(C_GetInfo) X(C_GetSlotList) X(C_GetSlotInfo) X(C_GetTokenInfo)             \
    X(C_GetMechanismList) X(C_GetMechanismInfo) X(C_InitToken) X(C_InitPIN) X(C_OpenSession) X(C_CloseSession) \
    X(C_GetSessionInfo) X(C_Login) X(C_Logout) X(C_CreateObject) X(C_DestroyObject) X(C_GetAttributeValue)     \
    X(C_SetAttributeValue) X(C_FindObjectsInit) X(C_FindObjects) X(C_FindObjectsFinal) X(C_EncryptInit)        \
    X(C_Encrypt) X(C_DecryptInit) X(C_Decrypt) X(C_SignInit) X(C_Sign) X(C_VerifyInit) X(C_Verify)             \
    X(C_GenerateKey) X(C_GenerateKeyPair) X(C_WrapKey) X(C_UnwrapKey) X(C_DeriveKey) X(C_GenerateRandom)

// The first function p11vault calls that the list leaves NULL, or nullptr.
const char* first_missing_function(const CK_FUNCTION_LIST& list) {
#define P11VAULT_CHECK_ENTRY(name) \
    if (list.name == nullptr) return #name;
    P11VAULT_USED_FUNCTIONS(P11VAULT_CHECK_ENTRY)
#undef P11VAULT_CHECK_ENTRY
    return nullptr;
}

// A list p11vault can read at all: Cryptoki 2.x and 3.x lists start with the same 2.x
// members; any other major version is not a list p11vault knows (or is garbage).
void check_function_list(const std::string& path, const CK_FUNCTION_LIST& list) {
    if (list.version.major != 2 && list.version.major != 3) {
        throw Error(ErrorKind::token, "PKCS#11 module " + path + ": C_GetFunctionList returned a function list of "
                                         "version " + std::to_string(list.version.major) + "." +
                                         std::to_string(list.version.minor) +
                                         ", not a Cryptoki 2.x or 3.x list; p11vault refuses the module");
    }
    if (const char* missing = first_missing_function(list)) {
        throw Error(ErrorKind::token, "PKCS#11 module " + path + " has no " + missing +
                                         " (its function list holds NULL there); p11vault refuses a module "
                                         "that lacks a function it may call");
    }
}

// A list read the PKCS#11 way, a size query then a fill, again while the list grows
// between the two calls (hot-plug; SoftHSM adding a free slot) — but a bounded number of
// times, and never longer than max_list_entries: a module that always answers
// CKR_BUFFER_TOO_SMALL, or a count no token has, is refused instead of spinning or
// allocating without end.
template <typename Entry, typename Call>
std::vector<Entry> read_list(const std::string& path, const char* function, const std::string& detail, Call call) {
    std::vector<Entry> list;
    const std::string where = "module " + path + (detail.empty() ? "" : ", " + detail);
    auto check_count = [&](CK_ULONG count) {
        if (count > max_list_entries) {
            throw Error(ErrorKind::token, "PKCS#11 module " + path + ": " + function + " reports " +
                                             std::to_string(count) + " entries; p11vault refuses more than " +
                                             std::to_string(max_list_entries));
        }
    };
    for (int attempt = 0; attempt < max_size_retries; ++attempt) {
        CK_ULONG count = 0;
        check(call(nullptr, &count), function, where);
        check_count(count);
        list.resize(count);
        if (count == 0) return list;
        CK_RV rv = check_allowing(call(list.data(), &count), function, {CKR_BUFFER_TOO_SMALL}, where);
        if (rv == CKR_OK) {
            if (count > list.size()) {
                throw Error(ErrorKind::token, "PKCS#11 module " + path + ": " + function + " reports " +
                                                 std::to_string(count) + " entries written into room for " +
                                                 std::to_string(list.size()));
            }
            list.resize(count);
            return list;
        }
    }
    throw Pkcs11Error(function, CKR_BUFFER_TOO_SMALL,
                      where + ": answered " + std::to_string(max_size_retries) +
                          " times in a row with a list that never fits the length it reported; p11vault gives up");
}

std::string padded(std::string_view text, std::size_t width, const char* what) {
    if (text.size() > width) {
        throw Error(ErrorKind::usage, std::string(what) + " is longer than " + std::to_string(width) + " bytes");
    }
    std::string out(text);
    out.resize(width, ' ');
    return out;
}

}  // namespace

std::string initialize_failure_hint(const std::string& path, CK_RV rv, bool has_init_string) {
    std::string hint = "module " + path;
    if (has_init_string) {
        hint += "; check the --module-init parameters";
    } else if (rv == CKR_ARGUMENTS_BAD) {
        hint += "; it may need init parameters: --module-init";
    }
    const std::string_view file = std::string_view(path).substr(path.find_last_of('/') + 1);
    if (rv == CKR_HOST_MEMORY && file.rfind("libopencryptoki", 0) == 0)
        hint += "; openCryptoki answers this when its slot daemon pkcsslotd is not running";
    return hint;
}

std::string trim_padded(const CK_UTF8CHAR* text, std::size_t width) {
    std::string out(reinterpret_cast<const char*>(text), width);
    // Blank padding is the rule; some tokens pad with NUL instead.
    std::size_t end = out.find_last_not_of(std::string(" \0", 2));
    out.resize(end == std::string::npos ? 0 : end + 1);
    return out;
}

std::shared_ptr<Module> Module::load(const std::string& path, const std::optional<std::string>& init_string,
                                     const std::string& origin) {
    std::shared_ptr<Module> module(new Module());
    module->path_ = path;
    if (init_string) module->init_string_ = *init_string;

    // RTLD_LOCAL keeps the module's symbols (often its own OpenSSL or NSS) from
    // interposing on ours. RTLD_NODELETE: see ~Module.
    module->handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (module->handle_ == nullptr) {
        const char* reason = dlerror();
        throw Error(ErrorKind::token, "cannot load PKCS#11 module " + path + ": " +
                                         (reason != nullptr ? reason : "unknown error") + "; check " +
                                         origin);
    }
    auto get_function_list = reinterpret_cast<CK_C_GetFunctionList>(dlsym(module->handle_, "C_GetFunctionList"));
    if (get_function_list == nullptr) {
        throw Error(ErrorKind::token, path + " is not a PKCS#11 module (it has no C_GetFunctionList); check " + origin);
    }
    check(get_function_list(&module->functions_), "C_GetFunctionList", "module " + path);
    if (module->functions_ == nullptr)
        throw Pkcs11Error("C_GetFunctionList", CKR_GENERAL_ERROR, "module " + path + " returned no function list");
    check_function_list(path, *module->functions_);

    std::lock_guard lock(registry_mutex);
    auto& modules = registry();
    if (auto found = modules.find(module->functions_); found != modules.end()) {
        Registration& registration = found->second;
        // One module, one configuration: NSS softoken, for one, opens a single database
        // per process, and a second init string would silently be ignored.
        bool same_init = registration.has_init_string == init_string.has_value() &&
                         (!init_string || registration.init_string == *init_string);
        if (!same_init) {
            throw Error(ErrorKind::token, "PKCS#11 module " + path +
                                             " is already in use in this process with other --module-init "
                                             "parameters; a module serves one configuration per process "
                                             "(NSS softoken: one database)");
        }
        ++registration.users;
        module->registered_ = true;
        module->thread_safe_ = registration.thread_safe;
        if (debug_logging()) {
            debug_log("C_Initialize: skipped, " + path + " is already initialized by p11vault in this process");
        }
        return module;
    }

    auto entry = modules.emplace(module->functions_, Registration{}).first;
    Registration& registration = entry->second;
    registration.has_init_string = init_string.has_value();
    if (init_string) registration.init_string = *init_string;

    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    args.pReserved = init_string ? registration.init_string.data() : nullptr;
    CK_RV rv = module->functions_->C_Initialize(&args);
    registration.thread_safe = rv == CKR_OK;
    if (rv == CKR_CANT_LOCK) {
        // The module cannot lock for several threads: it serves one, and p11vault then
        // calls it from one (a run's --jobs is 1). flags 0 without mutex functions says so.
        log_call(rv, "C_Initialize", "(CKF_OS_LOCKING_OK; again for one thread)");
        args.flags = 0;
        rv = module->functions_->C_Initialize(&args);
    }
    if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        // Someone else in the process (libp11, an OpenSSL engine or provider) owns it:
        // use it, never finalize it.
        log_call(rv, "C_Initialize", "(owned by another user of " + path + ")");
        modules.erase(entry);
        return module;
    }
    if (rv != CKR_OK) {
        modules.erase(entry);
        log_call(rv, "C_Initialize");
        throw Pkcs11Error("C_Initialize", rv, initialize_failure_hint(path, rv, init_string.has_value()));
    }
    log_call(rv, "C_Initialize");
    registration.users = 1;
    module->registered_ = true;
    module->initialized_by_us_ = true;
    module->thread_safe_ = registration.thread_safe;
    return module;
}

Module::~Module() {
    if (registered_) {
        std::lock_guard lock(registry_mutex);
        auto found = registry().find(functions_);
        if (found != registry().end() && --found->second.users == 0) {
            CK_RV rv = functions_->C_Finalize(nullptr);
            log_call(rv, "C_Finalize");
            registry().erase(found);
        }
    }
    // The library was opened with RTLD_NODELETE, so this drops our reference but the code
    // stays mapped until exit. Measured with NSS softoken 3.87: a real unload takes NSPR
    // with it, and what NSPR keeps past C_Finalize (about 6 KB per load) becomes memory
    // nobody can free or name (LeakSanitizer reports it in "<unknown module>", beyond any
    // suppression); a reload then starts NSPR again from scratch. Keeping modules mapped
    // costs nothing in a short-lived CLI and keeps reload and leak checks sane.
    if (handle_ != nullptr) dlclose(handle_);
}

ModuleInfo Module::info() const {
    CK_INFO raw{};
    check(functions_->C_GetInfo(&raw), "C_GetInfo");
    ModuleInfo out;
    out.manufacturer = trim_padded(raw.manufacturerID, sizeof raw.manufacturerID);
    out.description = trim_padded(raw.libraryDescription, sizeof raw.libraryDescription);
    out.cryptoki_version = raw.cryptokiVersion;
    out.library_version = raw.libraryVersion;
    return out;
}

std::vector<CK_SLOT_ID> Module::slots(bool with_token_only) const {
    const CK_BBOOL token_present = with_token_only ? CK_TRUE : CK_FALSE;
    return read_list<CK_SLOT_ID>(path_, "C_GetSlotList", "", [&](CK_SLOT_ID* list, CK_ULONG* count) {
        return functions_->C_GetSlotList(token_present, list, count);
    });
}

SlotInfo Module::slot_info(CK_SLOT_ID slot) const {
    CK_SLOT_INFO raw{};
    check(functions_->C_GetSlotInfo(slot, &raw), "C_GetSlotInfo");
    SlotInfo out;
    out.id = slot;
    out.description = trim_padded(raw.slotDescription, sizeof raw.slotDescription);
    out.manufacturer = trim_padded(raw.manufacturerID, sizeof raw.manufacturerID);
    out.flags = raw.flags;
    return out;
}

TokenInfo Module::token_info(CK_SLOT_ID slot) const {
    CK_TOKEN_INFO raw{};
    check(functions_->C_GetTokenInfo(slot, &raw), "C_GetTokenInfo");
    TokenInfo out;
    out.label = trim_padded(raw.label, sizeof raw.label);
    out.manufacturer = trim_padded(raw.manufacturerID, sizeof raw.manufacturerID);
    out.model = trim_padded(raw.model, sizeof raw.model);
    out.serial = trim_padded(raw.serialNumber, sizeof raw.serialNumber);
    out.flags = raw.flags;
    out.max_pin_len = raw.ulMaxPinLen;
    out.min_pin_len = raw.ulMinPinLen;
    out.max_session_count = raw.ulMaxSessionCount;
    out.session_count = raw.ulSessionCount;
    out.max_rw_session_count = raw.ulMaxRwSessionCount;
    out.rw_session_count = raw.ulRwSessionCount;
    return out;
}

std::vector<MechanismEntry> Module::mechanisms(CK_SLOT_ID slot) const {
    const std::vector<CK_MECHANISM_TYPE> types = read_list<CK_MECHANISM_TYPE>(
        path_, "C_GetMechanismList", "slot " + std::to_string(slot),
        [&](CK_MECHANISM_TYPE* list, CK_ULONG* count) { return functions_->C_GetMechanismList(slot, list, count); });
    std::vector<MechanismEntry> out;
    out.reserve(types.size());
    for (CK_MECHANISM_TYPE type : types) {
        if (auto info = mechanism_info(slot, type)) out.push_back(MechanismEntry{type, *info});
    }
    return out;
}

const MechanismEntry* MechanismList::find(CK_MECHANISM_TYPE type) const {
    for (const auto& entry : entries_)
        if (entry.type == type) return &entry;
    return nullptr;
}

bool MechanismList::offers(CK_MECHANISM_TYPE type, CK_FLAGS flag) const {
    const MechanismEntry* entry = find(type);
    return entry != nullptr && entry->has(flag);
}

bool MechanismList::offers_any(std::initializer_list<CK_MECHANISM_TYPE> types) const {
    for (CK_MECHANISM_TYPE type : types)
        if (find(type) != nullptr) return true;
    return false;
}

std::optional<CK_MECHANISM_INFO> Module::mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type) const {
    CK_MECHANISM_INFO info;
    std::memset(&info, 0, sizeof info);  // SoftHSM ORs flags into what it is given
    CK_RV rv = check_allowing(functions_->C_GetMechanismInfo(slot, type, &info), "C_GetMechanismInfo",
                              {CKR_MECHANISM_INVALID}, mechanism_name(type));
    if (rv != CKR_OK) return std::nullopt;
    return info;
}

void Module::init_token(CK_SLOT_ID slot, std::string_view so_pin, std::string_view label) const {
    init_token(slot, SecretBytes(so_pin.data(), so_pin.size()), label);
}

void Module::init_token(CK_SLOT_ID slot, const SecretBytes& pin, std::string_view label) const {
    std::string label32 = padded(label, 32, "token label");
    check(functions_->C_InitToken(slot, const_cast<CK_UTF8CHAR*>(pin.data()), static_cast<CK_ULONG>(pin.size()),
                                  reinterpret_cast<CK_UTF8CHAR*>(label32.data())),
          "C_InitToken");
}

}  // namespace p11vault::pkcs11
