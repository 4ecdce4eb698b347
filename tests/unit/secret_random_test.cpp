// SPDX-License-Identifier: Apache-2.0
// Random secrets straight into SecretBytes (src/secret_random.hpp).
#include <gtest/gtest.h>

#include <string>

#include "src/secret_random.hpp"

namespace p11vault {
namespace {

TEST(SecretRandom, SecretsHaveTheirLengthAndDiffer) {
    const SecretBytes a = random_secret(32);
    const SecretBytes b = random_secret(32);
    EXPECT_EQ(a.size(), 32u);
    EXPECT_FALSE(a == b);
    EXPECT_TRUE(random_secret(0).empty());
}

TEST(SecretRandom, HexSecretsAreLowercaseHexOfTwiceTheLength) {
    const SecretBytes a = random_hex_secret(32);
    EXPECT_EQ(a.size(), 64u);
    EXPECT_EQ(a.reveal_text().find_first_not_of("0123456789abcdef"), std::string::npos) << "not lowercase hex";
    EXPECT_FALSE(a == random_hex_secret(32));
    // Every digit appears over enough draws: the arithmetic digit mapping covers 0-9 and a-f.
    std::string seen;
    for (int i = 0; i < 64 && seen.size() < 16; ++i) {
        const SecretBytes draw = random_hex_secret(16);
        for (char c : draw.reveal_text())
            if (seen.find(c) == std::string::npos) seen.push_back(c);
    }
    EXPECT_EQ(seen.size(), 16u) << seen;
}

}  // namespace
}  // namespace p11vault
