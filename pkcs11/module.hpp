// SPDX-License-Identifier: Apache-2.0
// Module: one loaded PKCS#11 library (dlopen + C_GetFunctionList + C_Initialize).
//
// C_Initialize is called with CKF_OS_LOCKING_OK and, when given, an init string in
// pReserved (NSS softoken needs "configdir='sql:DIR' ..."). If the module answers
// CKR_CRYPTOKI_ALREADY_INITIALIZED, someone else in the process owns it (libp11, the
// OpenSSL engine): we use it and never call C_Finalize on it.
#pragma once

#include <p11-kit/pkcs11.h>

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p11vault/secret.hpp"

namespace p11vault::pkcs11 {

struct ModuleInfo {
    std::string manufacturer;
    std::string description;
    CK_VERSION cryptoki_version{};
    CK_VERSION library_version{};
};

struct SlotInfo {
    CK_SLOT_ID id = 0;
    std::string description;
    std::string manufacturer;
    CK_FLAGS flags = 0;
    bool token_present() const { return (flags & CKF_TOKEN_PRESENT) != 0; }
};

struct TokenInfo {
    std::string label;          // blank padding removed
    std::string manufacturer;
    std::string model;
    std::string serial;
    CK_FLAGS flags = 0;
    CK_ULONG max_pin_len = 0;
    CK_ULONG min_pin_len = 0;
    // Sessions: the most the token allows (CK_EFFECTIVELY_INFINITE: no limit;
    // CK_UNAVAILABLE_INFORMATION: not said) and how many are open now.
    CK_ULONG max_session_count = CK_UNAVAILABLE_INFORMATION;
    CK_ULONG session_count = CK_UNAVAILABLE_INFORMATION;
    CK_ULONG max_rw_session_count = CK_UNAVAILABLE_INFORMATION;
    CK_ULONG rw_session_count = CK_UNAVAILABLE_INFORMATION;
    bool login_required() const { return (flags & CKF_LOGIN_REQUIRED) != 0; }
    bool token_initialized() const { return (flags & CKF_TOKEN_INITIALIZED) != 0; }
    bool user_pin_initialized() const { return (flags & CKF_USER_PIN_INITIALIZED) != 0; }
    bool pin_count_low() const { return (flags & CKF_USER_PIN_COUNT_LOW) != 0; }
    bool pin_final_try() const { return (flags & CKF_USER_PIN_FINAL_TRY) != 0; }
    bool pin_locked() const { return (flags & CKF_USER_PIN_LOCKED) != 0; }
};

struct MechanismEntry {
    CK_MECHANISM_TYPE type = 0;
    CK_MECHANISM_INFO info{};
    bool has(CK_FLAGS flag) const { return (info.flags & flag) != 0; }
};

// A slot's mechanisms as C_GetMechanismList and C_GetMechanismInfo gave them: the one
// place that answers "does the token offer this" (Session::mechanisms()).
class MechanismList {
public:
    MechanismList() = default;
    explicit MechanismList(std::vector<MechanismEntry> entries) : entries_(std::move(entries)) {}

    // The entry of `type`; null when the token does not offer it.
    const MechanismEntry* find(CK_MECHANISM_TYPE type) const;
    // Whether the token offers `type` for `flag` (CKF_WRAP, CKF_UNWRAP, CKF_SIGN, ...).
    bool offers(CK_MECHANISM_TYPE type, CK_FLAGS flag) const;
    // Whether the token offers any of `types`, for whatever use.
    bool offers_any(std::initializer_list<CK_MECHANISM_TYPE> types) const;

private:
    std::vector<MechanismEntry> entries_;
};

// Limits on what a module may answer (a broken or hostile module must not make p11vault
// spin or allocate without end): how often a size query and its fill are retried when the
// answer keeps changing, and how many slots or mechanisms one list may hold.
inline constexpr int max_size_retries = 8;
inline constexpr CK_ULONG max_list_entries = 65536;

class Module {
public:
    // Loads and initializes. Throws Error(ErrorKind::token) naming the path when the
    // library cannot be loaded, when its function list is not a Cryptoki 2.x or 3.x list
    // or lacks a function p11vault may call (named), and Pkcs11Error when C_Initialize
    // fails. `origin` says where the path came from, for "check ..." in the message.
    static std::shared_ptr<Module> load(const std::string& path,
                                        const std::optional<std::string>& init_string = std::nullopt,
                                        const std::string& origin = "--module");
    ~Module();
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    CK_FUNCTION_LIST* functions() const noexcept { return functions_; }
    const std::string& path() const noexcept { return path_; }
    // The C_Initialize parameter string (--module-init; empty when none).
    const std::string& init_string() const noexcept { return init_string_; }
    bool owns_initialization() const noexcept { return initialized_by_us_; }
    // Whether the module may be called from several threads at once: it took
    // CKF_OS_LOCKING_OK. False when it answered CKR_CANT_LOCK (it was then initialized
    // for one thread) or when another user of the process initialized it (how, unknown).
    bool thread_safe() const noexcept { return thread_safe_; }

    ModuleInfo info() const;
    std::vector<CK_SLOT_ID> slots(bool with_token_only = true) const;
    SlotInfo slot_info(CK_SLOT_ID slot) const;
    TokenInfo token_info(CK_SLOT_ID slot) const;
    std::vector<MechanismEntry> mechanisms(CK_SLOT_ID slot) const;
    // Absent when the token does not offer the mechanism. The struct is zeroed before
    // the call (SoftHSM ORs flags into it).
    std::optional<CK_MECHANISM_INFO> mechanism_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type) const;
    // C_InitToken (SO PIN) — used by tests and the verify drill to make throw-away tokens.
    void init_token(CK_SLOT_ID slot, std::string_view so_pin, std::string_view label) const;
    void init_token(CK_SLOT_ID slot, const SecretBytes& so_pin, std::string_view label) const;

private:
    Module() = default;

    void* handle_ = nullptr;
    CK_FUNCTION_LIST* functions_ = nullptr;
    std::string path_;
    std::string init_string_;  // must outlive C_Initialize's use of pReserved
    bool initialized_by_us_ = false;
    bool thread_safe_ = false;
    // Counted in the process-wide registry of modules p11vault initialized: the last
    // Module of a function list calls C_Finalize, whichever of them initialized it.
    bool registered_ = false;
};

// The hint of a failed C_Initialize: the module's path, and what the return value
// usually means (openCryptoki's CKR_HOST_MEMORY: its slot daemon is not running).
std::string initialize_failure_hint(const std::string& path, CK_RV rv, bool has_init_string);

// Trims the blank padding of the fixed-width CK_UTF8CHAR fields of PKCS#11 structs.
std::string trim_padded(const CK_UTF8CHAR* text, std::size_t width);

}  // namespace p11vault::pkcs11
