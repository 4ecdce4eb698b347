// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/module.hpp"

#include <dlfcn.h>

#include <cstring>
#include <map>
#include <mutex>

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
    int users = 0;
};

std::mutex registry_mutex;
std::map<CK_FUNCTION_LIST*, Registration>& registry() {
    static std::map<CK_FUNCTION_LIST*, Registration> modules;  // nodes never move
    return modules;
}

std::string padded(std::string_view text, std::size_t width, const char* what) {
    if (text.size() > width) {
        throw Error(ExitCode::usage, std::string(what) + " is longer than " + std::to_string(width) + " bytes");
    }
    std::string out(text);
    out.resize(width, ' ');
    return out;
}

}  // namespace

std::string trim_padded(const CK_UTF8CHAR* text, std::size_t width) {
    std::string out(reinterpret_cast<const char*>(text), width);
    // Blank padding is the rule; some tokens pad with NUL instead.
    std::size_t end = out.find_last_not_of(std::string(" \0", 2));
    out.resize(end == std::string::npos ? 0 : end + 1);
    return out;
}

std::shared_ptr<Module> Module::load(const std::string& path, const std::optional<std::string>& init_string) {
    std::shared_ptr<Module> module(new Module());
    module->path_ = path;
    if (init_string) module->init_string_ = *init_string;

    // RTLD_LOCAL keeps the module's symbols (often its own OpenSSL or NSS) from
    // interposing on ours. RTLD_NODELETE: see ~Module.
    module->handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (module->handle_ == nullptr) {
        const char* reason = dlerror();
        throw Error(ExitCode::token, "cannot load PKCS#11 module " + path + ": " +
                                         (reason != nullptr ? reason : "unknown error") +
                                         "; check --module");
    }
    auto get_function_list = reinterpret_cast<CK_C_GetFunctionList>(dlsym(module->handle_, "C_GetFunctionList"));
    if (get_function_list == nullptr) {
        throw Error(ExitCode::token, path + " is not a PKCS#11 module (it has no C_GetFunctionList); check --module");
    }
    check(get_function_list(&module->functions_), "C_GetFunctionList");
    if (module->functions_ == nullptr) throw Pkcs11Error("C_GetFunctionList", CKR_GENERAL_ERROR, "no function list");

    std::lock_guard lock(registry_mutex);
    auto& modules = registry();
    if (auto found = modules.find(module->functions_); found != modules.end()) {
        Registration& registration = found->second;
        // One module, one configuration: NSS softoken, for one, opens a single database
        // per process, and a second init string would silently be ignored.
        bool same_init = registration.has_init_string == init_string.has_value() &&
                         (!init_string || registration.init_string == *init_string);
        if (!same_init) {
            throw Error(ExitCode::token, "PKCS#11 module " + path +
                                             " is already in use in this process with other --module-init "
                                             "parameters; a module serves one configuration per process "
                                             "(NSS softoken: one database)");
        }
        ++registration.users;
        module->registered_ = true;
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
        std::string hint = "module " + path;
        if (init_string) {
            hint += "; check the --module-init parameters";
        } else if (rv == CKR_ARGUMENTS_BAD) {
            hint += "; it may need init parameters: --module-init";
        }
        throw Pkcs11Error("C_Initialize", rv, hint);
    }
    log_call(rv, "C_Initialize");
    registration.users = 1;
    module->registered_ = true;
    module->initialized_by_us_ = true;
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
    std::vector<CK_SLOT_ID> slots;
    // The list can grow between the two calls (hot-plug, SoftHSM adding a free slot).
    for (;;) {
        CK_ULONG count = 0;
        check(functions_->C_GetSlotList(token_present, nullptr, &count), "C_GetSlotList");
        slots.resize(count);
        if (count == 0) return slots;
        CK_RV rv = check_allowing(functions_->C_GetSlotList(token_present, slots.data(), &count), "C_GetSlotList",
                                  {CKR_BUFFER_TOO_SMALL});
        if (rv == CKR_OK) {
            slots.resize(count);
            return slots;
        }
    }
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
    return out;
}

std::vector<MechanismEntry> Module::mechanisms(CK_SLOT_ID slot) const {
    std::vector<CK_MECHANISM_TYPE> types;
    for (;;) {
        CK_ULONG count = 0;
        check(functions_->C_GetMechanismList(slot, nullptr, &count), "C_GetMechanismList");
        types.resize(count);
        if (count == 0) break;
        CK_RV rv = check_allowing(functions_->C_GetMechanismList(slot, types.data(), &count),
                                  "C_GetMechanismList", {CKR_BUFFER_TOO_SMALL});
        if (rv == CKR_OK) {
            types.resize(count);
            break;
        }
    }
    std::vector<MechanismEntry> out;
    out.reserve(types.size());
    for (CK_MECHANISM_TYPE type : types) {
        if (auto info = mechanism_info(slot, type)) out.push_back(MechanismEntry{type, *info});
    }
    return out;
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
