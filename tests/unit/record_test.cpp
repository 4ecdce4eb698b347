// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

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

}  // namespace
}  // namespace p11vault
