// SPDX-License-Identifier: Apache-2.0
// Replays the inputs of the libFuzzer targets (tests/fuzz/) in the ordinary build, so
// that what fuzzing found stays fixed: every file of tests/fuzz/regressions/<target>/
// (crashes found by scripts/fuzz, once fixed), the checked-in seeds of
// tests/fuzz/seeds/<target>/, and for the PKCS#12 target every file of the shared
// corpus. Each must be handled without an exception other than p11vault::Error (the
// target bodies catch those) and, in the sanitizer build, without a report.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/targets.hpp"

namespace p11vault::testing {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> files_in(const std::string& dir) {
    std::vector<std::string> out;
    if (!fs::is_directory(dir)) return out;
    for (const auto& entry : fs::directory_iterator(dir))
        if (entry.is_regular_file() && entry.path().filename().string()[0] != '.') out.push_back(entry.path().string());
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::uint8_t> read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::size_t replay(const std::vector<std::string>& dirs, const std::function<void(const std::uint8_t*, std::size_t)>& body) {
    fuzz::set_up_environment();
    std::size_t count = 0;
    for (const auto& dir : dirs) {
        for (const auto& path : files_in(dir)) {
            SCOPED_TRACE(path);
            const auto data = read_all(path);
            EXPECT_NO_THROW(body(data.data(), data.size()));
            ++count;
        }
    }
    return count;
}

const std::string kFuzzDir = std::string(P11VAULT_SOURCE_DIR) + "/tests/fuzz";

TEST(FuzzRegressions, Pkcs12InputsAreHandled) {
    const std::size_t count = replay({kFuzzDir + "/regressions/pkcs12", P11VAULT_CORPUS_DIR}, fuzz::pkcs12_one);
    EXPECT_GE(count, 60u) << "the corpus is missing";
}

TEST(FuzzRegressions, UriInputsAreHandled) {
    EXPECT_GE(replay({kFuzzDir + "/regressions/uri", kFuzzDir + "/seeds/uri"}, fuzz::uri_one), 5u);
}

TEST(FuzzRegressions, ShareInputsAreHandled) {
    EXPECT_GE(replay({kFuzzDir + "/regressions/share", kFuzzDir + "/seeds/share"}, fuzz::share_one), 3u);
}

// The MAC-stripping helper of the PKCS#12 target does what it says: the stripped file of
// a file with a MAC is read as one without (so the fuzzer reaches past the MAC).
TEST(FuzzRegressions, Pkcs12TargetStripsTheMac) {
    const auto der = read_all(std::string(P11VAULT_CORPUS_DIR) + "/windows10-export-3des.p12");
    const auto stripped = fuzz::detail::without_mac(der);
    ASSERT_TRUE(stripped.has_value());
    EXPECT_LT(stripped->size(), der.size());
    pkcs12::Reader reader(*stripped, SecretBytes::from_text("1"));
    EXPECT_FALSE(reader.contents().mac.present);
    EXPECT_EQ(reader.contents().keys.size(), 1u);
    EXPECT_FALSE(fuzz::detail::without_mac(*stripped).has_value()) << "nothing left to strip";
}

}  // namespace
}  // namespace p11vault::testing
