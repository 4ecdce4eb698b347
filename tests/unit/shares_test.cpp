// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "p11vault/error.hpp"
#include "src/shares.hpp"

namespace p11vault {
namespace {

std::string secret_text(const SecretBytes& s) { return std::string(s.reveal_text()); }

std::vector<shares::Share> pick(const std::vector<shares::Share>& all, std::initializer_list<int> numbers) {
    std::vector<shares::Share> out;
    for (int n : numbers) {
        // Through the printed form, as in a ceremony (and Share holds a move-only secret).
        const SecretBytes printed = shares::format_share(all[static_cast<std::size_t>(n - 1)]);
        out.push_back(shares::parse_share(printed.reveal_text(), "share"));
    }
    return out;
}

TEST(Shares, AnyKOfNRecoverTheSecret) {
    auto secret = SecretBytes::from_text("the backup password");
    auto all = shares::split(secret, 3, 5);
    ASSERT_EQ(all.size(), 5u);
    EXPECT_EQ(secret_text(shares::combine(pick(all, {1, 2, 3}))), "the backup password");
    EXPECT_EQ(secret_text(shares::combine(pick(all, {5, 2, 4}))), "the backup password");
    EXPECT_EQ(secret_text(shares::combine(pick(all, {1, 2, 3, 4, 5}))), "the backup password");
}

TEST(Shares, FewerThanKFailLoudly) {
    auto all = shares::split(SecretBytes::from_text("pw"), 3, 5);
    try {
        shares::combine(pick(all, {1, 4}));
        FAIL() << "two of a 3-of-5 set recovered something";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    }
}

TEST(Shares, ForgedThresholdStillDetectedByTheInnerHash) {
    // Someone edits the header of two shares to say threshold 2: the combination is
    // wrong, and the hash inside the split secret must say so.
    auto all = shares::split(SecretBytes::from_text("pw"), 3, 5);
    auto two = pick(all, {1, 2});
    for (auto& s : two) s.threshold = 2;
    EXPECT_THROW(shares::combine(two), Error);
}

TEST(Shares, MixedSetsAreRefused) {
    auto a = shares::split(SecretBytes::from_text("pw"), 2, 3);
    auto b = shares::split(SecretBytes::from_text("pw"), 2, 3);
    std::vector<shares::Share> mixed = pick(a, {1});
    mixed.push_back(shares::parse_share(shares::format_share(b[1]).reveal_text(), "b2"));
    try {
        shares::combine(mixed);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("different sets"), std::string::npos);
    }
}

TEST(Shares, TypingMistakeIsFoundAtItsLine) {
    auto all = shares::split(SecretBytes::from_text("pw"), 2, 2);
    std::string printed(shares::format_share(all[0]).reveal_text());
    auto at = printed.find("\n03 ");
    ASSERT_NE(at, std::string::npos);
    printed[at + 4] = printed[at + 4] == 'A' ? 'B' : 'A';
    try {
        shares::parse_share(printed, "share-1");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("line 3"), std::string::npos) << e.what();
    }
}

TEST(Shares, ShareTextHoldsNoHashOfThePassword) {
    // Only the split value and per-line checksums of share data: nothing derived from the
    // password alone that would let a holder test guesses.
    auto secret = SecretBytes::from_text("guessable");
    auto all = shares::split(secret, 2, 3);
    std::string printed(shares::format_share(all[0]).reveal_text());
    EXPECT_EQ(printed.find("guessable"), std::string::npos);
    EXPECT_EQ(printed.find("hash"), std::string::npos);
    EXPECT_EQ(printed.find("digest"), std::string::npos);
}

TEST(Shares, GeneratedPasswordsHaveAtLeast128Bits) {
    auto a = shares::generate_password();
    auto b = shares::generate_password();
    EXPECT_GE(a.size() * 5, 128u);  // base32: 5 bits a character
    EXPECT_FALSE(a == b);
}

TEST(Shares, BadParametersAreUsageErrors) {
    auto s = SecretBytes::from_text("x");
    EXPECT_THROW(shares::split(s, 1, 3), Error);
    EXPECT_THROW(shares::split(s, 4, 3), Error);
    EXPECT_THROW(shares::split(s, 2, 256), Error);
}

// combine_files reads each file into SecretBytes in chunks: a file longer than one chunk
// (a share with a long comment) and one with CRLF line ends (typed back on Windows) read
// as their text.
TEST(Shares, CombineFilesReadsLongAndCrlfShareFiles) {
    char dir_template[] = "/tmp/p11vault-shares-XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    const std::filesystem::path dir(dir_template);
    auto all = shares::split(SecretBytes::from_text("from files"), 2, 3);
    const SecretBytes first = shares::format_share(all[0]);
    const SecretBytes second = shares::format_share(all[2]);
    std::string long_text(first.reveal_text());
    long_text.insert(long_text.find('\n') + 1, std::string(2000, '#') + "\n" + std::string(9000, '#') + "\n");
    std::string crlf_text;
    for (char c : second.reveal_text()) crlf_text += c == '\n' ? std::string("\r\n") : std::string(1, c);
    std::ofstream(dir / "1.share", std::ios::binary) << long_text;
    std::ofstream(dir / "3.share", std::ios::binary) << crlf_text;
    SecretBytes secret = shares::combine_files({(dir / "1.share").string(), (dir / "3.share").string()});
    EXPECT_EQ(secret_text(secret), "from files");
    try {
        shares::combine_files({(dir / "1.share").string(), (dir / "missing.share").string()});
        FAIL() << "a missing share file was read";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::usage);
        EXPECT_EQ(std::string(e.what()), "cannot read share file " + (dir / "missing.share").string());
    }
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace p11vault
