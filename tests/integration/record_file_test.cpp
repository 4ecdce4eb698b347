// SPDX-License-Identifier: Apache-2.0
// The --record file as an operator meets it (issue 19, item 8): a record path that cannot
// take the record stops the run before the token is touched; a torn last line (full
// disk, kill) is reported by record-check and the next run starts on a line of its own;
// a record that fails after the work is done says the work was done; runs appending at
// the same time leave whole, chained records; record-check never calls a directory or
// malformed JSON "chain intact".
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/cli_helpers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_keys.hpp"
#include "tests/support/test_token.hpp"

namespace p11vault::testing {
namespace {

using nlohmann::json;

// What a write cut short by a full disk or a kill leaves: the start of a record, no newline.
constexpr const char* kTornRecord = R"({"format":"p11vault.record/1","time":"2024-05-01T1)";

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// A backup (source.p12) of one EC key made on a source token, and a target token holding
// an unrelated key, so that "unchanged" is not just "empty".
class RecordFileTest : public ::testing::Test {
protected:
    RecordFileTest() : source_(Backend::softhsm), target_(Backend::softhsm) {
        {
            auto session = source_.open_session();
            generate_ec(*session, "P-256", {0x01}, "recorded key");
        }
        const RunResult made = backup(source_, p12_, {"--id", "01"});
        if (made.exit_code != 0) throw std::runtime_error("backup failed: " + made.err);
        auto session = target_.open_session();
        generate_ec(*session, "P-256", {0xbb}, "bystander");
    }

    std::string path(const std::string& name) const { return target_.dir() + "/" + name; }

    TestToken source_;
    TestToken target_;
    const std::string p12_ = source_.dir() + "/source.p12";
};

TEST_F(RecordFileTest, ARecordPathThatCannotTakeTheRecordStopsTheRunBeforeTheToken) {
    const auto before = target_.objects();
    std::filesystem::create_directory(path("a-directory"));
    for (const std::string& record : {path("a-directory"), path("no-such-dir/log.jsonl")}) {
        const RunResult result = restore(target_, p12_, {"--record", record});
        EXPECT_EQ(result.exit_code, 2) << result.err;
        ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
        EXPECT_NE(result.err.find("p11vault: error: --record " + record + ": cannot open"), std::string::npos)
            << result.err;
        EXPECT_EQ(target_.objects(), before) << "the restore ran although its record could not be written";
    }

    // A file that is not a record file (here the backup itself) is refused and left alone.
    const std::string p12_bytes = read_text(p12_);
    const RunResult result = restore(target_, p12_, {"--record", p12_});
    EXPECT_EQ(result.exit_code, 4) << result.err;
    EXPECT_NE(result.err.find("is not a p11vault record file"), std::string::npos) << result.err;
    EXPECT_EQ(target_.objects(), before);
    EXPECT_EQ(read_text(p12_), p12_bytes);

    // backup: no file written.
    const std::string out = path("never.p12");
    const RunResult refused = backup(source_, out, {"--id", "01", "--record", path("no-such-dir/log.jsonl")});
    EXPECT_EQ(refused.exit_code, 2) << refused.err;
    EXPECT_FALSE(file_exists(out));
}

TEST_F(RecordFileTest, ATornLastLineIsReportedAndTheNextRunStartsOnItsOwnLine) {
    const std::string log = path("ceremony.jsonl");
    ASSERT_EQ(restore(target_, p12_, {"--dry-run", "--record", log}).exit_code, 0);
    write_text(log, read_text(log) + kTornRecord);

    RunResult check = run_p11vault({"record-check", log});
    EXPECT_EQ(check.exit_code, 4) << check.out << check.err;
    EXPECT_EQ(check.out, "line 2: torn record (the file ends without a newline: a write was interrupted); not part "
                         "of the chain\n");
    EXPECT_EQ(check.err, "p11vault: error: " + log + ": 1 record, 1 problem (listed above); the file is not intact\n");

    const RunResult run = restore(target_, p12_, {"--record", log});
    EXPECT_EQ(run.exit_code, 0) << run.err;
    EXPECT_NE(run.err.find("p11vault: warning: --record " + log + " did not end with a newline"), std::string::npos)
        << run.err;
    const std::vector<std::string> lines = lines_of(read_text(log));
    ASSERT_EQ(lines.size(), 3u) << read_text(log);
    EXPECT_EQ(lines[1], kTornRecord);
    const json record = json::parse(lines[2]);  // a whole record, on its own line
    EXPECT_EQ(record.at("command"), "restore");
    EXPECT_EQ(record.at("result"), "ok");
    EXPECT_EQ(record.at("previous_sha256"), sha256_hex(lines[0])) << "chained past the torn line";

    check = run_p11vault({"record-check", log});
    EXPECT_EQ(check.exit_code, 4) << check.out << check.err;
    EXPECT_EQ(check.out, "line 2: torn or damaged record (not valid JSON); not part of the chain\n");
    EXPECT_EQ(check.out.find("chain intact"), std::string::npos);

    // Without the torn line, the two records chain.
    write_text(log, lines[0] + "\n" + lines[2] + "\n");
    check = run_p11vault({"record-check", log});
    EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
    EXPECT_EQ(check.out, log + ": 2 records, chain intact\n");
}

TEST_F(RecordFileTest, RecordCheckOfADirectoryAMissingFileOrMalformedJsonIsExit4) {
    for (const std::string& bad : {target_.dir(), path("missing.jsonl")}) {
        const RunResult check = run_p11vault({"record-check", bad});
        EXPECT_EQ(check.exit_code, 4) << check.out << check.err;
        EXPECT_EQ(check.out, "");
        EXPECT_NE(check.err.find("p11vault: error: " + bad + ": "), std::string::npos) << check.err;
    }
    const std::string log = path("malformed.jsonl");
    ASSERT_EQ(restore(target_, p12_, {"--dry-run", "--record", log}).exit_code, 0);
    write_text(log, read_text(log) + "{\"format\": \"p11vault.record/1\", oops}\n");
    const RunResult check = run_p11vault({"record-check", log});
    EXPECT_EQ(check.exit_code, 4) << check.out << check.err;
    EXPECT_EQ(check.out, "line 2: torn or damaged record (not valid JSON); not part of the chain\n");
}

// A record that cannot be written after the restore is done (the file may grow no more:
// RLIMIT_FSIZE, as on a full disk) says that the restore completed; a failed run keeps
// its own error and exit code, with a warning about the record.
TEST_F(RecordFileTest, ARecordFailingAfterACompletedRestoreSaysTheRestoreCompleted) {
    const std::string log = path("full.jsonl");
    nlohmann::ordered_json big = {{"format", "p11vault.record/1"}, {"command", "verify"}, {"result", "ok"},
                {"details", {{"padding", std::string(200000, 'x')}}}, {"previous_sha256", nullptr}};
    write_text(log, big.dump() + "\n");
    const auto limited = [&](const std::string& password) {
        std::vector<std::string> argv = {"sh", "-c", "trap '' XFSZ; ulimit -f 64 && exec \"$@\"", "sh",
                                         P11VAULT_BINARY, "restore"};
        for (const auto& arg : target_.cli_token_args()) argv.push_back(arg);
        argv.insert(argv.end(), {"--pin", "file:" + target_.write_pin_file(), "--password",
                                 std::string("env:") + kPasswordVariable, "--in", p12_, "--record", log});
        return run_tool(target_, argv, password);
    };

    const auto before = target_.objects();
    RunResult result = limited("wrong password");
    EXPECT_EQ(result.exit_code, 3) << result.err;
    ASSERT_EQ(result.err_lines().size(), 2u) << result.err;
    EXPECT_EQ(result.err_lines()[0].rfind("p11vault: warning: the record of this failed run could not be appended "
                                          "to " + log + ": cannot write",
                                          0),
              0u)
        << result.err;
    EXPECT_EQ(target_.objects(), before);

    result = limited(kTestPassword);
    EXPECT_EQ(result.exit_code, 1) << result.err;
    ASSERT_EQ(result.err_lines().size(), 1u) << result.err;
    EXPECT_EQ(result.err_lines()[0].rfind("p11vault: error: the restore completed; only its record could not be "
                                          "appended to " + log + ": cannot write " + log + ": File too large",
                                          0),
              0u)
        << result.err;
    EXPECT_EQ(target_.object_count(), before.size() + 2) << "the key pair is on the token";
}

// Runs started together append whole records, one per line, and the chain holds.
TEST_F(RecordFileTest, ConcurrentRunsAppendWholeChainedRecords) {
    const std::string log = path("concurrent.jsonl");
    constexpr int kRuns = 16;
    const std::string script = "for i in $(seq " + std::to_string(kRuns) + "); do \"$0\" verify --in '" + p12_ +
                               "' --password env:" + kPasswordVariable + " --record '" + log +
                               "' >/dev/null 2>&1 & done; wait";
    const RunResult runs = run_tool({"sh", "-c", script, P11VAULT_BINARY});
    ASSERT_EQ(runs.exit_code, 0) << runs.err;
    const std::vector<std::string> lines = lines_of(read_text(log));
    ASSERT_EQ(lines.size(), static_cast<std::size_t>(kRuns)) << read_text(log);
    for (const auto& line : lines) {
        ASSERT_TRUE(json::accept(line)) << line;
        EXPECT_EQ(json::parse(line).at("result"), "ok") << line;
    }
    const RunResult check = run_p11vault({"record-check", log});
    EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
    EXPECT_EQ(check.out, log + ": " + std::to_string(kRuns) + " records, chain intact\n");
}

}  // namespace
}  // namespace p11vault::testing
