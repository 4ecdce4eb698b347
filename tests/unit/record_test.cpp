// SPDX-License-Identifier: Apache-2.0
// The --record file in-process: the chain, torn lines (an interrupted write), what
// record-check reports, what opening refuses, and appends from several processes at once.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "p11vault/digest.hpp"
#include "p11vault/error.hpp"
#include "p11vault/record.hpp"
#include "p11vault/version.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault {
namespace {

std::string read_all(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string line_sha256(const std::string& line) {
    return sha256_hex({reinterpret_cast<const std::uint8_t*>(line.data()), line.size()});
}

RunRecord sample_record(int number) {
    RunRecord record;
    record.command = "backup";
    record.succeeded = true;
    RecordedKey key;
    key.id = hex(std::vector<std::uint8_t>{static_cast<std::uint8_t>(number)});
    key.label = "k" + std::to_string(number);
    record.keys.push_back(key);
    return record;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

void append_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::app) << bytes;
}

// What a write cut short by a full disk or a kill leaves: the start of a record, no newline.
constexpr const char* kTornRecord = R"({"format":"p11vault.record/1","time":"2024-05-01T1)";

TEST(Records, ATornLastLineIsReportedAndLeftOutOfTheChain) {
    const std::string dir = testing::make_temp_dir("record");
    const std::string path = dir + "/log.jsonl";
    append_record(path, sample_record(1));
    append_record(path, sample_record(2));
    append_bytes(path, kTornRecord);
    const RecordCheck check = check_records(path);
    EXPECT_EQ(check.records, 2u);
    ASSERT_EQ(check.problems.size(), 1u);
    EXPECT_EQ(check.problems[0],
              "line 3: torn record (the file ends without a newline: a write was interrupted); not part of the chain");
    std::filesystem::remove_all(dir);
}

TEST(Records, AfterATornLineTheNextRecordStartsOnItsOwnLineAndChainsToTheLastCompleteOne) {
    const std::string dir = testing::make_temp_dir("record");
    const std::string path = dir + "/log.jsonl";
    append_record(path, sample_record(1));
    append_bytes(path, kTornRecord);
    const std::vector<std::string> warnings = append_record(path, sample_record(2));
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find("did not end with a newline"), std::string::npos) << warnings[0];

    const std::vector<std::string> lines = lines_of(read_all(path));
    ASSERT_EQ(lines.size(), 3u);
    EXPECT_EQ(lines[1], kTornRecord);
    const auto record = nlohmann::json::parse(lines[2]);
    EXPECT_EQ(record["previous_sha256"], line_sha256(lines[0])) << "the torn line is not part of the chain";

    append_record(path, sample_record(3));
    const RecordCheck check = check_records(path);
    EXPECT_EQ(check.records, 3u);
    ASSERT_EQ(check.problems.size(), 1u) << "only the torn line, the chain over the records is intact";
    EXPECT_EQ(check.problems[0], "line 2: torn or damaged record (not valid JSON); not part of the chain");
    std::filesystem::remove_all(dir);
}

TEST(Records, ACompleteLastRecordWithoutItsNewlineIsKeptInTheChain) {
    const std::string dir = testing::make_temp_dir("record");
    const std::string path = dir + "/log.jsonl";
    append_record(path, sample_record(1));
    append_record(path, sample_record(2));
    std::string text = read_all(path);
    text.pop_back();  // the write stopped just before the newline
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    RecordCheck check = check_records(path);
    EXPECT_EQ(check.records, 2u);
    ASSERT_EQ(check.problems.size(), 1u);
    EXPECT_EQ(check.problems[0], "line 2: no newline after the last record (a write was interrupted); the record is "
                                 "complete and part of the chain");

    EXPECT_EQ(append_record(path, sample_record(3)).size(), 1u);
    check = check_records(path);
    EXPECT_EQ(check.records, 3u);
    EXPECT_TRUE(check.problems.empty()) << check.problems[0];
    std::filesystem::remove_all(dir);
}

TEST(Records, CheckNamesTheLineOfMalformedJsonAndOfForeignObjects) {
    const std::string dir = testing::make_temp_dir("record");
    const std::string path = dir + "/log.jsonl";
    append_record(path, sample_record(1));
    append_bytes(path, "{\"format\":\"something.else/1\"}\n");
    append_bytes(path, "not json at all\n");
    append_bytes(path, "{\"format\":1}\n");
    const RecordCheck check = check_records(path);
    EXPECT_EQ(check.records, 1u);
    ASSERT_EQ(check.problems.size(), 3u);
    EXPECT_EQ(check.problems[0], "line 2: not a p11vault record (no \"format\": \"p11vault.record/1\"); not part of "
                                 "the chain");
    EXPECT_EQ(check.problems[1], "line 3: torn or damaged record (not valid JSON); not part of the chain");
    EXPECT_EQ(check.problems[2], "line 4: not a p11vault record (no \"format\": \"p11vault.record/1\"); not part of "
                                 "the chain");
    std::filesystem::remove_all(dir);
}

TEST(Records, CheckOfADirectoryOrAMissingFileIsBadInput) {
    const std::string dir = testing::make_temp_dir("record");
    for (const std::string& path : {dir, dir + "/missing.jsonl"}) {
        try {
            (void)check_records(path);
            ADD_FAILURE() << "check_records(" << path << ") did not throw";
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::bad_input) << e.what();
            EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
        }
    }
    std::filesystem::remove_all(dir);
}

TEST(Records, OpeningRefusesAPathThatCannotTakeRecordsAndCreatesAPrivateFile) {
    const std::string dir = testing::make_temp_dir("record");
    const std::string foreign = dir + "/backup.p12";
    append_bytes(foreign, std::string("\x30\x82\x01\x00", 4));
    const std::vector<std::pair<std::string, ErrorKind>> cases = {
        {dir, ErrorKind::usage}, {dir + "/no-such-dir/log.jsonl", ErrorKind::usage}, {foreign, ErrorKind::bad_input}};
    for (const auto& [path, code] : cases) {
        try {
            RecordFile file(path);
            ADD_FAILURE() << "RecordFile(" << path << ") did not throw";
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), code) << e.what();
            EXPECT_NE(std::string(e.what()).find("--record " + path), std::string::npos) << e.what();
        }
    }
    EXPECT_EQ(read_all(foreign).size(), 4u) << "the foreign file was written to";

    const std::string path = dir + "/log.jsonl";
    const mode_t umask_before = ::umask(0022);
    { RecordFile file(path); }  // created by the open, before any append
    ::umask(umask_before);
    struct stat status {};
    ASSERT_EQ(::stat(path.c_str(), &status), 0);
    EXPECT_EQ(status.st_mode & 07777, 0600u);
    EXPECT_EQ(status.st_size, 0);
    std::filesystem::remove_all(dir);
}

// Several processes append at once, all released together: every line is a whole record
// and the chain holds, because each append takes an exclusive flock around reading the
// last record and writing the new one.
TEST(Records, ConcurrentAppendsAreSerialised) {
    const std::string dir = testing::make_temp_dir("record");
    const std::string path = dir + "/log.jsonl";
    constexpr int kProcesses = 6;
    constexpr int kRecordsEach = 15;
    int start[2];
    ASSERT_EQ(::pipe(start), 0);
    std::vector<pid_t> children;
    for (int p = 0; p < kProcesses; ++p) {
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            ::close(start[1]);
            char byte;
            // Blocks until the parent closes its end: every child starts together.
            while (::read(start[0], &byte, 1) < 0 && errno == EINTR) {
            }
            int status = 0;
            try {
                for (int i = 0; i < kRecordsEach; ++i) append_record(path, sample_record(p * 100 + i));
            } catch (...) {
                status = 1;
            }
            ::_exit(status);
        }
        children.push_back(pid);
    }
    ::close(start[0]);
    ::close(start[1]);
    for (pid_t pid : children) {
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "an append failed";
    }
    const std::vector<std::string> lines = lines_of(read_all(path));
    EXPECT_EQ(lines.size(), static_cast<std::size_t>(kProcesses * kRecordsEach));
    for (const auto& line : lines) EXPECT_TRUE(nlohmann::json::accept(line)) << line;
    const RecordCheck check = check_records(path);
    EXPECT_EQ(check.records, static_cast<std::size_t>(kProcesses * kRecordsEach));
    EXPECT_TRUE(check.problems.empty()) << check.problems.size() << " problems, the first: " << check.problems[0];
    std::filesystem::remove_all(dir);
}

TEST(Records, ChainDetectsRemovedAndEditedRecords) {
    std::string dir = testing::make_temp_dir("record");
    std::string path = dir + "/log.jsonl";
    for (int i = 0; i < 3; ++i) {
        RunRecord record;
        record.command = "backup";
        record.succeeded = true;
        RecordedKey key;
        key.id = hex(std::vector<std::uint8_t>{static_cast<std::uint8_t>(i)});
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
