// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "p11vault/error.hpp"
#include "src/atomic_file.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault {
namespace {

TEST(AtomicFile, WritesMode0600AndRefusesToOverwrite) {
    std::string dir = testing::make_temp_dir("atomic");
    std::string path = dir + "/out.p12";
    std::vector<std::uint8_t> data = {1, 2, 3};
    write_file_atomically(path, data, Overwrite::refuse);
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(st.st_size, 3);
    try {
        write_file_atomically(path, std::vector<std::uint8_t>{9}, Overwrite::refuse);
        FAIL() << "overwrote without permission";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::refused);
    }
    EXPECT_EQ(std::filesystem::file_size(path), 3u);
    write_file_atomically(path, std::vector<std::uint8_t>{9}, Overwrite::allow);
    EXPECT_EQ(std::filesystem::file_size(path), 1u);
    // No temporary file is left behind.
    std::size_t entries = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) entries += entry.is_regular_file();
    EXPECT_EQ(entries, 1u);
    std::filesystem::remove_all(dir);
}

TEST(AtomicFile, FailureLeavesNothing) {
    EXPECT_THROW(write_file_atomically("/nonexistent-dir/x.p12", std::vector<std::uint8_t>{1}, Overwrite::refuse), Error);
}

}  // namespace
}  // namespace p11vault
