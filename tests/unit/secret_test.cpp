// SPDX-License-Identifier: Apache-2.0
// SecretBytes: explicit copies, moves that empty the source, growth, wiping.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "p11vault/secret.hpp"
#include "pkcs11/locked_pages.hpp"

namespace p11vault {
namespace {

TEST(SecretBytes, HoldsAndComparesBytes) {
    SecretBytes pin = SecretBytes::from_text("1234");
    EXPECT_EQ(pin.size(), 4u);
    EXPECT_EQ(pin.reveal_text(), "1234");
    EXPECT_TRUE(pin == SecretBytes::from_text("1234"));
    EXPECT_FALSE(pin == SecretBytes::from_text("1235"));
    EXPECT_FALSE(pin == SecretBytes::from_text("12345"));
    EXPECT_TRUE(SecretBytes() == SecretBytes());
    EXPECT_TRUE(SecretBytes().empty());
}

TEST(SecretBytes, CloneIsIndependent) {
    SecretBytes original = SecretBytes::from_text("abc");
    SecretBytes copy = original.clone();
    copy.data()[0] = 'x';
    EXPECT_EQ(original.reveal_text(), "abc");
    EXPECT_EQ(copy.reveal_text(), "xbc");
}

TEST(SecretBytes, MoveEmptiesTheSource) {
    SecretBytes source = SecretBytes::from_text("secret");
    const std::uint8_t* buffer = source.data();
    SecretBytes target(std::move(source));
    EXPECT_TRUE(source.empty());  // NOLINT(bugprone-use-after-move): the contract under test
    EXPECT_EQ(source.data(), nullptr);
    EXPECT_EQ(target.data(), buffer);
    SecretBytes assigned;
    assigned = std::move(target);
    EXPECT_TRUE(target.empty());  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(assigned.reveal_text(), "secret");
}

TEST(SecretBytes, GrowsAndShrinks) {
    SecretBytes s(3);
    EXPECT_EQ(s.size(), 3u);
    for (std::size_t i = 0; i < s.size(); ++i) EXPECT_EQ(s.data()[i], 0);
    std::string expected(3, '\0');
    for (int i = 0; i < 200; ++i) {
        s.push_back(static_cast<std::uint8_t>('a' + i % 26));
        expected.push_back(static_cast<char>('a' + i % 26));
    }
    s.append("tail", 4);
    expected += "tail";
    EXPECT_EQ(s.reveal_text(), expected);
    s.resize(5);
    EXPECT_EQ(s.reveal_text(), expected.substr(0, 5));
    s.resize(8);
    EXPECT_EQ(s.reveal_text(), expected.substr(0, 5) + std::string(3, '\0'));
    s.clear();
    EXPECT_TRUE(s.empty());
    EXPECT_EQ(s.data(), nullptr);
}

TEST(SecretBytes, SecureWipeZeroes) {
    char buffer[16];
    std::memset(buffer, 'k', sizeof buffer);
    secure_wipe(buffer, sizeof buffer);
    for (char c : buffer) EXPECT_EQ(c, 0);
    secure_wipe(nullptr, 0);  // harmless
}

// The kernel's count of this process's locked memory (VmLck in /proc/self/status), kB.
long locked_kb() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmLck:", 0) == 0) return std::stol(line.substr(6));
    ADD_FAILURE() << "no VmLck line in /proc/self/status";
    return -1;
}

// AddressSanitizer intercepts mlock and munlock and makes them do nothing: the registry
// counts, the kernel shows no locked memory (VmLck stays 0), so only the registry's
// accounting can be checked there.
constexpr const char* kMlockIgnored = "mlock succeeds but locks nothing here (a sanitizer intercepts it)";

std::uintptr_t page_of(const void* p) {
    return reinterpret_cast<std::uintptr_t>(p) / locked_pages::page_size();
}

// Two small secrets on one page: freeing the first must leave the page locked for the
// second (mlock does not count: one munlock unlocks the page whoever locked it).
TEST(SecretBytes, FreeingOneSecretKeepsAPageSharedWithAnotherLocked) {
    // Small buffers come from one heap page often but not always: keep allocating until
    // two neighbours share a page that no earlier secret of this process holds.
    std::vector<std::unique_ptr<SecretBytes>> held;
    SecretBytes* first = nullptr;
    SecretBytes* second = nullptr;
    for (int i = 0; i < 1000 && second == nullptr; ++i) {
        held.push_back(std::make_unique<SecretBytes>(SecretBytes::from_text("secret")));
        SecretBytes* fresh = held.back().get();
        if (held.size() < 2) continue;
        SecretBytes* previous = held[held.size() - 2].get();
        if (page_of(previous->data()) == page_of(fresh->data()) &&
            page_of(fresh->data()) == page_of(fresh->data() + 31) &&
            page_of(previous->data()) == page_of(previous->data() + 31) &&
            locked_pages::references(fresh->data()) == 2) {
            first = previous;
            second = fresh;
        }
    }
    ASSERT_NE(second, nullptr) << "no two secrets on one page";
    if (!locked_pages::is_locked(second->data())) GTEST_SKIP() << "mlock is refused here (RLIMIT_MEMLOCK)";
    const std::uint8_t* page = second->data();
    const long before = locked_kb();
    const bool kernel_counts = before != 0;  // see kMlockIgnored

    first->clear();
    EXPECT_EQ(locked_pages::references(page), 1u);
    EXPECT_TRUE(locked_pages::is_locked(page));
    if (kernel_counts) {
        EXPECT_EQ(locked_kb(), before) << "freeing one secret unlocked a page another one still uses";
    }

    second->clear();
    EXPECT_EQ(locked_pages::references(page), 0u);
    EXPECT_FALSE(locked_pages::is_locked(page));
    if (kernel_counts) {
        EXPECT_EQ(locked_kb(), before - static_cast<long>(locked_pages::page_size() / 1024));
    }
    if (!kernel_counts) GTEST_SKIP() << kMlockIgnored << ": only the registry's accounting was checked";
}

// A secret across several pages locks each once and unlocks each when the last user goes.
TEST(SecretBytes, LargeSecretLocksAndUnlocksEveryPage) {
    const std::size_t page = locked_pages::page_size();
    const long before = locked_kb();
    auto big = std::make_unique<SecretBytes>(8 * page);
    if (!locked_pages::is_locked(big->data())) GTEST_SKIP() << "mlock is refused here (RLIMIT_MEMLOCK)";
    const bool kernel_counts = locked_kb() != 0;  // see kMlockIgnored
    for (std::size_t offset = 0; offset < big->size(); offset += page) {
        EXPECT_EQ(locked_pages::references(big->data() + offset), 1u) << offset;
        EXPECT_TRUE(locked_pages::is_locked(big->data() + offset)) << offset;
    }
    // Its first and last pages may be shared with secrets already locked.
    if (kernel_counts) {
        EXPECT_GE(locked_kb(), before + static_cast<long>(6 * page / 1024));
    }
    const std::uint8_t* start = big->data();
    big.reset();
    EXPECT_EQ(locked_pages::references(start), 0u);
    if (kernel_counts) {
        EXPECT_EQ(locked_kb(), before);
    }
    if (!kernel_counts) GTEST_SKIP() << kMlockIgnored << ": only the registry's accounting was checked";
}

}  // namespace
}  // namespace p11vault
