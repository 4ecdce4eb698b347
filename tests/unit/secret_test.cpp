// SPDX-License-Identifier: Apache-2.0
// SecretBytes: explicit copies, moves that empty the source, growth, wiping.
#include <gtest/gtest.h>

#include <cstring>

#include "p11vault/secret.hpp"

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

}  // namespace
}  // namespace p11vault
