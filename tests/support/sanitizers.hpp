// SPDX-License-Identifier: Apache-2.0
// P11VAULT_TEST_SANITIZED is defined when the library the tests run is built with
// AddressSanitizer (by the build, or GCC's __SANITIZE_ADDRESS__, clang's __has_feature):
// tests that cannot run under it (valgrind) skip, and slow ones sample.
#pragma once

#if defined(P11VAULT_TEST_SANITIZED)
// Defined by the build (tests/CMakeLists.txt): the library is instrumented, the tests not.
#elif defined(__SANITIZE_ADDRESS__)
#define P11VAULT_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define P11VAULT_TEST_SANITIZED 1
#endif
#endif

#ifdef P11VAULT_TEST_SANITIZED
#include <sanitizer/lsan_interface.h>
#endif

namespace p11vault::testing {

// SoftHSM 2.6.1 leaks 37 bytes in every C_SignInit with an Ed25519 key (the ASN1 string of
// the decoded curve OID, allocated by libcrypto for libsofthsm2.so). LeakSanitizer ignores
// what is allocated while one of these lives, in this test process only. tests/lsan.supp
// cannot match this leak: scripts/test runs ASan with the fast unwinder (the slow one made
// every malloc of a 600,000-iteration KDF cost a DWARF unwind: 85 s instead of 1 s), which
// stops in libcrypto, whose frames have no frame pointer, before it reaches SoftHSM.
class SoftHsmEd25519LeakIgnored {
public:
    SoftHsmEd25519LeakIgnored() {}  // user-provided: a scope guard, "used" in every build
    SoftHsmEd25519LeakIgnored(const SoftHsmEd25519LeakIgnored&) = delete;
    SoftHsmEd25519LeakIgnored& operator=(const SoftHsmEd25519LeakIgnored&) = delete;

private:
#ifdef P11VAULT_TEST_SANITIZED
    __lsan::ScopedDisabler disabler_;
#endif
};

}  // namespace p11vault::testing
