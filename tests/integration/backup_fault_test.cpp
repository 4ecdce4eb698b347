// SPDX-License-Identifier: Apache-2.0
// Fault injection into `p11vault backup` (issue 8; the fixture and the rules are in
// fault_fixture.hpp and fault_test.cpp): failing any call leaves neither the output file
// nor a temporary file, and a token that stops a batch at its first refusal is read one
// attribute at a time with the same result.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "tests/integration/fault_fixture.hpp"

namespace p11vault::testing {
namespace {

class BackupFaultTest : public FaultTest {
protected:
    void SetUp() override {
        {
            auto session = source_.open_session();
            certify(*session, generate_rsa(*session, 2048, {0x21}, "fault-backup-rsa"));
            certify(*session, generate_ec(*session, "P-256", {0x22}, "fault-backup-ec"));
        }
        out_dir_ = make_temp_dir("fault-backup");
        out_ = out_dir_ + "/backup.p12";
        baseline_ = run_faulted(source_, log_path(), "backup", args(), std::nullopt);
        ASSERT_EQ(baseline_.result.exit_code, 0) << describe(baseline_.result);
        ASSERT_TRUE(file_exists(out_));
        std::filesystem::remove(out_);
    }
    void TearDown() override {
        std::error_code ignored;
        std::filesystem::remove_all(out_dir_, ignored);
    }
    std::vector<std::string> args() const { return {"--all", "--iter", kFastIterations, "--out", out_}; }

    // One backup with `spec`: it fails with one error line naming the failed call and
    // leaves nothing in the output directory (no file, no temporary file). Exit 0 only
    // for a failed call that cannot matter, and then with a complete file. Returns
    // whether the run failed; leaves the directory empty either way.
    bool check_backup(const FaultSpec& spec) {
        SCOPED_TRACE("fault: " + describe(spec));
        const FaultedRun run = run_faulted(source_, log_path(), "backup", args(), spec);
        const auto injected = run.injected();
        EXPECT_EQ(injected.size(), 1u) << describe(run.result);
        if (injected.size() != 1u) return false;
        const Call& fault = injected[0];
        const auto entries = directory_entries(out_dir_);
        for (const auto& entry : entries) std::filesystem::remove(out_dir_ + "/" + entry);
        if (run.result.exit_code == 0) {
            EXPECT_TRUE(fault.function == "C_CloseSession" || fault.function == "C_DestroyObject")
                << "exit 0 although " << fault.function << " failed: " << describe(run.result);
            EXPECT_EQ(entries, std::vector<std::string>{"backup.p12"});
            return false;
        }
        expect_one_error_naming(run.result, fault);
        EXPECT_TRUE(entries.empty()) << fault.function << " left " << entries.size()
                                     << " file(s), first: " << (entries.empty() ? "" : entries[0]);
        return true;
    }

    std::string out_dir_;
    std::string out_;
};

TEST_F(BackupFaultTest, FailingAtEveryCallLeavesNoFile) {
    const unsigned long total = baseline_.counted_calls();
    ASSERT_GT(total, 20u);
    std::size_t failures = 0;
    for (unsigned long k = 1; k <= total; ++k) {
        FaultSpec spec;
        spec.at = k;
        if (check_backup(spec)) ++failures;
        if (::testing::Test::HasFailure()) return;
    }
    // C_CloseSession at the end, and C_DestroyObject of session objects (the wrapping key,
    // the public key objects asking the token whether it takes a curve).
    EXPECT_GE(failures + 1 + baseline_.calls_of("C_DestroyObject"), total);
}

TEST_F(BackupFaultTest, FailingInAnInformationQueryLeavesNoFile) {
    const auto specs = query_faults(baseline_);
    ASSERT_GE(specs.size(), 4u);
    for (const FaultSpec& spec : specs) {
        EXPECT_TRUE(check_backup(spec)) << describe(spec) << " did not fail the backup";
        if (::testing::Test::HasFailure()) return;
    }
}

// A token that stops filling in a batch at the first attribute it refuses (before
// PKCS#11 2.11 that was allowed): every attribute is then read on its own, and the backup
// is the same as on a token that fills in every entry.
TEST_F(BackupFaultTest, TokenThatStopsABatchAtTheFirstRefusalIsReadOneAttributeAtATime) {
    RunOptions options;
    options.env["P11VAULT_FAULT_MODULE"] = softhsm_module_path;
    options.env["P11VAULT_FAULT_BATCH"] = "stop-at-refusal";
    options.unset_env = {"P11VAULT_FAULT_AT", "P11VAULT_FAULT_FUNCTION", "P11VAULT_FAULT_NTH", "P11VAULT_FAULT_RV",
                         "P11VAULT_FAULT_LOG", "P11VAULT_DEBUG"};
    std::vector<std::string> arguments = args();
    arguments.push_back("--verbose");
    const RunResult result = run_with_token_args(source_, "backup", {"--module", kFaultModule, "--token-label",
                                                                     source_.label()},
                                                 arguments, kTestPassword, options);
    ASSERT_EQ(result.exit_code, 0) << describe(result);
    std::size_t single_reads = 0;
    for (const auto& line : result.err_lines())
        if (std::regex_search(line, std::regex("^p11vault: debug: C_GetAttributeValue \\[[A-Z0-9_]+\\]"))) ++single_reads;
    EXPECT_GT(single_reads, 4u) << "the batch fallback was not used:\n" << result.err;
    const P12File file = read_p12(out_, kTestPassword);
    ASSERT_EQ(file.keys().size(), 2u);
    ASSERT_EQ(file.certificates().size(), 2u);
    for (const P12Bag* key : file.keys()) {
        bool matched = false;
        for (const P12Bag* cert : file.certificates())
            matched = matched || (cert->local_key_ids == key->local_key_ids &&
                                  X509_check_private_key(cert->cert.get(), key->key.get()) == 1);
        EXPECT_TRUE(matched) << "a key without its certificate";
    }
}


}  // namespace
}  // namespace p11vault::testing
