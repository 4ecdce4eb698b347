// SPDX-License-Identifier: Apache-2.0
// A fault-injecting PKCS#11 module for tests: every function forwards to a real module
// and one chosen call fails with a chosen return value, so that tests can check what
// p11vault does when a token fails half-way (restore leaves the token as it was, backup
// leaves no file).
//
// Environment (read once, by C_GetFunctionList):
//   P11VAULT_FAULT_MODULE    the real module (default /usr/lib/softhsm/libsofthsm2.so)
//   P11VAULT_FAULT_AT=K      fail the K-th counted call (from 1). Counted: every function
//                            except the module's load and unload (C_GetFunctionList,
//                            C_Initialize, C_Finalize: a C_Finalize failure comes after
//                            the outcome is decided) and the read-only information
//                            queries (C_GetInfo, C_GetSlotList, C_GetSlotInfo,
//                            C_GetTokenInfo, C_GetMechanismList, C_GetMechanismInfo),
//                            which change nothing and are many (p11vault asks for every
//                            mechanism's info): fail those by name instead.
//   P11VAULT_FAULT_FUNCTION=C_Name   fail every call of C_Name (counted or not) ...
//   P11VAULT_FAULT_NTH=N             ... or only its N-th call (from 1).
//   P11VAULT_FAULT_RV        the return value of a failed call: a CKR_ name from the table
//                            below, or a number (0x30 or 48). Default CKR_DEVICE_ERROR.
//   P11VAULT_FAULT_ENTRY     the real module's entry point (default C_GetFunctionList);
//                            FC_GetFunctionList gives NSS softoken in FIPS mode.
//   P11VAULT_FAULT_TOKEN_FLAGS  a number OR'ed into the flags C_GetTokenInfo returns
//                            (e.g. 0x20000 CKF_USER_PIN_FINAL_TRY), to play a token whose
//                            PIN is nearly or wholly used up.
//   P11VAULT_FAULT_SESSIONS=N  the ulMaxSessionCount and ulMaxRwSessionCount C_GetTokenInfo
//                            shows (default 1; 0: the real module's). One by default, so
//                            that p11vault runs through one session and "the K-th call" is
//                            the same call in every run; a test of parallel sessions sets more.
//   P11VAULT_FAULT_BATCH=stop-at-refusal  play an older token whose C_GetAttributeValue,
//                            on CKR_ATTRIBUTE_SENSITIVE or CKR_ATTRIBUTE_TYPE_INVALID,
//                            leaves the entries after the first refused one as the caller
//                            passed them (PKCS#11 2.11+ has every entry filled in).
//   P11VAULT_FAULT_UNPROTECT=1  play a token that ignores the protection asked for in the
//                            template of C_UnwrapKey and C_CreateObject (openCryptoki 3.8's
//                            C_UnwrapKey): the call reaches the real module with
//                            CKA_SENSITIVE=FALSE and CKA_EXTRACTABLE=TRUE whatever was asked,
//                            while C_SetAttributeValue afterwards still works.
//   P11VAULT_FAULT_SIGNAL    a signal name (SIGINT, SIGTERM, SIGHUP): the call chosen by
//                            FAULT_AT / FAULT_FUNCTION does not fail; the module sends this
//                            signal to its own process first, then forwards the call (an
//                            operator's Ctrl-C at exactly that point of a run).
//   P11VAULT_FAULT_DELAY_MS  a number: the call chosen by FAULT_AT / FAULT_FUNCTION does not
//                            fail; it is forwarded after this many milliseconds (a slow
//                            token, to line two runs up against each other).
//   P11VAULT_FAULT_LOG       append one line per call to this file:
//                            "<K or -> <function> <CKR name> [injected] [detail]"
//                            where K is the call's counted number and - an uncounted call;
//                            detail: "object=H types=0x..,.." (C_GetAttributeValue),
//                            "key=H" (C_DecryptInit), "base=H" (C_DeriveKey),
//                            "wrapping=H key=H" (C_WrapKey).
//   P11VAULT_FAULT_HOSTILE=MODE  play a broken or hostile module (the block "Hostile
//                            modules" below lists the modes): a list that never fits, a
//                            search that never ends, absurd lengths, a garbage list.
//   P11VAULT_FAULT_NULL=C_Name   the function list holds NULL for C_Name.
//   P11VAULT_FAULT_LIST_VERSION=MAJOR.MINOR  the version the function list carries.
// FAULT_AT and FAULT_FUNCTION may be combined: a call fails when either rule matches
// (e.g. fail the 7th call and every C_DestroyObject, to make a rollback fail too).
//
// A failed call does not reach the real module. A bad setting makes C_GetFunctionList
// fail with CKR_ARGUMENTS_BAD after a line on stderr, so a typo cannot pass silently.
#include <fcntl.h>
#include <p11-kit/pkcs11.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/forwarding_module.hpp"

namespace {

using namespace p11vault::forwarding;

struct FaultModule;
using Forward = Forwarding<FaultModule>;

bool counted(int function) {
    switch (function) {
        case C_GetFunctionList_index:
        case C_Initialize_index:
        case C_Finalize_index:
        case C_GetInfo_index:
        case C_GetSlotList_index:
        case C_GetSlotInfo_index:
        case C_GetTokenInfo_index:
        case C_GetMechanismList_index:
        case C_GetMechanismInfo_index:
            return false;
        default:
            return true;
    }
}

struct RvName {
    const char* name;
    CK_RV rv;
};
#define RV(name) {#name, name}
const RvName rv_names[] = {
    RV(CKR_OK), RV(CKR_HOST_MEMORY), RV(CKR_SLOT_ID_INVALID), RV(CKR_GENERAL_ERROR), RV(CKR_FUNCTION_FAILED),
    RV(CKR_ARGUMENTS_BAD), RV(CKR_ATTRIBUTE_SENSITIVE), RV(CKR_ATTRIBUTE_TYPE_INVALID), RV(CKR_ATTRIBUTE_READ_ONLY),
    RV(CKR_ATTRIBUTE_VALUE_INVALID), RV(CKR_DATA_INVALID), RV(CKR_DATA_LEN_RANGE), RV(CKR_DEVICE_ERROR),
    RV(CKR_DEVICE_MEMORY), RV(CKR_DEVICE_REMOVED), RV(CKR_ENCRYPTED_DATA_INVALID), RV(CKR_FUNCTION_CANCELED),
    RV(CKR_FUNCTION_NOT_SUPPORTED), RV(CKR_KEY_HANDLE_INVALID), RV(CKR_KEY_SIZE_RANGE), RV(CKR_KEY_TYPE_INCONSISTENT),
    RV(CKR_KEY_NOT_WRAPPABLE), RV(CKR_KEY_UNEXTRACTABLE), RV(CKR_MECHANISM_INVALID), RV(CKR_MECHANISM_PARAM_INVALID),
    RV(CKR_OBJECT_HANDLE_INVALID), RV(CKR_OPERATION_ACTIVE), RV(CKR_OPERATION_NOT_INITIALIZED), RV(CKR_PIN_INCORRECT),
    RV(CKR_PIN_LOCKED), RV(CKR_SESSION_CLOSED), RV(CKR_SESSION_COUNT), RV(CKR_SESSION_HANDLE_INVALID),
    RV(CKR_SESSION_READ_ONLY), RV(CKR_TEMPLATE_INCOMPLETE), RV(CKR_TEMPLATE_INCONSISTENT), RV(CKR_TOKEN_NOT_PRESENT),
    RV(CKR_TOKEN_NOT_RECOGNIZED), RV(CKR_TOKEN_WRITE_PROTECTED), RV(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
    RV(CKR_USER_NOT_LOGGED_IN), RV(CKR_WRAPPED_KEY_INVALID), RV(CKR_WRAPPING_KEY_HANDLE_INVALID),
    RV(CKR_BUFFER_TOO_SMALL), RV(CKR_CRYPTOKI_NOT_INITIALIZED), RV(CKR_SIGNATURE_INVALID),
};
#undef RV

std::string rv_text(CK_RV rv) {
    for (const auto& entry : rv_names)
        if (entry.rv == rv) return entry.name;
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "CKR_0x%lx", static_cast<unsigned long>(rv));
    return buffer;
}

std::optional<unsigned long> parse_number(const char* text) {
    if (text == nullptr || *text == '\0') return std::nullopt;
    char* end = nullptr;
    errno = 0;
    unsigned long value = std::strtoul(text, &end, 0);
    if (errno != 0 || end == nullptr || *end != '\0') return std::nullopt;
    return value;
}

struct Settings {
    bool valid = true;
    unsigned long fail_at = 0;  // 0: off
    int fail_function = -1;     // -1: off
    unsigned long fail_nth = 0; // 0: every call of fail_function
    CK_RV rv = CKR_DEVICE_ERROR;
    CK_FLAGS token_flags = 0;
    CK_ULONG sessions = 1;  // ulMaxSessionCount shown; 0: the real module's
    bool batch_stops_at_refusal = false;
    bool unprotect = false;
    int signal = 0;  // P11VAULT_FAULT_SIGNAL: 0 fails the chosen call instead
    unsigned long delay_ms = 0;  // P11VAULT_FAULT_DELAY_MS: 0 fails the chosen call instead
    std::string log;
};

std::mutex state_mutex;
Settings settings;
unsigned long counted_calls = 0;
unsigned long calls_of[function_count] = {};

void complain(const std::string& what) {
    std::fprintf(stderr, "p11vault fault module: %s\n", what.c_str());
    settings.valid = false;
}

void read_hostile_settings();

bool read_fault_settings(RealModule& real) {
    real.read("P11VAULT_FAULT_MODULE", "P11VAULT_FAULT_ENTRY");
    if (const char* at = std::getenv("P11VAULT_FAULT_AT"); at != nullptr && *at != '\0') {
        auto value = parse_number(at);
        if (!value || *value == 0) complain(std::string("P11VAULT_FAULT_AT must be a number >= 1, not ") + at);
        else settings.fail_at = *value;
    }
    if (const char* name = std::getenv("P11VAULT_FAULT_FUNCTION"); name != nullptr && *name != '\0') {
        settings.fail_function = function_index(name);
        if (settings.fail_function < 0) complain(std::string("P11VAULT_FAULT_FUNCTION: unknown function ") + name);
    }
    if (const char* nth = std::getenv("P11VAULT_FAULT_NTH"); nth != nullptr && *nth != '\0') {
        auto value = parse_number(nth);
        if (!value || *value == 0) complain(std::string("P11VAULT_FAULT_NTH must be a number >= 1, not ") + nth);
        else if (settings.fail_function < 0) complain("P11VAULT_FAULT_NTH needs P11VAULT_FAULT_FUNCTION");
        else settings.fail_nth = *value;
    }
    if (const char* rv = std::getenv("P11VAULT_FAULT_RV"); rv != nullptr && *rv != '\0') {
        bool found = false;
        for (const auto& entry : rv_names) {
            if (std::strcmp(entry.name, rv) == 0) {
                settings.rv = entry.rv;
                found = true;
            }
        }
        if (!found) {
            auto value = parse_number(rv);
            if (!value) complain(std::string("P11VAULT_FAULT_RV: unknown return value ") + rv);
            else settings.rv = *value;
        }
    }
    if (const char* flags = std::getenv("P11VAULT_FAULT_TOKEN_FLAGS"); flags != nullptr && *flags != '\0') {
        auto value = parse_number(flags);
        if (!value) complain(std::string("P11VAULT_FAULT_TOKEN_FLAGS must be a number, not ") + flags);
        else settings.token_flags = *value;
    }
    if (const char* sessions = std::getenv("P11VAULT_FAULT_SESSIONS"); sessions != nullptr && *sessions != '\0') {
        auto value = parse_number(sessions);
        if (!value) complain(std::string("P11VAULT_FAULT_SESSIONS must be a number, not ") + sessions);
        else settings.sessions = *value;
    }
    if (const char* batch = std::getenv("P11VAULT_FAULT_BATCH"); batch != nullptr && *batch != '\0') {
        if (std::strcmp(batch, "stop-at-refusal") == 0) settings.batch_stops_at_refusal = true;
        else complain(std::string("P11VAULT_FAULT_BATCH must be stop-at-refusal, not ") + batch);
    }
    if (const char* unprotect = std::getenv("P11VAULT_FAULT_UNPROTECT"); unprotect != nullptr && *unprotect != '\0') {
        if (std::strcmp(unprotect, "1") == 0) settings.unprotect = true;
        else complain(std::string("P11VAULT_FAULT_UNPROTECT must be 1, not ") + unprotect);
    }
    if (const char* name = std::getenv("P11VAULT_FAULT_SIGNAL"); name != nullptr && *name != '\0') {
        static const std::pair<const char*, int> signals[] = {{"SIGINT", SIGINT}, {"SIGTERM", SIGTERM}, {"SIGHUP", SIGHUP}};
        for (const auto& [signal_name, number] : signals)
            if (std::strcmp(signal_name, name) == 0) settings.signal = number;
        if (settings.signal == 0) complain(std::string("P11VAULT_FAULT_SIGNAL must be SIGINT, SIGTERM or SIGHUP, not ") + name);
    }
    if (const char* delay = std::getenv("P11VAULT_FAULT_DELAY_MS"); delay != nullptr && *delay != '\0') {
        auto value = parse_number(delay);
        if (!value || *value == 0) complain(std::string("P11VAULT_FAULT_DELAY_MS must be a number >= 1, not ") + delay);
        else settings.delay_ms = *value;
    }
    if (const char* log = std::getenv("P11VAULT_FAULT_LOG")) settings.log = log;
    read_hostile_settings();
    return settings.valid;
}

void write_log(const std::string& line) {
    if (settings.log.empty()) return;
    int fd = ::open(settings.log.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return;
    std::string text = line + "\n";
    ssize_t ignored = ::write(fd, text.data(), text.size());
    (void)ignored;
    ::close(fd);
}

// Decides, before the call, whether it fails; returns the call's counted number (0 when
// uncounted) through `number`.
std::optional<CK_RV> decide(int function, unsigned long& number) {
    std::lock_guard lock(state_mutex);
    number = counted(function) ? ++counted_calls : 0;
    unsigned long nth_of_function = ++calls_of[function];
    bool fail = (settings.fail_at != 0 && number == settings.fail_at) ||
                (settings.fail_function == function && (settings.fail_nth == 0 || settings.fail_nth == nth_of_function));
    if (fail && settings.delay_ms != 0) {
        ::usleep(static_cast<useconds_t>(settings.delay_ms * 1000));  // under the state lock: calls queue
        return std::nullopt;
    }
    if (fail && settings.signal != 0) {
        ::kill(::getpid(), settings.signal);  // delivered before kill() returns
        return std::nullopt;
    }
    if (fail) return settings.rv;
    return std::nullopt;
}

void record(int function, unsigned long number, CK_RV rv, bool injected, const std::string& detail = {}) {
    if (settings.log.empty()) return;
    std::string line = (number != 0 ? std::to_string(number) : std::string("-")) + " " + function_names[function] +
                       " " + rv_text(rv) + (injected ? " injected" : "") + (detail.empty() ? "" : " " + detail);
    write_log(line);
}

// What a call was about, after the call's fields in the log: the object and attribute
// types a C_GetAttributeValue asked for, the keys of C_DecryptInit, C_DeriveKey and
// C_WrapKey. Handles and types only, never values: a test checks that a key was used only
// as it should be (escrow_test: an officer's key is never read or wrapped).
std::string hex_number(unsigned long value) {
    char text[32];
    std::snprintf(text, sizeof text, "0x%lx", value);
    return text;
}

std::string attribute_detail(CK_SESSION_HANDLE, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_PTR entries, CK_ULONG count) {
    std::string text = "object=" + std::to_string(object) + " types=";
    for (CK_ULONG i = 0; entries != nullptr && i < count; ++i) text += (i ? "," : "") + hex_number(entries[i].type);
    return text;
}

std::string decrypt_init_detail(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE key) {
    return "key=" + std::to_string(key);
}

std::string derive_detail(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE base, CK_ATTRIBUTE_PTR, CK_ULONG,
                          CK_OBJECT_HANDLE_PTR) {
    return "base=" + std::to_string(base);
}

std::string wrap_detail(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE wrapping, CK_OBJECT_HANDLE key,
                        CK_BYTE_PTR, CK_ULONG_PTR) {
    return "wrapping=" + std::to_string(wrapping) + " key=" + std::to_string(key);
}

void add_token_flags(CK_SLOT_ID, CK_TOKEN_INFO_PTR info) {
    if (info == nullptr) return;
    info->flags |= settings.token_flags;
    if (settings.sessions != 0) info->ulMaxSessionCount = info->ulMaxRwSessionCount = settings.sessions;
}

// P11VAULT_FAULT_BATCH=stop-at-refusal: the entries as the caller passed them (length and
// buffer contents), and after the call, the entries behind the first refused one put back.
struct PassedEntry {
    CK_ULONG length;
    std::vector<unsigned char> contents;
};

std::vector<PassedEntry> entries_passed(CK_SESSION_HANDLE, CK_OBJECT_HANDLE, CK_ATTRIBUTE_PTR entries, CK_ULONG count) {
    std::vector<PassedEntry> passed;
    for (CK_ULONG i = 0; entries != nullptr && i < count; ++i) {
        PassedEntry& entry = passed.emplace_back(PassedEntry{entries[i].ulValueLen, {}});
        if (entries[i].pValue != nullptr) {
            const auto* value = static_cast<const unsigned char*>(entries[i].pValue);
            entry.contents.assign(value, value + entries[i].ulValueLen);
        }
    }
    return passed;
}

void stop_at_first_refusal(CK_RV rv, const std::vector<PassedEntry>& passed, CK_SESSION_HANDLE, CK_OBJECT_HANDLE,
                           CK_ATTRIBUTE_PTR entries, CK_ULONG count) {
    if (rv != CKR_ATTRIBUTE_SENSITIVE && rv != CKR_ATTRIBUTE_TYPE_INVALID) return;
    CK_ULONG i = 0;
    while (i < count && entries[i].ulValueLen != CK_UNAVAILABLE_INFORMATION) ++i;
    for (++i; i < count && i < passed.size(); ++i) {
        entries[i].ulValueLen = passed[i].length;
        if (entries[i].pValue != nullptr)
            std::copy(passed[i].contents.begin(), passed[i].contents.end(), static_cast<unsigned char*>(entries[i].pValue));
    }
}

// P11VAULT_FAULT_UNPROTECT: a copy of the caller's template with the protection undone.
std::vector<CK_ATTRIBUTE> unprotected(CK_ATTRIBUTE_PTR attributes, CK_ULONG count) {
    static CK_BBOOL yes = CK_TRUE;
    static CK_BBOOL no = CK_FALSE;
    std::vector<CK_ATTRIBUTE> copy(attributes, attributes + (attributes != nullptr ? count : 0));
    for (CK_ATTRIBUTE& attribute : copy) {
        if (attribute.type == CKA_SENSITIVE) attribute.pValue = &no;
        if (attribute.type == CKA_EXTRACTABLE) attribute.pValue = &yes;
        if (attribute.type == CKA_SENSITIVE || attribute.type == CKA_EXTRACTABLE) attribute.ulValueLen = sizeof(CK_BBOOL);
    }
    return copy;
}

CK_RV unwrap_forward(CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE unwrapping_key,
                     CK_BYTE_PTR wrapped, CK_ULONG wrapped_length, CK_ATTRIBUTE_PTR attributes, CK_ULONG count,
                     CK_OBJECT_HANDLE_PTR key) {
    constexpr auto unwrap = &CK_FUNCTION_LIST::C_UnwrapKey;
    if (!settings.unprotect)
        return Forward::forward<unwrap>(session, mechanism, unwrapping_key, wrapped, wrapped_length, attributes, count, key);
    std::vector<CK_ATTRIBUTE> copy = unprotected(attributes, count);
    return Forward::forward<unwrap>(session, mechanism, unwrapping_key, wrapped, wrapped_length, copy.data(), count, key);
}

CK_RV create_forward(CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR attributes, CK_ULONG count,
                     CK_OBJECT_HANDLE_PTR object) {
    constexpr auto create = &CK_FUNCTION_LIST::C_CreateObject;
    if (!settings.unprotect) return Forward::forward<create>(session, attributes, count, object);
    std::vector<CK_ATTRIBUTE> copy = unprotected(attributes, count);
    return Forward::forward<create>(session, copy.data(), count, object);
}

// The hostile modes (P11VAULT_FAULT_HOSTILE, _NULL, _LIST_VERSION), in their own file;
// part of this anonymous namespace, after the settings and the function table they use.
#include "hostile_modes.inc"


// The module: every call decided, maybe answered by a hostile mode, forwarded, logged.
struct FaultModule {
    static constexpr const char* name = "p11vault fault module";

    static bool read_settings(RealModule& real) { return read_fault_settings(real); }
    static CK_FUNCTION_LIST* published(CK_FUNCTION_LIST* table) { return hostile_table(table); }

    template <auto Member, int Index, typename... Args>
    static CK_RV call(Args... args) {
        unsigned long number = 0;
        std::optional<CK_RV> fault = decide(Index, number);
        if constexpr (hostile_hooked(Index)) {
            if (!fault) {
                if (std::optional<CK_RV> answer = hostile_answer(Index, args...)) {
                    record(Index, number, *answer, false);
                    return *answer;
                }
            }
        }
        CK_RV rv = CKR_OK;
        std::vector<PassedEntry> passed;
        if constexpr (Index == C_GetAttributeValue_index) {
            if (settings.batch_stops_at_refusal) passed = entries_passed(args...);
        }
        if (fault) rv = *fault;
        else rv = forward<Member, Index>(args...);
        if constexpr (Index == C_GetTokenInfo_index) {
            if (rv == CKR_OK) add_token_flags(args...);
        }
        if constexpr (Index == C_GetAttributeValue_index) {
            if (settings.batch_stops_at_refusal) stop_at_first_refusal(rv, passed, args...);
            if (!fault) hostile_lengths(rv, args...);
        }
        std::string detail;
        if (!settings.log.empty()) {
            if constexpr (Index == C_GetAttributeValue_index) detail = attribute_detail(args...);
            else if constexpr (Index == C_DecryptInit_index) detail = decrypt_init_detail(args...);
            else if constexpr (Index == C_DeriveKey_index) detail = derive_detail(args...);
            else if constexpr (Index == C_WrapKey_index) detail = wrap_detail(args...);
        }
        record(Index, number, rv, fault.has_value(), detail);
        return rv;
    }

    template <auto Member, int Index, typename... Args>
    static CK_RV forward(Args... args) {
        if constexpr (Index == C_UnwrapKey_index) return unwrap_forward(args...);
        else if constexpr (Index == C_CreateObject_index) return create_forward(args...);
        else return Forward::forward<Member>(args...);
    }
};

}  // namespace

extern "C" __attribute__((visibility("default"))) CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) {
    return Forward::get_function_list(list);
}
