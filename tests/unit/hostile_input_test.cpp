// SPDX-License-Identifier: Apache-2.0
// The reader's limits on hostile input (issue 8): nesting of safeContentsBags, number of
// bags, file size. Each limit is tested at its boundary: the file at the limit is read,
// one step over it is refused with exit 4 and a message that says which limit. The files
// are built here byte by byte (DER), without a MAC, which the reader accepts with a
// warning; so what is tested is the limit, not the password.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "p11vault/error.hpp"
#include "src/pkcs12/reader.hpp"
#include "tests/support/der.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault {
namespace {

using pkcs12::Bytes;

using namespace testing::der;

// A safeContentsBag holding `inner` (a SafeContents).
Bytes safe_contents_bag(const Bytes& inner) { return sequence({kOidSafeContentsBag, explicit0(inner)}); }

// PFX { 3, ContentInfo { data, [0] OCTET STRING AuthenticatedSafe { ContentInfo { data,
// [0] OCTET STRING safe_contents } } } }, without MacData.
Bytes pfx_without_mac(const Bytes& safe_contents) {
    return sequence({integer(3), data_content_info(sequence({data_content_info(safe_contents)}))});
}

// One secret bag inside `levels` safeContentsBags (levels 0: the bag at the top).
Bytes nested_file(int levels) {
    Bytes contents = sequence({secret_bag()});
    for (int i = 0; i < levels; ++i) contents = sequence({safe_contents_bag(contents)});
    return pfx_without_mac(contents);
}

Bytes file_with_bags(std::size_t count) {
    std::vector<Bytes> bags(count, secret_bag());
    return pfx_without_mac(sequence(bags));
}

const SecretBytes& no_password() {
    static const SecretBytes password = SecretBytes::from_text("");
    return password;
}

// The exit code and message of reading `der`, or nullopt when it is read.
std::optional<std::pair<ErrorKind, std::string>> refusal(const Bytes& der, pkcs12::Limits limits = {}) {
    try {
        pkcs12::Reader reader(der, no_password(), limits);
        return std::nullopt;
    } catch (const Error& e) {
        return std::make_pair(e.kind(), std::string(e.what()));
    }
}

TEST(HostileInput, TheBuiltFileIsReadWithAWarningAboutTheMissingMac) {
    pkcs12::Reader reader(nested_file(0), no_password());
    bool warned = false;
    for (const auto& warning : reader.contents().warnings) warned = warned || warning.find("no MAC") != std::string::npos;
    EXPECT_TRUE(warned);
}

TEST(HostileInput, NestingUpToTheLimitIsReadAndDeeperIsExit4) {
    pkcs12::Limits limits;
    EXPECT_EQ(refusal(nested_file(limits.max_nesting), limits), std::nullopt);
    const auto refused = refusal(nested_file(limits.max_nesting + 1), limits);
    ASSERT_TRUE(refused.has_value());
    EXPECT_EQ(refused->first, ErrorKind::bad_input);
    EXPECT_NE(refused->second.find("nested too deeply"), std::string::npos) << refused->second;
}

TEST(HostileInput, FarDeeperNestingIsExit4NotACrash) {
    // Deeper than OpenSSL's own decoder allows (30): refused either way, never a stack overflow.
    const auto refused = refusal(nested_file(200));
    ASSERT_TRUE(refused.has_value());
    EXPECT_EQ(refused->first, ErrorKind::bad_input) << refused->second;
}

TEST(HostileInput, BagsUpToTheLimitAreReadAndOneMoreIsExit4) {
    pkcs12::Limits limits;
    limits.max_bags = 50;
    EXPECT_EQ(refusal(file_with_bags(50), limits), std::nullopt);
    const auto refused = refusal(file_with_bags(51), limits);
    ASSERT_TRUE(refused.has_value());
    EXPECT_EQ(refused->first, ErrorKind::bad_input);
    EXPECT_NE(refused->second.find("more than 50 bags"), std::string::npos) << refused->second;
}

TEST(HostileInput, BagsInNestedSafesCountTowardsTheLimit) {
    pkcs12::Limits limits;
    limits.max_bags = 3;
    // Three bags: two safeContentsBags and the secret bag at the bottom.
    EXPECT_EQ(refusal(nested_file(2), limits), std::nullopt);
    const auto refused = refusal(nested_file(3), limits);
    ASSERT_TRUE(refused.has_value());
    EXPECT_EQ(refused->first, ErrorKind::bad_input);
}

TEST(HostileInput, FileOverTheSizeLimitIsExit4InProcess) {
    pkcs12::Limits limits;
    const Bytes der = file_with_bags(10);
    limits.max_file_size = der.size();
    EXPECT_EQ(refusal(der, limits), std::nullopt);
    limits.max_file_size = der.size() - 1;
    const auto refused = refusal(der, limits);
    ASSERT_TRUE(refused.has_value());
    EXPECT_EQ(refused->first, ErrorKind::bad_input);
    EXPECT_NE(refused->second.find("--max-file-size"), std::string::npos) << refused->second;
}

// Through the binary: a 65 MiB file (sparse, so the test writes nothing) is refused by
// the default limit with one error line and exit 4, before the password is even asked
// for; --max-file-size raises the limit (and the file is then refused as garbage).
TEST(HostileInput, TheBinaryRefusesAFileOverSixtyFourMebibytes) {
    const std::string dir = testing::make_temp_dir("hostile");
    const std::string path = dir + "/huge.p12";
    {
        std::ofstream out(path, std::ios::binary);
    }
    std::filesystem::resize_file(path, (65u << 20));
    testing::RunOptions options;
    options.env["P11VAULT_HOSTILE_PW"] = "x";
    const auto result = testing::run_p11vault({"verify", "--in", path, "--password", "env:P11VAULT_HOSTILE_PW"}, options);
    EXPECT_EQ(result.exit_code, 4) << result.err;
    ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
    EXPECT_EQ(result.err_lines()[0].rfind("p11vault: error: ", 0), 0u);
    EXPECT_NE(result.err.find("--max-file-size"), std::string::npos) << result.err;

    const auto raised = testing::run_p11vault(
        {"verify", "--in", path, "--password", "env:P11VAULT_HOSTILE_PW", "--max-file-size", std::to_string(66u << 20)},
        options);
    EXPECT_EQ(raised.exit_code, 4) << raised.err;
    EXPECT_EQ(raised.err.find("--max-file-size"), std::string::npos) << raised.err;
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace p11vault
