// SPDX-License-Identifier: Apache-2.0
// `p11vault verify --drill` (issue 6, docs/cli.md) on corpus files: one ok line per key
// that restores into the throw-away SoftHSM token and signs, a key type the token cannot
// hold reported as not restored (exit 4), a key OpenSSL cannot parse reported, never a
// crash. --drill --jobs: parallel_sessions_test.cpp.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "tests/integration/verify_helpers.hpp"
#include "tests/support/run.hpp"

namespace p11vault::testing {
namespace {

using nlohmann::json;
using namespace verify_helpers;

// The lines of the drill section of the human output.
std::vector<std::string> drill_lines(const std::string& out) {
    std::vector<std::string> lines;
    std::istringstream in(out);
    std::string line;
    bool in_drill = false;
    while (std::getline(in, line)) {
        if (line.rfind("Drill", 0) == 0) {
            in_drill = true;
            continue;
        }
        if (in_drill && line.empty()) break;
        if (in_drill) lines.push_back(line);
    }
    return lines;
}

TEST(VerifyDrill, GoodFileGivesOneOkLinePerKey) {
    for (const auto& [file, password, keys] :
         {std::tuple<std::string, std::string, std::size_t>{"keytool-two-entries.p12", "password", 2},
          {"windows10-export-3des.p12", "1", 1},
          {"openssl3-ec-p384.p12", "password", 1}}) {
        const RunResult result = verify({"--in", corpus_file(file), "--drill"}, password);
        EXPECT_EQ(result.exit_code, 0) << file << "\n" << result.out << result.err;
        const auto lines = drill_lines(result.out);
        EXPECT_EQ(lines.size(), keys) << file << "\n" << result.out;
        for (const auto& line : lines) EXPECT_TRUE(std::regex_search(line, std::regex("^\\s*ok\\b"))) << line;

        const RunResult as_json = verify({"--in", corpus_file(file), "--drill", "--json"}, password);
        ASSERT_EQ(as_json.exit_code, 0) << as_json.err;
        const json drill = stdout_json(as_json).at("drill");
        ASSERT_EQ(drill.size(), keys) << drill.dump(2);
        for (const auto& entry : drill) EXPECT_TRUE(entry.at("ok").get<bool>()) << entry.dump();
    }
}

TEST(VerifyDrill, UnsupportedKeyIsReportedAsNotRestoredAndFails) {
    const RunResult result = verify({"--in", corpus_file("openssl3-x25519.p12"), "--drill"}, "secret123");
    EXPECT_NE(result.exit_code, 0) << result.out;
    expect_one_error_line(result);
    const auto lines = drill_lines(result.out);
    ASSERT_EQ(lines.size(), 1u) << result.out;
    EXPECT_FALSE(std::regex_search(lines[0], std::regex("^\\s*ok\\b"))) << lines[0];
    EXPECT_NE(lines[0].find("not restored"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("X25519"), std::string::npos) << lines[0];

    const RunResult as_json = verify({"--in", corpus_file("openssl3-x25519.p12"), "--drill", "--json"}, "secret123");
    EXPECT_NE(as_json.exit_code, 0);
    EXPECT_LT(as_json.exit_code, 128);
    const json drill = stdout_json(as_json).at("drill");
    ASSERT_EQ(drill.size(), 1u);
    EXPECT_FALSE(drill.at(0).at("ok").get<bool>());
}

TEST(VerifyDrill, FileWhoseKeyOpensslCannotParseDoesNotCrash) {
    // ML-DSA-65 (OpenSSL 3.0 has no decoder): the drill must report the key as not
    // restored, never crash.
    const RunResult result = verify({"--in", corpus_file("openssl35-ml-dsa-65.p12"), "--drill", "--json"}, "secret123");
    EXPECT_LT(result.exit_code, 128) << "crashed: " << result.err;
    EXPECT_NE(result.exit_code, 0);
    expect_one_error_line(result);
    const json document = json::parse(result.out, nullptr, false);
    ASSERT_FALSE(document.is_discarded()) << result.out;
    ASSERT_EQ(document.at("drill").size(), 1u);
    EXPECT_FALSE(document.at("drill").at(0).at("ok").get<bool>());
}

}  // namespace
}  // namespace p11vault::testing
