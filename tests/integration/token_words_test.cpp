// SPDX-License-Identifier: Apache-2.0
// Errors keep the token's words, and a backup can leave what cannot leave (issue 18,
// item 5): a key the token will not wrap is reported with the token's own return code
// (not a code p11vault made up); `backup --skip-unsupported` backs up what can leave the
// token and lists each key left behind and why, in text and JSON, exit 0; without it one
// such key still fails the whole backup with exit 6.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/integration/fault_fixture.hpp"

namespace p11vault::testing {
namespace {

class TokenWordsTest : public FaultTest {
protected:
    void SetUp() override {
        auto session = source_.open_session();
        certify(*session, generate_rsa(*session, 2048, {0x31}, "leaves"));
        KeyFlags kept;
        kept.extractable = false;
        certify(*session, generate_ec(*session, "P-256", {0x32}, "stays", kept));
    }
    std::string out() const { return source_.dir() + "/partial.p12"; }
};

TEST_F(TokenWordsTest, OneKeyThatCannotLeaveFailsTheWholeBackup) {
    const RunResult run = backup(source_, out(), {"--all"});
    EXPECT_EQ(run.exit_code, 6) << describe(run);
    EXPECT_NE(run.err.find("id=32"), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("nothing was exported (--skip-unsupported backs up the others)"), std::string::npos)
        << run.err;
    EXPECT_FALSE(file_exists(out()));
}

TEST_F(TokenWordsTest, SkipUnsupportedBacksUpTheRestAndListsWhatStayed) {
    const RunResult run = backup(source_, out(), {"--all", "--skip-unsupported", "--json"});
    ASSERT_EQ(run.exit_code, 0) << describe(run);
    const auto document = stdout_json(run);
    ASSERT_EQ(document["keys"].size(), 1u) << document.dump();
    EXPECT_EQ(document["keys"][0]["id"], "31");
    ASSERT_EQ(document["skipped"].size(), 1u) << document.dump();
    EXPECT_EQ(document["skipped"][0]["id"], "32");
    EXPECT_EQ(document["skipped"][0]["status"], "skipped-unsupported");
    EXPECT_FALSE(document["skipped"][0]["notes"].empty());
    EXPECT_NE(run.err.find("p11vault: warning: left on the token: "), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("id=32"), std::string::npos) << run.err;
    // The file holds exactly the one key.
    const RunResult info = openssl_pkcs12_info(out());
    EXPECT_EQ(info.exit_code, 0) << info.err;
    std::size_t keys = 0;
    for (std::size_t at = info.out.find("BEGIN PRIVATE KEY"); at != std::string::npos;
         at = info.out.find("BEGIN PRIVATE KEY", at + 1))
        ++keys;
    EXPECT_EQ(keys, 1u) << info.out;
}

// A token that answers CKR_KEY_NOT_WRAPPABLE (openCryptoki for EC keys) is quoted, not
// turned into a CKR_MECHANISM_INVALID of p11vault's own.
TEST_F(TokenWordsTest, TheTokensRefusalIsTheOneReported) {
    FaultSpec spec;
    spec.function = "C_WrapKey";
    spec.rv = "CKR_KEY_NOT_WRAPPABLE";
    const FaultedRun run = run_faulted(source_, log_path(), "backup", {"--out", out(), "--id", "31", "--iter", "2000"},
                                       spec);
    EXPECT_EQ(run.result.exit_code, 6) << describe(run.result);
    EXPECT_NE(run.result.err.find("C_WrapKey: CKR_KEY_NOT_WRAPPABLE"), std::string::npos) << run.result.err;
    EXPECT_EQ(run.result.err.find("CKR_MECHANISM_INVALID (no usable"), std::string::npos) << run.result.err;
}

}  // namespace
}  // namespace p11vault::testing
