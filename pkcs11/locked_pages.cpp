// SPDX-License-Identifier: Apache-2.0
#include "pkcs11/locked_pages.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace p11vault::locked_pages {

namespace {

struct Page {
    std::size_t references = 0;
    bool locked = false;  // mlock succeeded for it
};

struct Registry {
    std::mutex mutex;
    std::unordered_map<std::uintptr_t, Page> pages;  // by page start address
};

// Never destroyed: secrets in static storage are freed after other statics are gone.
Registry& registry() {
    static Registry* const instance = new Registry;
    return *instance;
}

std::uintptr_t page_start(std::uintptr_t address) { return address - address % page_size(); }

// Every page [data, data + size) touches, in address order. lock and unlock gather
// consecutive pages into one mlock/munlock call: a large buffer costs a few system calls,
// not one per page.
template <typename Each>
void for_each_page(const void* data, std::size_t size, Each each) {
    const auto first = page_start(reinterpret_cast<std::uintptr_t>(data));
    const auto last = page_start(reinterpret_cast<std::uintptr_t>(data) + size - 1);
    for (std::uintptr_t page = first;; page += page_size()) {
        each(page);
        if (page == last) break;
    }
}

}  // namespace

std::size_t page_size() noexcept {
    static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    return size;
}

void lock(const void* data, std::size_t size) {
    if (data == nullptr || size == 0) return;
    Registry& r = registry();
    std::lock_guard<std::mutex> guard(r.mutex);
    // Entries first, so that running out of memory leaves no page half counted.
    try {
        for_each_page(data, size, [&](std::uintptr_t page) { r.pages.try_emplace(page); });
    } catch (...) {
        for_each_page(data, size, [&](std::uintptr_t page) {
            auto it = r.pages.find(page);
            if (it != r.pages.end() && it->second.references == 0) r.pages.erase(it);
        });
        throw;
    }
    std::uintptr_t run_start = 0;
    std::size_t run_pages = 0;
    auto flush = [&] {
        if (run_pages == 0) return;
        // Best effort: keeps the secret out of swap. Fails without CAP_IPC_LOCK beyond
        // RLIMIT_MEMLOCK; the bytes are still wiped on release, which is the hard promise.
        const bool locked = mlock(reinterpret_cast<void*>(run_start), run_pages * page_size()) == 0;
        for (std::size_t i = 0; i < run_pages; ++i) r.pages.find(run_start + i * page_size())->second.locked = locked;
        run_pages = 0;
    };
    for_each_page(data, size, [&](std::uintptr_t page) {
        if (r.pages.find(page)->second.references++ != 0) {
            flush();
            return;
        }
        if (run_pages == 0) run_start = page;
        ++run_pages;
    });
    flush();
}

void unlock(const void* data, std::size_t size) noexcept {
    if (data == nullptr || size == 0) return;
    Registry& r = registry();
    std::lock_guard<std::mutex> guard(r.mutex);
    std::uintptr_t run_start = 0;
    std::size_t run_pages = 0;
    auto flush = [&] {
        if (run_pages != 0) (void)munlock(reinterpret_cast<void*>(run_start), run_pages * page_size());
        run_pages = 0;
    };
    for_each_page(data, size, [&](std::uintptr_t page) {
        auto it = r.pages.find(page);
        if (it == r.pages.end() || --it->second.references != 0) {
            flush();
            return;
        }
        const bool locked = it->second.locked;
        r.pages.erase(it);
        if (!locked) {
            flush();
            return;
        }
        if (run_pages == 0) run_start = page;
        ++run_pages;
    });
    flush();
}

std::size_t references(const void* address) noexcept {
    Registry& r = registry();
    std::lock_guard<std::mutex> guard(r.mutex);
    auto it = r.pages.find(page_start(reinterpret_cast<std::uintptr_t>(address)));
    return it == r.pages.end() ? 0 : it->second.references;
}

bool is_locked(const void* address) noexcept {
    Registry& r = registry();
    std::lock_guard<std::mutex> guard(r.mutex);
    auto it = r.pages.find(page_start(reinterpret_cast<std::uintptr_t>(address)));
    return it != r.pages.end() && it->second.locked;
}

}  // namespace p11vault::locked_pages
