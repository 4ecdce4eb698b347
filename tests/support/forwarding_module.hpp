// SPDX-License-Identifier: Apache-2.0
// What the test PKCS#11 modules that sit in front of a real module share (the fault
// module, tests/fault/; the latency module, tests/latency/): the list of PKCS#11
// functions, loading the real module, and a function table whose every entry passes its
// call to the wrapper's own code with the real module's function at hand.
//
// A wrapper is a type W with
//   static constexpr const char* name;   "p11vault fault module": the prefix of its stderr lines
//   static bool read_settings(RealModule& real);
//       reads the environment once, before the real module is loaded; on a bad setting it
//       prints one line on stderr and returns false (C_GetFunctionList then fails with
//       CKR_ARGUMENTS_BAD, so a typo cannot pass silently)
//   template <auto Member, int Index, typename... Args> static CK_RV call(Args... args);
//       one call of the function Member (&CK_FUNCTION_LIST::C_Name) whose index is Index;
//       Forwarding<W>::forward<Member>(args...) passes it to the real module
//   static CK_FUNCTION_LIST* published(CK_FUNCTION_LIST* table);
//       the list C_GetFunctionList hands out (`table`, or one made from it)
// and its exported entry point is
//   extern "C" CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) {
//       return Forwarding<W>::get_function_list(list);
//   }
// C_GetFunctionList of the table is that entry point itself: it never reaches W::call.
// Header-only: each module is one translation unit, built as its own shared library.
#pragma once

#include <dlfcn.h>
#include <p11-kit/pkcs11.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>

// Every member of CK_FUNCTION_LIST (2.40), in order.
#define P11VAULT_FORWARDED_FUNCTIONS(X)                                                                      \
    X(C_Initialize) X(C_Finalize) X(C_GetInfo) X(C_GetFunctionList) X(C_GetSlotList) X(C_GetSlotInfo)        \
    X(C_GetTokenInfo) X(C_GetMechanismList) X(C_GetMechanismInfo) X(C_InitToken) X(C_InitPIN) X(C_SetPIN)    \
    X(C_OpenSession) X(C_CloseSession) X(C_CloseAllSessions) X(C_GetSessionInfo) X(C_GetOperationState)      \
    X(C_SetOperationState) X(C_Login) X(C_Logout) X(C_CreateObject) X(C_CopyObject) X(C_DestroyObject)       \
    X(C_GetObjectSize) X(C_GetAttributeValue) X(C_SetAttributeValue) X(C_FindObjectsInit) X(C_FindObjects)   \
    X(C_FindObjectsFinal) X(C_EncryptInit) X(C_Encrypt) X(C_EncryptUpdate) X(C_EncryptFinal)                 \
    X(C_DecryptInit) X(C_Decrypt) X(C_DecryptUpdate) X(C_DecryptFinal) X(C_DigestInit) X(C_Digest)           \
    X(C_DigestUpdate) X(C_DigestKey) X(C_DigestFinal) X(C_SignInit) X(C_Sign) X(C_SignUpdate)                \
    X(C_SignFinal) X(C_SignRecoverInit) X(C_SignRecover) X(C_VerifyInit) X(C_Verify) X(C_VerifyUpdate)       \
    X(C_VerifyFinal) X(C_VerifyRecoverInit) X(C_VerifyRecover) X(C_DigestEncryptUpdate)                      \
    X(C_DecryptDigestUpdate) X(C_SignEncryptUpdate) X(C_DecryptVerifyUpdate) X(C_GenerateKey)                \
    X(C_GenerateKeyPair) X(C_WrapKey) X(C_UnwrapKey) X(C_DeriveKey) X(C_SeedRandom) X(C_GenerateRandom)      \
    X(C_GetFunctionStatus) X(C_CancelFunction) X(C_WaitForSlotEvent)

namespace p11vault::forwarding {

enum Function : int {
#define P11VAULT_FORWARDED_ENUM(name) name##_index,
    P11VAULT_FORWARDED_FUNCTIONS(P11VAULT_FORWARDED_ENUM)
#undef P11VAULT_FORWARDED_ENUM
    function_count
};

inline const char* const function_names[] = {
#define P11VAULT_FORWARDED_NAME(name) #name,
    P11VAULT_FORWARDED_FUNCTIONS(P11VAULT_FORWARDED_NAME)
#undef P11VAULT_FORWARDED_NAME
};

// The index of the function called `name`, or -1.
inline int function_index(const char* name) {
    for (int i = 0; i < function_count; ++i)
        if (std::strcmp(function_names[i], name) == 0) return i;
    return -1;
}

// A variable of the environment, or null when it is unset or empty.
inline const char* setting(const char* variable) {
    const char* value = std::getenv(variable);
    return value != nullptr && *value != '\0' ? value : nullptr;
}

// The module the wrapper forwards to: where it is, its entry point (FC_GetFunctionList
// gives NSS softoken in FIPS mode), and once loaded its function list.
struct RealModule {
    std::string path = "/usr/lib/softhsm/libsofthsm2.so";
    std::string entry = "C_GetFunctionList";
    CK_FUNCTION_LIST* functions = nullptr;

    // Takes path and entry from these variables where they are set.
    void read(const char* path_variable, const char* entry_variable) {
        if (const char* value = setting(path_variable)) path = value;
        if (const char* value = setting(entry_variable)) entry = value;
    }
};

template <typename Wrapper>
class Forwarding {
public:
    static inline RealModule real;

    // The module's C_GetFunctionList: reads the settings and loads the real module on the
    // first call; every later call gets the first one's outcome.
    static CK_RV get_function_list(CK_FUNCTION_LIST_PTR_PTR list) {
        if (list == nullptr) return CKR_ARGUMENTS_BAD;
        CK_RV rv = load();
        if (rv != CKR_OK) return rv;
        *list = Wrapper::published(&table);
        return CKR_OK;
    }

    // Passes a call to the real module.
    template <auto Member, typename... Args>
    static CK_RV forward(Args... args) {
        if (real.functions == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
        return (real.functions->*Member)(args...);
    }

private:
    // One entry of the table per member of CK_FUNCTION_LIST, made from the member's own type.
    template <auto Member, int Index, typename Pointer>
    struct Entry;

    template <auto Member, int Index, typename... Args>
    struct Entry<Member, Index, CK_RV (*)(Args...)> {
        static CK_RV call(Args... args) { return Wrapper::template call<Member, Index>(args...); }
    };

    static CK_FUNCTION_LIST make_table() {
        CK_FUNCTION_LIST made{};
        made.version.major = 2;
        made.version.minor = 40;
#define P11VAULT_FORWARDED_ENTRY(name)                                                                      \
    made.name = &Entry<&CK_FUNCTION_LIST::name, name##_index,                                               \
                       std::remove_reference_t<decltype(std::declval<CK_FUNCTION_LIST&>().name)>>::call;
        P11VAULT_FORWARDED_FUNCTIONS(P11VAULT_FORWARDED_ENTRY)
#undef P11VAULT_FORWARDED_ENTRY
        made.C_GetFunctionList = &get_function_list;
        return made;
    }

    static inline CK_FUNCTION_LIST table = make_table();

    static CK_RV load() {
        static std::once_flag once;
        static CK_RV result = CKR_OK;
        std::call_once(once, [] {
            if (!Wrapper::read_settings(real)) {
                result = CKR_ARGUMENTS_BAD;
                return;
            }
            void* handle = dlopen(real.path.c_str(), RTLD_NOW | RTLD_LOCAL);
            if (handle == nullptr) {
                const char* reason = dlerror();
                std::fprintf(stderr, "%s: cannot load %s: %s\n", Wrapper::name, real.path.c_str(),
                             reason != nullptr ? reason : "?");
                result = CKR_GENERAL_ERROR;
                return;
            }
            auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(handle, real.entry.c_str()));
            if (get == nullptr || get(&real.functions) != CKR_OK || real.functions == nullptr) {
                std::fprintf(stderr, "%s: %s has no usable %s\n", Wrapper::name, real.path.c_str(),
                             real.entry.c_str());
                real.functions = nullptr;
                result = CKR_GENERAL_ERROR;
            }
        });
        return result;
    }
};

}  // namespace p11vault::forwarding
