// SPDX-License-Identifier: Apache-2.0
// The process's locked pages, counted: mlock and munlock work on whole pages, and two
// secrets (SecretBytes buffers) may share a page, so one munlock when the first is freed
// would unlock the other's bytes too. Every buffer takes a reference on each page it
// touches; a page is locked when its first reference comes and unlocked when its last goes.
#pragma once

#include <cstddef>

namespace p11vault::locked_pages {

// Takes a reference on every page of [data, data + size) and mlocks those that had none.
// Best effort: a page the system refuses to lock (RLIMIT_MEMLOCK without CAP_IPC_LOCK)
// is counted all the same, and not munlocked later. std::bad_alloc when the registry
// cannot grow, with no reference taken.
void lock(const void* data, std::size_t size);
// Drops the references lock() took; munlocks the pages whose last reference this was.
void unlock(const void* data, std::size_t size) noexcept;

// The registry's own accounting, for tests: the references on the page holding
// `address`, and whether that page is mlocked (its first reference locked it).
std::size_t references(const void* address) noexcept;
bool is_locked(const void* address) noexcept;
std::size_t page_size() noexcept;

}  // namespace p11vault::locked_pages
