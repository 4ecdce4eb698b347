// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "p11vault/version.hpp"
#include "src/record.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault {
namespace {

std::string read_all(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

TEST(Records, ChainDetectsRemovedAndEditedRecords) {
    std::string dir = testing::make_temp_dir("record");
    std::string path = dir + "/log.jsonl";
    for (int i = 0; i < 3; ++i) {
        RunRecord record;
        record.command = "backup";
        record.succeeded = true;
        KeyReport key;
        key.id = {static_cast<std::uint8_t>(i)};
        key.label = "k" + std::to_string(i);
        record.keys.push_back(key);
        append_record(path, record);
    }
    EXPECT_EQ(check_records(path).records, 3u);
    EXPECT_TRUE(check_records(path).problems.empty());

    std::string text = read_all(path);
    std::string edited = text;
    edited.replace(edited.find("\"k1\""), 4, "\"kX\"");
    std::ofstream(path, std::ios::trunc) << edited;
    EXPECT_EQ(check_records(path).problems.size(), 1u) << "editing record 2 must break the link of record 3";

    std::string removed = text.substr(text.find('\n') + 1);
    std::ofstream(path, std::ios::trunc) << removed;
    EXPECT_FALSE(check_records(path).problems.empty()) << "removing the first record must be detected";
    std::filesystem::remove_all(dir);
}

TEST(Records, NameTheToolWithItsCommitAndLibraries) {
    const std::string dir = testing::make_temp_dir("record");
    const std::string path = dir + "/log.jsonl";
    RunRecord record;
    record.command = "verify";
    record.succeeded = true;
    append_record(path, record);
    const auto json = nlohmann::json::parse(read_all(path));
    EXPECT_EQ(json["tool"], version_text());
    const VersionInfo& version = version_info();
    EXPECT_FALSE(version.commit.empty());
    EXPECT_EQ(version.openssl.rfind("OpenSSL 3.", 0), 0u) << version.openssl;
    EXPECT_FALSE(version.p11kit.empty());
    for (const std::string* part : {&version.version, &version.commit, &version.openssl, &version.p11kit})
        EXPECT_NE(json["tool"].get<std::string>().find(*part), std::string::npos) << *part;
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace p11vault
