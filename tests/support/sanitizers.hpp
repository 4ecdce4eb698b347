// SPDX-License-Identifier: Apache-2.0
// P11VAULT_TEST_SANITIZED is defined when the tests are built with AddressSanitizer
// (GCC's __SANITIZE_ADDRESS__, clang's __has_feature): tests that cannot run under it
// (valgrind) skip, and slow ones sample.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define P11VAULT_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define P11VAULT_TEST_SANITIZED 1
#endif
#endif
